"""Fault injection on the API server double: what the real server can answer (500, 403,
409, a watch that the server or a proxy cuts), on demand, before anything is written."""

from __future__ import annotations

import copy
import json

import kmock
import pytest
import urllib3
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from tests.integration.test_kube_double import deployment


@pytest.fixture
def web(kube, apps):
    return apps.create_namespaced_deployment(kube.namespace, deployment())


@pytest.mark.parametrize(
    ("status", "reason"), [(500, "InternalError"), (403, "Forbidden"), (409, "Conflict")]
)
@pytest.mark.usefixtures("web")
def test_the_next_patch_fails_with_a_status_body_and_writes_nothing(kube, apps, status, reason):
    before = apps.read_namespaced_deployment("web", kube.namespace).metadata.resource_version
    fault = kube.faults.fail("PATCH", "deployments", status)
    with pytest.raises(ApiException) as caught:
        apps.patch_namespaced_deployment("web", kube.namespace, {"spec": {"replicas": 1}})
    assert caught.value.status == status
    assert json.loads(caught.value.body)["reason"] == reason
    assert (
        apps.read_namespaced_deployment("web", kube.namespace).metadata.resource_version == before
    )
    assert fault.times == 0
    retried = apps.patch_namespaced_deployment("web", kube.namespace, {"spec": {"replicas": 1}})
    assert retried.spec.replicas == 1


@pytest.mark.usefixtures("web")
def test_a_fault_matches_only_its_method_resource_and_subresource(kube, apps):
    kube.faults.fail("PATCH", "deployments", 500, subresource="scale", times=2)
    apps.patch_namespaced_deployment("web", kube.namespace, {"spec": {"replicas": 2}})  # not /scale
    client.CoreV1Api(kube.api_client).list_namespaced_config_map(kube.namespace)
    for _ in range(2):
        with pytest.raises(ApiException):
            apps.patch_namespaced_deployment_scale("web", kube.namespace, {"spec": {"replicas": 4}})
    apps.patch_namespaced_deployment_scale("web", kube.namespace, {"spec": {"replicas": 4}})


def test_a_dropped_watch_ends_after_its_events(kube):
    core = client.CoreV1Api(kube.api_client)
    for name in "abc":
        core.create_namespaced_config_map(kube.namespace, {"metadata": {"name": name}})
    kube.faults.drop_watch_after(1)
    first = list(
        watch.Watch().stream(core.list_namespaced_config_map, kube.namespace, timeout_seconds=5)
    )
    assert [e["object"].metadata.name for e in first] == ["a"]
    again = list(
        watch.Watch().stream(core.list_namespaced_config_map, kube.namespace, timeout_seconds=1)
    )
    assert [e["object"].metadata.name for e in again] == ["a", "b", "c"]


@pytest.mark.usefixtures("web")
def test_kmock_reactions_take_precedence_over_the_double(kube, apps):
    if kube.server is None:
        pytest.skip("needs the API server double")
    kube.server.double["get", kmock.resource("apps", "v1", "deployments")][:1] << 503
    with pytest.raises(ApiException) as caught:
        apps.read_namespaced_deployment("web", kube.namespace)
    assert caught.value.status == 503
    assert apps.read_namespaced_deployment("web", kube.namespace).metadata.name == "web"


@pytest.mark.usefixtures("web")
def test_the_client_retries_a_timed_out_read_itself_unless_told_not_to(kube, apps):
    """urllib3's default Retry(3) re-sends a GET that timed out: the caller never sees the
    slow answer. Activities must set ``configuration.retries`` low so Temporal owns retrying."""
    kube.faults.slow("GET", "deployments", 1.0)
    assert (
        apps.read_namespaced_deployment("web", kube.namespace, _request_timeout=0.2).metadata.name
        == "web"
    )
    reads = [
        r for r in kube.requests() if r.method == "GET" and r.path.endswith("/deployments/web")
    ]
    assert len(reads) == 2

    strict = copy.copy(kube.api_client.configuration)
    strict.retries = 0
    kube.faults.slow("GET", "deployments", 1.0)
    with client.ApiClient(strict) as api_client, pytest.raises(urllib3.exceptions.HTTPError):
        client.AppsV1Api(api_client).read_namespaced_deployment(
            "web", kube.namespace, _request_timeout=0.2
        )


def test_several_clusters_share_one_kubeconfig(kube_cluster):
    staging, prod = kube_cluster("staging"), kube_cluster("prod-a")
    assert staging.kubeconfig == prod.kubeconfig
    client.CoreV1Api(staging.api_client).create_namespaced_config_map(
        "default", {"metadata": {"name": "only-here"}}
    )
    assert client.CoreV1Api(prod.api_client).list_namespaced_config_map("default").items == []
    contexts, current = config.list_kube_config_contexts(str(prod.kubeconfig))
    assert [c["name"] for c in contexts] == ["staging", "prod-a"]
    assert current["name"] == "staging"
