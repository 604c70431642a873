"""The API server double, pinned to the real API server's documented behaviour.

Driven by the official ``kubernetes`` client over real HTTP (and ``kubectl`` where it
helps). Each test names the behaviour of kube-apiserver it pins; with
``DEPLOYFLOW_KUBE_REAL=1`` and ``KUBECONFIG`` the same tests run against a real cluster
(those that need the controller simulation or fault injection skip there).
"""

from __future__ import annotations

import json
import logging

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

ISTIO = ("networking.istio.io", "v1")


def deployment(name: str = "web", image: str = "web:1", replicas: int = 3, **spec: object) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": image,
                            "ports": [{"containerPort": 8080}],
                            "env": [{"name": "MODE", "value": "a"}],
                        },
                        {"name": "sidecar", "image": "envoy:1.30"},
                    ]
                },
            },
            **spec,
        },
    }


def create_custom(kube, custom, group, plural: str, kind: str, name: str, spec: dict, **extra):
    """Create a custom object of ``kind`` (``group`` is its API group and version)."""
    body = {
        "apiVersion": "/".join(group),
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
        **extra,
    }
    return custom.create_namespaced_custom_object(*group, kube.namespace, plural, body)


def create_virtual_service(kube, custom, name: str, spec: dict) -> dict:
    return create_custom(kube, custom, ISTIO, "virtualservices", "VirtualService", name, spec)


JSON_PATCH = "application/json-patch+json"


def patch_custom(kube, custom, plural: str, name: str, body, content_type=JSON_PATCH, group=ISTIO):
    """Patch a custom object as ``content_type``; ``None`` sends what CustomObjectsApi picks
    (a merge patch, even for a list)."""
    options = {"_content_type": content_type} if content_type else {}
    return custom.patch_namespaced_custom_object(
        *group, kube.namespace, plural, name, body, **options
    )


def first_weight(expected: int, weight: int) -> list[dict]:
    """Test that the first route's weight is ``expected``, then set it to ``weight``."""
    path = "/spec/http/0/route/0/weight"
    return [
        {"op": "test", "path": path, "value": expected},
        {"op": "replace", "path": path, "value": weight},
    ]


def watched(list_objects, kube, **options) -> list[dict]:
    """The events a one-second watch of ``list_objects`` in the test namespace sends."""
    return list(watch.Watch().stream(list_objects, kube.namespace, timeout_seconds=1, **options))


def status_of(exc: ApiException) -> dict:
    return json.loads(exc.body)


# -- object metadata ---------------------------------------------------------------------
# https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions and
# https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/object-meta/


def test_create_fills_uid_version_generation_timestamp_and_namespace(kube, apps):
    body = deployment()
    created = apps.create_namespaced_deployment(kube.namespace, body)
    assert created.metadata.uid
    assert created.metadata.creation_timestamp
    assert created.metadata.generation == 1
    assert created.metadata.namespace == kube.namespace  # from the URL, not the body
    assert int(created.metadata.resource_version) > 0
    assert created.spec.strategy.type == "RollingUpdate"  # defaulted
    assert created.spec.progress_deadline_seconds == 600


def test_resource_versions_grow_across_kinds_and_generation_follows_spec_only(kube, apps, core):
    first = apps.create_namespaced_deployment(kube.namespace, deployment())
    cm = core.create_namespaced_config_map(
        kube.namespace, {"metadata": {"name": "c"}, "data": {"a": "1"}}
    )
    assert int(cm.metadata.resource_version) > int(first.metadata.resource_version)
    labelled = apps.patch_namespaced_deployment(
        "web", kube.namespace, {"metadata": {"annotations": {"team": "payments"}}}
    )
    assert labelled.metadata.generation == 1  # metadata is not spec
    assert int(labelled.metadata.resource_version) > int(cm.metadata.resource_version)
    scaled = apps.patch_namespaced_deployment("web", kube.namespace, {"spec": {"replicas": 5}})
    assert scaled.metadata.generation == 2


def test_create_answers_201_and_custom_objects_api_returns_the_object(kube, custom):
    vs = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "web"},
        "spec": {"hosts": ["web"], "http": []},
    }
    _, code, _ = custom.create_namespaced_custom_object_with_http_info(
        *ISTIO, kube.namespace, "virtualservices", vs
    )
    assert code == 201
    got = custom.get_namespaced_custom_object(*ISTIO, kube.namespace, "virtualservices", "web")
    assert got["metadata"]["uid"]
    assert got["metadata"]["generation"] == 1


def test_create_of_an_existing_name_is_409_already_exists(kube, apps):
    apps.create_namespaced_deployment(kube.namespace, deployment())
    with pytest.raises(ApiException) as caught:
        apps.create_namespaced_deployment(kube.namespace, deployment())
    assert caught.value.status == 409
    status = status_of(caught.value)
    assert (status["kind"], status["reason"]) == ("Status", "AlreadyExists")
    assert status["details"] == {"name": "web", "group": "apps", "kind": "deployments"}


def test_missing_object_is_404_not_found_status(kube, apps):
    with pytest.raises(ApiException) as caught:
        apps.read_namespaced_deployment("nope", kube.namespace)
    assert caught.value.status == 404
    status = status_of(caught.value)
    assert status["reason"] == "NotFound"
    assert status["message"] == 'deployments.apps "nope" not found'


# -- updates: optimistic concurrency -----------------------------------------------------
# https://kubernetes.io/docs/reference/using-api/api-concepts/#conflicts


def test_put_with_a_stale_resource_version_is_409_conflict(kube, apps):
    apps.create_namespaced_deployment(kube.namespace, deployment())
    stale = apps.read_namespaced_deployment("web", kube.namespace)
    apps.patch_namespaced_deployment("web", kube.namespace, {"spec": {"replicas": 4}})
    stale.spec.replicas = 7
    with pytest.raises(ApiException) as caught:
        apps.replace_namespaced_deployment("web", kube.namespace, stale)
    assert caught.value.status == 409
    status = status_of(caught.value)
    assert status["reason"] == "Conflict"
    assert "the object has been modified" in status["message"]
    assert apps.read_namespaced_deployment("web", kube.namespace).spec.replicas == 4


# ConfigMaps where a real cluster's controllers would race the test (they write
# Deployment status at any moment).


def test_put_with_the_current_resource_version_replaces(kube, core):
    core.create_namespaced_config_map(
        kube.namespace, {"metadata": {"name": "c"}, "data": {"a": "1"}}
    )
    current = core.read_namespaced_config_map("c", kube.namespace)
    current.data = {"a": "2"}
    replaced = core.replace_namespaced_config_map("c", kube.namespace, current)
    assert replaced.data == {"a": "2"}
    assert int(replaced.metadata.resource_version) > int(current.metadata.resource_version)


def test_a_write_that_changes_nothing_keeps_the_resource_version(kube, core):
    created = core.create_namespaced_config_map(
        kube.namespace, {"metadata": {"name": "c"}, "data": {"a": "1"}}
    )
    same = core.patch_namespaced_config_map("c", kube.namespace, {"data": {"a": "1"}})
    assert same.metadata.resource_version == created.metadata.resource_version


# -- patches -----------------------------------------------------------------------------
# https://kubernetes.io/docs/tasks/manage-kubernetes-objects/update-api-object-kubectl-patch/


def test_strategic_merge_patch_merges_containers_by_name_and_keeps_the_sidecar(kube, apps):
    apps.create_namespaced_deployment(kube.namespace, deployment())
    patched = apps.patch_namespaced_deployment(
        "web",
        kube.namespace,
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "app",
                                "image": "web:2",
                                "env": [{"name": "EXTRA", "value": "1"}],
                            }
                        ]
                    }
                }
            }
        },
    )
    containers = {c.name: c for c in patched.spec.template.spec.containers}
    assert containers["app"].image == "web:2"
    assert containers["sidecar"].image == "envoy:1.30"
    assert [e.name for e in containers["app"].env] == ["MODE", "EXTRA"]  # env merges by name
    assert [p.container_port for p in containers["app"].ports] == [8080]


def test_strategic_merge_patch_delete_directive_removes_one_container(kube, apps):
    apps.create_namespaced_deployment(kube.namespace, deployment())
    patched = apps.patch_namespaced_deployment(
        "web",
        kube.namespace,
        {"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}},
    )
    assert [c.name for c in patched.spec.template.spec.containers] == ["app"]


def test_merge_patch_replaces_lists_whole(kube, apps):
    apps.create_namespaced_deployment(kube.namespace, deployment())
    patched = apps.patch_namespaced_deployment(
        "web",
        kube.namespace,
        {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "web:2"}]}}}},
        _content_type="application/merge-patch+json",
    )
    assert [c.name for c in patched.spec.template.spec.containers] == ["app"]


def test_strategic_merge_patch_on_a_custom_resource_is_415(kube, custom):
    create_virtual_service(kube, custom, "vs", {"hosts": ["web"]})
    strategic = "application/strategic-merge-patch+json"
    with pytest.raises(ApiException) as caught:
        patch_custom(kube, custom, "virtualservices", "vs", {"spec": {"hosts": ["x"]}}, strategic)
    assert caught.value.status == 415


def test_json_patch_with_a_failing_test_is_422_and_changes_nothing(kube, custom):
    routes = [{"route": [{"destination": {"host": "stable"}, "weight": 100}]}]
    created = create_virtual_service(kube, custom, "vs", {"hosts": ["web"], "http": routes})
    with pytest.raises(ApiException) as caught:
        patch_custom(kube, custom, "virtualservices", "vs", first_weight(90, 10))
    assert caught.value.status == 422
    after = custom.get_namespaced_custom_object(*ISTIO, kube.namespace, "virtualservices", "vs")
    assert after["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_json_patch_with_a_passing_test_applies(kube, custom):
    routes = [{"route": [{"destination": {"host": "stable"}, "weight": 100}]}]
    create_virtual_service(kube, custom, "vs", {"hosts": ["web"], "http": routes})
    patched = patch_custom(kube, custom, "virtualservices", "vs", first_weight(100, 90))
    assert patched["spec"]["http"][0]["route"][0]["weight"] == 90
    assert patched["metadata"]["generation"] == 2


def test_custom_objects_api_sends_a_list_as_a_merge_patch_unless_told(kube, custom):
    """CustomObjectsApi's patch defaults to application/merge-patch+json even for a list
    body (the client, not the server, picks); a merge patch cannot turn an object into a
    list, so the server refuses it and the object is unchanged."""
    create_virtual_service(kube, custom, "vs", {"hosts": ["web"]})
    ops = [{"op": "replace", "path": "/spec/hosts", "value": ["x"]}]
    with pytest.raises(ApiException) as caught:
        patch_custom(kube, custom, "virtualservices", "vs", ops, content_type=None)
    assert caught.value.status in (400, 422)
    if not kube.real:
        assert kube.requests()[-1].content_type == "application/merge-patch+json"


# -- subresources ------------------------------------------------------------------------
# https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#subresources


def test_status_is_ignored_on_the_main_endpoint_and_written_through_status(kube, apps):
    apps.create_namespaced_deployment(kube.namespace, deployment())
    ignored = apps.patch_namespaced_deployment("web", kube.namespace, {"status": {"replicas": 9}})
    assert ignored.status.replicas != 9
    written = apps.patch_namespaced_deployment_status(
        "web",
        kube.namespace,
        {"status": {"observedGeneration": 1, "replicas": 9}, "spec": {"replicas": 1}},
    )
    assert written.status.replicas == 9
    assert written.spec.replicas == 3  # spec sent to /status is ignored
    assert written.metadata.generation == 1  # a status write does not bump generation


def test_scale_subresource_reads_and_writes_replicas(kube, apps):
    apps.create_namespaced_deployment(kube.namespace, deployment())
    scale = apps.read_namespaced_deployment_scale("web", kube.namespace)
    assert (scale.spec.replicas, scale.status.selector) == (3, "app=web")
    apps.patch_namespaced_deployment_scale("web", kube.namespace, {"spec": {"replicas": 6}})
    after = apps.read_namespaced_deployment("web", kube.namespace)
    assert (after.spec.replicas, after.metadata.generation) == (6, 2)


# -- selectors ---------------------------------------------------------------------------
# https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors
# https://kubernetes.io/docs/concepts/overview/working-with-objects/field-selectors/


@pytest.fixture
def labelled_config_maps(kube, core):
    for name, labels in {
        "a": {"app": "web", "track": "stable"},
        "b": {"app": "web", "track": "canary"},
        "c": {"app": "db"},
    }.items():
        core.create_namespaced_config_map(
            kube.namespace, {"metadata": {"name": name, "labels": labels}}
        )


@pytest.mark.parametrize(
    ("selector", "names"),
    [
        ("app=web", ["a", "b"]),
        ("app==web,track!=canary", ["a"]),
        ("track!=canary", ["a", "c"]),  # != matches objects without the label
        ("track in (canary, stable)", ["a", "b"]),
        ("track notin (canary)", ["a", "c"]),
        ("track", ["a", "b"]),
        ("!track", ["c"]),
    ],
)
@pytest.mark.usefixtures("labelled_config_maps")
def test_label_selectors(kube, core, selector, names):
    found = core.list_namespaced_config_map(kube.namespace, label_selector=selector)
    assert [cm.metadata.name for cm in found.items] == names


@pytest.mark.usefixtures("labelled_config_maps")
def test_field_selectors_on_name_and_namespace(kube, core):
    by_name = core.list_namespaced_config_map(kube.namespace, field_selector="metadata.name=b")
    assert [cm.metadata.name for cm in by_name.items] == ["b"]
    others = core.list_config_map_for_all_namespaces(
        field_selector=f"metadata.namespace!={kube.namespace}"
    )
    assert all(cm.metadata.namespace != kube.namespace for cm in others.items)


def test_an_unknown_field_selector_is_400(kube, core):
    with pytest.raises(ApiException) as caught:
        core.list_namespaced_config_map(kube.namespace, field_selector="spec.whatever=1")
    assert caught.value.status == 400


# -- watch -------------------------------------------------------------------------------
# https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes


def test_watch_from_a_resource_version_sends_only_later_events(kube, core):
    core.create_namespaced_config_map(kube.namespace, {"metadata": {"name": "a"}})
    listed = core.list_namespaced_config_map(kube.namespace)
    core.patch_namespaced_config_map("a", kube.namespace, {"data": {"k": "v"}})
    core.create_namespaced_config_map(kube.namespace, {"metadata": {"name": "b"}})
    core.delete_namespaced_config_map("a", kube.namespace)
    events = watched(
        core.list_namespaced_config_map, kube, resource_version=listed.metadata.resource_version
    )
    assert [(e["type"], e["object"].metadata.name) for e in events] == [
        ("MODIFIED", "a"),
        ("ADDED", "b"),
        ("DELETED", "a"),
    ]
    versions = [int(e["object"].metadata.resource_version) for e in events]
    assert versions == sorted(versions)
    assert versions[0] > int(listed.metadata.resource_version)


def test_watch_without_a_resource_version_starts_with_the_current_objects(kube, core):
    core.create_namespaced_config_map(kube.namespace, {"metadata": {"name": "a"}})
    events = watched(core.list_namespaced_config_map, kube)
    assert [(e["type"], e["object"].metadata.name) for e in events] == [("ADDED", "a")]


def test_watch_from_a_compacted_resource_version_is_410_gone(kube, core):
    core.create_namespaced_config_map(kube.namespace, {"metadata": {"name": "a"}})
    old = core.list_namespaced_config_map(kube.namespace).metadata.resource_version
    core.patch_namespaced_config_map("a", kube.namespace, {"data": {"k": "v"}})
    kube.server.store.compact() if kube.server else pytest.skip(
        "cannot compact a real etcd on demand"
    )
    with pytest.raises(ApiException) as caught:
        watched(core.list_namespaced_config_map, kube, resource_version=old)
    assert caught.value.status == 410


def test_a_label_selector_watch_sees_objects_leave_and_enter(kube, core):
    core.create_namespaced_config_map(
        kube.namespace, {"metadata": {"name": "a", "labels": {"track": "canary"}}}
    )
    since = core.list_namespaced_config_map(kube.namespace).metadata.resource_version
    core.patch_namespaced_config_map(
        "a", kube.namespace, {"metadata": {"labels": {"track": "stable"}}}
    )
    core.patch_namespaced_config_map(
        "a", kube.namespace, {"metadata": {"labels": {"track": "canary"}}}
    )
    events = watched(
        core.list_namespaced_config_map, kube, label_selector="track=canary", resource_version=since
    )
    assert [e["type"] for e in events] == ["DELETED", "ADDED"]


def test_a_namespaced_watch_sees_modifications(kube, apps):
    apps.create_namespaced_deployment(kube.namespace, deployment())
    since = apps.list_namespaced_deployment(kube.namespace).metadata.resource_version
    apps.patch_namespaced_deployment("web", kube.namespace, {"spec": {"replicas": 1}})
    events = watched(
        apps.list_namespaced_deployment,
        kube,
        field_selector="metadata.name=web",
        resource_version=since,
    )
    assert (events[0]["type"], events[0]["object"].spec.replicas) == ("MODIFIED", 1)
    if not kube.real:  # a real cluster's controller adds status MODIFIED events
        assert len(events) == 1


def test_watch_bookmarks_carry_the_latest_resource_version(kube, core):
    core.create_namespaced_config_map(kube.namespace, {"metadata": {"name": "a"}})
    latest = core.list_namespaced_config_map(kube.namespace).metadata.resource_version
    events = watched(
        core.list_namespaced_config_map, kube, resource_version=latest, allow_watch_bookmarks=True
    )
    bookmarks = [e for e in events if e["type"] == "BOOKMARK"]
    assert bookmarks
    assert int(bookmarks[-1]["raw_object"]["metadata"]["resourceVersion"]) >= int(latest)


# -- the kinds deployflow's routers write ------------------------------------------------


def service(name: str, version: str) -> dict:
    return {
        "metadata": {"name": name},
        "spec": {
            "selector": {"app": "web", "version": version},
            "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
        },
    }


def test_a_service_selector_switch_by_strategic_merge_keeps_ports(kube, core):
    core.create_namespaced_service(kube.namespace, service("web-active", "blue"))
    switched = core.patch_namespaced_service(
        "web-active", kube.namespace, {"spec": {"selector": {"version": "green"}}}
    )
    assert switched.spec.selector == {"app": "web", "version": "green"}
    assert [(p.port, p.target_port, p.protocol) for p in switched.spec.ports] == [(80, 8080, "TCP")]
    with_metrics = core.patch_namespaced_service(
        "web-active", kube.namespace, {"spec": {"ports": [{"name": "metrics", "port": 9090}]}}
    )
    assert [p.port for p in with_metrics.spec.ports] == [80, 9090]  # ports merge by port


def test_ingress_canary_annotations_by_merge_patch(kube):
    networking = client.NetworkingV1Api(kube.api_client)
    networking.create_namespaced_ingress(
        kube.namespace,
        {
            "metadata": {
                "name": "web-canary",
                "annotations": {"nginx.ingress.kubernetes.io/canary": "true"},
            },
            "spec": {
                "ingressClassName": "nginx",
                "rules": [
                    {
                        "host": "web.example",
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "pathType": "Prefix",
                                    "backend": {
                                        "service": {"name": "web-canary", "port": {"number": 80}}
                                    },
                                }
                            ]
                        },
                    }
                ],
            },
        },
    )
    patched = networking.patch_namespaced_ingress(
        "web-canary",
        kube.namespace,
        {"metadata": {"annotations": {"nginx.ingress.kubernetes.io/canary-weight": "25"}}},
    )
    assert patched.metadata.annotations == {
        "nginx.ingress.kubernetes.io/canary": "true",
        "nginx.ingress.kubernetes.io/canary-weight": "25",
    }
    assert patched.metadata.generation == 1  # annotations are metadata


def test_http_route_weights_by_json_patch(kube, custom):
    gateway = ("gateway.networking.k8s.io", "v1")
    backends = [
        {"name": "web-stable", "port": 80, "weight": 100},
        {"name": "web-canary", "port": 80, "weight": 0},
    ]
    spec = {"parentRefs": [{"name": "gw"}], "rules": [{"backendRefs": backends}]}
    create_custom(kube, custom, gateway, "httproutes", "HTTPRoute", "web", spec)
    weights = [
        {"op": "replace", "path": "/spec/rules/0/backendRefs/0/weight", "value": 75},
        {"op": "replace", "path": "/spec/rules/0/backendRefs/1/weight", "value": 25},
    ]
    patched = patch_custom(kube, custom, "httproutes", "web", weights, group=gateway)
    assert [b["weight"] for b in patched["spec"]["rules"][0]["backendRefs"]] == [75, 25]
    status = custom.patch_namespaced_custom_object_status(
        *gateway, kube.namespace, "httproutes", "web", {"status": {"parents": []}}
    )
    assert status["metadata"]["generation"] == 2  # the weights, not the status write


def test_custom_object_merge_patch_replaces_route_lists(kube, custom):
    """Why routers send whole route lists: a merge patch replaces a list (RFC 7386)."""
    create_virtual_service(
        kube,
        custom,
        "web",
        {
            "hosts": ["web"],
            "http": [
                {
                    "name": "primary",
                    "route": [{"destination": {"host": "web-stable"}, "weight": 100}],
                }
            ],
        },
    )
    canary = {
        "spec": {"http": [{"route": [{"destination": {"host": "web-canary"}, "weight": 100}]}]}
    }
    patched = patch_custom(kube, custom, "virtualservices", "web", canary, content_type=None)
    assert patched["spec"]["http"] == [
        {"route": [{"destination": {"host": "web-canary"}, "weight": 100}]}
    ]


def test_argo_rollouts_are_served_with_status_and_scale(kube, custom):
    argo = ("argoproj.io", "v1alpha1")
    spec = {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": {}}
    status = {"phase": "ignored on create"}
    create_custom(kube, custom, argo, "rollouts", "Rollout", "web", spec, status=status)
    got = custom.get_namespaced_custom_object(*argo, kube.namespace, "rollouts", "web")
    assert "status" not in got
    scale = custom.get_namespaced_custom_object_scale(*argo, kube.namespace, "rollouts", "web")
    assert scale["spec"]["replicas"] == 2


def test_listing_across_namespaces_and_namespace_mismatch(kube, core):
    core.create_namespaced_config_map(kube.namespace, {"metadata": {"name": "a"}})
    everywhere = core.list_config_map_for_all_namespaces()
    assert [
        (c.metadata.namespace, c.metadata.name) for c in everywhere.items if c.metadata.name == "a"
    ] == [(kube.namespace, "a")]
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_config_map(
            kube.namespace, {"metadata": {"name": "b", "namespace": "elsewhere"}}
        )
    assert caught.value.status == 400


def test_a_deployment_whose_selector_misses_its_labels_is_422_invalid(kube, apps):
    body = deployment()
    body["spec"]["selector"] = {"matchLabels": {"app": "other"}}
    with pytest.raises(ApiException) as caught:
        apps.create_namespaced_deployment(kube.namespace, body)
    assert caught.value.status == 422
    assert status_of(caught.value)["reason"] == "Invalid"


def test_generate_name_and_delete_collection_by_label(kube, core):
    made = core.create_namespaced_config_map(
        kube.namespace, {"metadata": {"generateName": "run-", "labels": {"batch": "1"}}}
    )
    assert made.metadata.name.startswith("run-")
    assert len(made.metadata.name) == len("run-") + 5
    core.create_namespaced_config_map(kube.namespace, {"metadata": {"name": "keep"}})
    core.delete_collection_namespaced_config_map(kube.namespace, label_selector="batch=1")
    assert [c.metadata.name for c in core.list_namespaced_config_map(kube.namespace).items] == [
        "keep"
    ]


def test_server_side_apply_is_refused_with_415(kube, apps):
    apps.create_namespaced_deployment(kube.namespace, deployment())
    with pytest.raises(ApiException) as caught:
        apps.patch_namespaced_deployment(
            "web",
            kube.namespace,
            {"spec": {"replicas": 1}},
            field_manager="t",
            _content_type="application/apply-patch+yaml",
        )
    assert caught.value.status == 415


def test_a_custom_resource_put_needs_a_resource_version(kube, custom):
    """Custom resources allow no unconditional update: a PUT without
    metadata.resourceVersion is 422; with the current one it replaces."""
    created = create_virtual_service(kube, custom, "vs", {"hosts": ["web"]})
    body = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "vs"},
        "spec": {"hosts": ["x"]},
    }
    with pytest.raises(ApiException) as caught:
        custom.replace_namespaced_custom_object(
            *ISTIO, kube.namespace, "virtualservices", "vs", body
        )
    assert caught.value.status == 422
    body["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"]
    replaced = custom.replace_namespaced_custom_object(
        *ISTIO, kube.namespace, "virtualservices", "vs", body
    )
    assert replaced["spec"] == {"hosts": ["x"]}
    assert replaced["metadata"]["generation"] == 2


def test_namespaces_are_cluster_scoped_and_deleting_one_deletes_its_objects(kube, core):
    core.create_namespace({"metadata": {"name": "shop"}})
    assert core.read_namespace("shop").status.phase == "Active"
    core.create_namespaced_config_map("shop", {"metadata": {"name": "a"}})
    assert "shop" in [n.metadata.name for n in core.list_namespace().items]
    core.delete_namespace("shop")
    if not kube.real:  # a real cluster deletes the contents, then the namespace, a bit later
        assert core.list_namespaced_config_map("shop").items == []
        with pytest.raises(ApiException) as caught:
            core.read_namespace("shop")
        assert caught.value.status == 404


def test_creating_a_namespace_answers_201_with_it_active(kube, core):
    name = f"{kube.namespace}-made"
    _, code, _ = core.create_namespace_with_http_info({"metadata": {"name": name}})
    assert code == 201
    made = json.loads(core.read_namespace(name, _preload_content=False).data)
    assert made["kind"] == "Namespace"
    assert made["status"] == {"phase": "Active"}
    assert made["spec"] == {"finalizers": ["kubernetes"]}
    core.delete_namespace(name)


def test_deleting_a_namespace_answers_with_it_terminating(kube, core):
    """Namespace storage finalizes: DELETE answers 200 with the Namespace, phase Terminating."""
    name = f"{kube.namespace}-gone"
    core.create_namespace({"metadata": {"name": name}})
    answer = core.delete_namespace(name, _preload_content=False)
    body = json.loads(answer.data)
    assert answer.status == 200
    assert body["kind"] == "Namespace"
    assert body["metadata"]["name"] == name
    assert body["status"]["phase"] == "Terminating"
    assert "deletionTimestamp" in body["metadata"]


def test_deleting_a_service_answers_with_the_service_others_with_a_status(kube, core, apps):
    """Service and Pod storage set ReturnDeletedObject; Deployments (and custom resources)
    answer with a Success Status naming what went."""
    service = {
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
    }
    core.create_namespaced_service(kube.namespace, service)
    gone = core.delete_namespaced_service("web", kube.namespace)  # typed: a V1Service
    assert gone.kind == "Service"
    assert gone.metadata.name == "web"
    assert gone.spec.selector == {"app": "web"}
    created = apps.create_namespaced_deployment(kube.namespace, deployment())
    answer = apps.delete_namespaced_deployment("web", kube.namespace, _preload_content=False)
    status = json.loads(answer.data)
    assert status["kind"] == "Status"
    assert status["status"] == "Success"
    assert status["details"]["name"] == "web"
    assert status["details"]["kind"] == "deployments"
    assert status["details"]["uid"] == created.metadata.uid


def test_the_double_writes_no_access_log(kube, core, caplog):
    """Requests are recorded by the double; aiohttp's access log, written from the server's
    thread, outlived pytest's streams ("--- Logging error ---" in a full run)."""
    with caplog.at_level(logging.INFO, logger="aiohttp.access"):
        core.list_namespace()
    assert [r for r in caplog.records if r.name == "aiohttp.access"] == []
    assert kube.requests()  # the request itself was served and recorded
