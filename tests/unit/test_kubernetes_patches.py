"""The bodies deployflow sends to the Kubernetes API, exactly, and how a rollout is judged."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from activities.platforms.deployments import (
    MERGE,
    STRATEGIC_MERGE,
    canary_deployment,
    canary_drift,
    canary_match_labels,
    container_named,
    image_patch,
    owned_by_deployflow,
    restart_patch,
    rollout_progress,
    scale_patch,
    stable_changes,
    template_version,
    version_template,
    with_image,
    with_images,
)
from activities.platforms.models import StableRecord
from activities.platforms.spec import DeploymentTarget

TEMPLATE: dict[str, Any] = {
    "metadata": {"labels": {"app": "checkout", "tier": "web"}, "annotations": {"team": "shop"}},
    "spec": {
        "containers": [
            {"name": "app", "image": "registry/checkout:v1", "ports": [{"containerPort": 8080}]},
            {"name": "proxy", "image": "envoy:1.30"},
        ]
    },
}
STABLE: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "checkout", "namespace": "shop", "uid": "u-1", "resourceVersion": "7"},
    "spec": {
        "replicas": 4,
        "selector": {"matchLabels": {"app": "checkout"}},
        "template": TEMPLATE,
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
    },
}


def test_image_patch_is_a_strategic_merge_naming_the_container():
    patch = image_patch("app", "registry/checkout:v2")
    assert patch.content_type == STRATEGIC_MERGE == "application/strategic-merge-patch+json"
    assert patch.body == {
        "spec": {
            "template": {"spec": {"containers": [{"name": "app", "image": "registry/checkout:v2"}]}}
        }
    }


def test_scale_patch_is_a_merge_patch_of_the_scale_subresource():
    assert scale_patch(0).body == {"spec": {"replicas": 0}}
    assert scale_patch(3).content_type == MERGE == "application/merge-patch+json"


def test_restart_patch_sets_kubectls_annotation_on_the_pod_template():
    patch = restart_patch("2026-12-02T00:00:00Z")
    assert patch.content_type == STRATEGIC_MERGE
    assert patch.body == {
        "spec": {
            "template": {
                "metadata": {
                    "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-12-02T00:00:00Z"}
                }
            }
        }
    }


def test_with_image_changes_one_container_and_keeps_sidecars_and_annotations():
    changed = with_image(TEMPLATE, "app", "registry/checkout:v2", "v2")
    assert changed["spec"]["containers"] == [
        {"name": "app", "image": "registry/checkout:v2", "ports": [{"containerPort": 8080}]},
        {"name": "proxy", "image": "envoy:1.30"},
    ]
    assert changed["metadata"]["annotations"] == {"team": "shop", "deployflow.io/version": "v2"}
    assert TEMPLATE["spec"]["containers"][0]["image"] == "registry/checkout:v1"  # a copy


def record_of(template: dict[str, Any]) -> StableRecord:
    return StableRecord(
        deployment="default/shop/deployment/checkout",
        uid="u-1",
        template=template,
        replicas=4,
        strategy={},
        progress_deadline_seconds=600,
        container="app",
        image="registry/checkout:v1",
        version="v1",
    )


def test_with_images_sets_each_named_container_and_keeps_the_unnamed_sidecar():
    three = copy.deepcopy(TEMPLATE)
    three["spec"]["containers"].append({"name": "logs", "image": "fluent-bit:3.0"})
    changed = with_images(three, {"app": "registry/checkout:v2", "proxy": "envoy:1.31"}, "v2")
    assert changed["spec"]["containers"] == [
        {"name": "app", "image": "registry/checkout:v2", "ports": [{"containerPort": 8080}]},
        {"name": "proxy", "image": "envoy:1.31"},
        {"name": "logs", "image": "fluent-bit:3.0"},  # not named: as recorded
    ]
    assert changed["metadata"]["annotations"] == {"team": "shop", "deployflow.io/version": "v2"}
    with pytest.raises(ValueError, match="no container 'sidecar'"):
        with_images(TEMPLATE, {"sidecar": "x:1"}, "v2")


def test_the_version_template_of_images_by_name_renders_each_with_the_version():
    target = DeploymentTarget.model_validate(
        {
            "name": "checkout",
            "images": {"app": "registry/checkout:{version}", "proxy": "envoy:1.31"},
        }
    )
    template = version_template(target, record_of(TEMPLATE), "v2")
    assert [c["image"] for c in template["spec"]["containers"]] == [
        "registry/checkout:v2",
        "envoy:1.31",
    ]
    one = DeploymentTarget.model_validate({"name": "checkout"})  # the stable image, new tag
    assert version_template(one, record_of(TEMPLATE), "v2") == with_image(
        TEMPLATE, "app", "registry/checkout:v2", "v2"
    )


def test_the_version_template_of_a_whole_template_is_it_as_written_not_the_recorded_one():
    manifest = {
        "metadata": {"labels": {"app": "checkout"}},
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "registry/checkout:v2",
                    "env": [{"name": "MODE", "value": "b"}],
                },
                {"name": "proxy", "image": "envoy:1.31"},
            ]
        },
    }
    target = DeploymentTarget.model_validate({"name": "checkout", "template": manifest})
    assert version_template(target, record_of(TEMPLATE), "v2") == {
        "metadata": {"labels": {"app": "checkout"}, "annotations": {"deployflow.io/version": "v2"}},
        "spec": manifest["spec"],
    }
    assert "annotations" not in manifest["metadata"]  # a copy
    body = canary_deployment(
        STABLE,
        version_template(target, record_of(TEMPLATE), "v2"),
        version="v2",
        replicas=1,
        rollout="r",
        progress_deadline_seconds=None,
    )
    assert body["spec"]["template"]["spec"] == manifest["spec"]  # the sidecar's new image too
    assert body["spec"]["template"]["metadata"]["labels"] == {
        "app": "checkout-canary",
        "deployflow.io/role": "canary",
    }


@pytest.mark.parametrize(
    ("annotations", "image", "version"),
    [
        ({"deployflow.io/version": "v2"}, "registry.k8s.io/pause:3.10", "v2"),  # one image for all
        ({"deployflow.io/version": "v2"}, "registry.example.com/checkout:v2", "v2"),
        ({"team": "shop"}, "registry.example.com/checkout:v1", "v1"),
        (None, "registry.example.com:5000/checkout", None),
        (None, "checkout@sha256:" + "a" * 64, None),
    ],
)
def test_a_templates_version_is_deployflows_annotation_else_the_image_tag(
    annotations, image, version
):
    template = {"metadata": {"annotations": annotations} if annotations else {}}
    assert template_version(template, image) == version


def test_container_named_defaults_to_the_first_and_names_what_is_there():
    assert container_named(TEMPLATE, None)["name"] == "app"
    with pytest.raises(ValueError, match="no container 'web' \\(it has app, proxy\\)"):
        container_named(TEMPLATE, "web")


def test_the_canary_deployment_is_the_stable_template_with_its_own_labels_and_owner():
    body = canary_deployment(
        STABLE,
        with_image(TEMPLATE, "app", "registry/checkout:v2", "v2"),
        version="v2",
        replicas=1,
        rollout="rollout-checkout-prod",
        progress_deadline_seconds=120,
    )
    match = {"app": "checkout-canary", "deployflow.io/role": "canary"}
    assert body == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "checkout-canary",
            "namespace": "shop",
            "labels": {
                "app.kubernetes.io/managed-by": "deployflow",
                "deployflow.io/role": "canary",
                "deployflow.io/stable": "checkout",
            },
            "annotations": {
                "deployflow.io/rollout": "rollout-checkout-prod",
                "deployflow.io/version": "v2",
            },
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": "checkout",
                    "uid": "u-1",
                    "controller": False,
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": match},
            "template": {
                "metadata": {
                    "labels": {
                        "app": "checkout-canary",
                        "tier": "web",
                        "deployflow.io/role": "canary",
                    },
                    "annotations": {"team": "shop", "deployflow.io/version": "v2"},
                },
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "registry/checkout:v2",
                            "ports": [{"containerPort": 8080}],
                        },
                        {"name": "proxy", "image": "envoy:1.30"},
                    ]
                },
            },
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
            "progressDeadlineSeconds": 120,
        },
    }
    assert owned_by_deployflow(body, "checkout")
    assert not owned_by_deployflow(body, "cart")
    assert not canary_drift(body, body)
    assert canary_drift({**body, "spec": {**body["spec"], "replicas": 0}}, body)


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


@given(
    labels=st.dictionaries(
        st.from_regex(r"[a-z]{1,10}", fullmatch=True),
        st.from_regex(r"[a-z0-9]{1,20}", fullmatch=True),
        min_size=1,
        max_size=4,
    )
)
def test_canary_and_stable_selectors_never_overlap(labels: dict[str, str]):
    stable = copy.deepcopy(STABLE)
    stable["spec"]["selector"] = {"matchLabels": labels}
    stable["spec"]["template"]["metadata"]["labels"] = dict(labels)
    body = canary_deployment(
        stable,
        with_image(stable["spec"]["template"], "app", "i:v2", "v2"),
        version="v2",
        replicas=1,
        rollout="r",
        progress_deadline_seconds=None,
    )
    canary_pods = body["spec"]["template"]["metadata"]["labels"]
    assert _matches(body["spec"]["selector"]["matchLabels"], canary_pods)
    assert not _matches(labels, canary_pods)  # the stable selector misses every canary pod
    assert not _matches(body["spec"]["selector"]["matchLabels"], labels)


def test_a_selector_deployflow_cannot_split_is_refused():
    expressions = copy.deepcopy(STABLE)
    expressions["spec"]["selector"] = {"matchExpressions": [{"key": "app", "operator": "Exists"}]}
    with pytest.raises(ValueError, match="matchExpressions"):
        canary_match_labels(expressions)
    long = copy.deepcopy(STABLE)
    long["spec"]["selector"] = {"matchLabels": {"app": "x" * 60}}
    with pytest.raises(ValueError, match="too long"):
        canary_match_labels(long)


def test_stable_changes_set_the_template_exactly_or_report_nothing_to_do():
    new = with_image(TEMPLATE, "app", "registry/checkout:v2", "v2")
    body = stable_changes(STABLE, new, {"type": "Recreate"}, 60)
    assert body is not None
    assert body["spec"] == {
        **STABLE["spec"],
        "template": new,
        "strategy": {"type": "Recreate"},
        "progressDeadlineSeconds": 60,
    }
    assert body["metadata"]["resourceVersion"] == "7"  # a PUT that fails with 409 if stale
    assert stable_changes(body, new, {"type": "Recreate"}, 60) is None
    assert stable_changes(STABLE, TEMPLATE, None, None) is None


def status(generation: int = 2, observed: int = 2, **fields: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "checkout", "generation": generation},
        "spec": {"replicas": 3},
        "status": {"observedGeneration": observed, **fields},
    }


@pytest.mark.parametrize(
    ("deployment", "done", "failed", "message"),
    [
        (status(observed=1), False, False, "waiting for the deployment spec update to be observed"),
        (
            status(updatedReplicas=1, replicas=3),
            False,
            False,
            "1 out of 3 new replicas have been updated",
        ),
        (
            status(updatedReplicas=3, replicas=4),
            False,
            False,
            "1 old replicas are pending termination",
        ),
        (
            status(updatedReplicas=3, replicas=3, availableReplicas=2),
            False,
            False,
            "2 of 3 updated replicas are available",
        ),
        (
            status(updatedReplicas=3, replicas=3, availableReplicas=3),
            True,
            False,
            "deployment 'checkout' successfully rolled out",
        ),
        (
            status(
                updatedReplicas=1,
                conditions=[
                    {
                        "type": "Progressing",
                        "status": "False",
                        "reason": "ProgressDeadlineExceeded",
                        "message": 'ReplicaSet "checkout-5d" has timed out progressing.',
                    }
                ],
            ),
            False,
            True,
            "deployment 'checkout' exceeded its progress deadline: ReplicaSet \"checkout-5d\" has timed out progressing.",
        ),
    ],
)
def test_rollout_progress_judges_as_kubectl_rollout_status(
    deployment: dict[str, Any], done: bool, failed: bool, message: str
):
    progress = rollout_progress(deployment)
    assert (progress.done, progress.failed, progress.message) == (done, failed, message)
