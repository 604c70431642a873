"""kubectl against the API server double: discovery, server-side printing, and the
rollout verbs deployflow's users know (``kubectl rollout status`` judges a rollout by
``observedGeneration``, ``updatedReplicas``, ``availableReplicas`` and the Progressing
condition: https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#deployment-status).
"""

from __future__ import annotations

import json

import pytest

from tests.integration.test_kube_double import deployment


@pytest.fixture
def web(kube, apps):
    apps.create_namespaced_deployment(kube.namespace, deployment(replicas=3))
    kube.settle()


def kubectl_ok(kube, *args: str) -> str:
    done = kube.kubectl(*args)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.usefixtures("web")
def test_kubectl_get_prints_the_deployment_columns(kube):
    out = kubectl_ok(kube, "get", "deployments")
    header, row = out.splitlines()
    assert header.split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert row.split()[:4] == ["web", "3/3", "3", "3"]
    assert (
        kubectl_ok(kube, "get", "deployment", "web", "-o", "jsonpath={.status.availableReplicas}")
        == "3"
    )


@pytest.mark.usefixtures("web")
def test_kubectl_set_image_keeps_the_sidecar_and_rollout_status_completes(kube, apps):
    kubectl_ok(kube, "set", "image", "deployment/web", "app=web:2")
    spec = apps.read_namespaced_deployment("web", kube.namespace).spec.template.spec
    assert [(c.name, c.image) for c in spec.containers] == [
        ("app", "web:2"),
        ("sidecar", "envoy:1.30"),
    ]
    kube.settle()
    out = kubectl_ok(kube, "rollout", "status", "deployment/web", "--timeout=30s")
    assert 'deployment "web" successfully rolled out' in out


@pytest.mark.usefixtures("web")
def test_kubectl_rollout_status_follows_an_auto_advancing_rollout(kube):
    kubectl_ok(kube, "set", "image", "deployment/web", "app=web:2")
    kube.controller.auto_advance()
    out = kubectl_ok(kube, "rollout", "status", "deployment/web", "--timeout=30s")
    assert 'Waiting for deployment "web" rollout to finish' in out
    assert out.strip().endswith('deployment "web" successfully rolled out')


@pytest.mark.usefixtures("web")
def test_kubectl_rollout_status_fails_past_the_progress_deadline(kube):
    kube.controller.break_image("web:broken")
    kubectl_ok(kube, "set", "image", "deployment/web", "app=web:broken")
    kube.controller.settle()
    done = kube.kubectl("rollout", "status", "deployment/web", "--timeout=30s")
    assert done.returncode != 0
    assert 'deployment "web" exceeded its progress deadline' in done.stderr


@pytest.mark.usefixtures("web")
def test_kubectl_scale_goes_through_the_scale_subresource(kube, apps):
    kubectl_ok(kube, "scale", "deployment/web", "--replicas=5")
    assert apps.read_namespaced_deployment("web", kube.namespace).spec.replicas == 5
    assert any(
        r.path.endswith("/deployments/web/scale") and r.method == "PATCH" for r in kube.requests()
    )
    kube.settle()
    assert (
        kubectl_ok(kube, "get", "deployment", "web", "-o", "jsonpath={.status.readyReplicas}")
        == "5"
    )


@pytest.mark.usefixtures("web")
def test_kubectl_rollout_undo_restores_the_previous_template_and_replica_set(kube, apps):
    kubectl_ok(kube, "set", "image", "deployment/web", "app=web:2")
    kube.settle()
    kubectl_ok(kube, "rollout", "undo", "deployment/web")
    kube.settle()
    images = [
        c.image
        for c in apps.read_namespaced_deployment(
            "web", kube.namespace
        ).spec.template.spec.containers
    ]
    assert images == ["web:1", "envoy:1.30"]
    sets = apps.list_namespaced_replica_set(kube.namespace).items
    assert len(sets) == 2  # undo reused the first ReplicaSet instead of making a third
    out = kubectl_ok(kube, "rollout", "history", "deployment/web")
    assert [line.split()[0] for line in out.splitlines()[2:] if line.strip()] == ["2", "3"]


@pytest.mark.usefixtures("web")
def test_kubectl_rollout_restart_rolls_a_new_replica_set(kube, apps):
    kubectl_ok(kube, "rollout", "restart", "deployment/web")
    kube.settle()
    template = apps.read_namespaced_deployment("web", kube.namespace).spec.template
    assert "kubectl.kubernetes.io/restartedAt" in template.metadata.annotations
    assert len(apps.list_namespaced_replica_set(kube.namespace).items) == 2


def test_kubectl_apply_works_without_openapi_validation_and_protobuf_is_refused(kube, apps):
    manifest = json.dumps(deployment(replicas=2))
    done = kube.kubectl("apply", "--validate=false", "-f", "-", input_text=manifest)
    assert done.returncode == 0, done.stderr
    assert apps.read_namespaced_deployment("web", kube.namespace).spec.replicas == 2
    if not kube.real:
        refused = kube.kubectl("create", "deployment", "other", "--image=x:1")
        assert refused.returncode != 0
        assert "accepts JSON bodies only" in refused.stderr
