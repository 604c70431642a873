"""The Kubernetes routers' activities with the real ``kubernetes`` client over real HTTP, against
the API server double (tests/fixtures/kube.py): the objects stored, the requests made, and
what faults (500, 403, 404, 409) leave behind: either the whole change or none of it."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities import errors
from activities.clients import Clients
from activities.kubeconfig import KubeClients
from activities.routing.activities import RouterActivities
from activities.routing.base import HeaderRoute, Weights
from activities.routing.kube import HEADER_ROUTES
from activities.routing.models import GetWeightsInput, SetHeaderRoutesInput, SetWeightInput
from activities.routing.spec import RouterSpec
from tests.unit.test_kube_router_bodies import (
    ACTIVE,
    ADMIN,
    HTTP_ROUTE,
    PRIMARY,
    RULE,
    STABLE_INGRESS,
    VS,
)

Obj = dict[str, Any]
NGINX = "nginx.ingress.kubernetes.io"
ISTIO = ("networking.istio.io", "v1")
GATEWAY = ("gateway.networking.k8s.io", "v1")
BETA = HeaderRoute.model_validate(
    {"name": "beta", "match": [{"headerName": "X-Beta", "headerValue": {"exact": "1"}}]}
)


def fresh(obj: Obj) -> Obj:
    """``obj`` as a client creates it: no resourceVersion, the test's namespace."""
    body = copy.deepcopy(obj)
    body["metadata"].pop("resourceVersion", None)
    body["metadata"]["namespace"] = "default"
    return body


class Routers:
    """The router activities of a worker whose kubeconfig is the double's."""

    def __init__(self, kube: Any) -> None:
        self.kube = kube
        self.activities = RouterActivities(Clients(kubernetes=KubeClients(str(kube.kubeconfig))))
        self.env = ActivityEnvironment()
        self.start: int | None = None  # requests before the first activity set the scene

    def run(self, activity: Callable[[Any], Any], request: Any) -> Any:
        if self.start is None:
            self.start = len(self.kube.requests())
        return self.env.run(activity, request)

    def spec(self, kind: str, **fields: object) -> RouterSpec:
        where = {"context": self.kube.context, "namespace": self.kube.namespace}
        return RouterSpec.model_validate({kind: where | fields})

    def set_weight(self, router: RouterSpec, canary: int) -> Weights:
        weights = Weights.canary_at(canary)
        request = SetWeightInput(router=router, weights=weights, key="rollout/step-1")
        result: Weights = self.run(self.activities.set_weight, request)
        return result

    def get_weights(self, router: RouterSpec) -> Weights:
        result: Weights = self.run(self.activities.get_weights, GetWeightsInput(router=router))
        return result

    def set_header_routes(self, router: RouterSpec, routes: list[HeaderRoute]) -> list[HeaderRoute]:
        request = SetHeaderRoutesInput(router=router, routes=routes, key="rollout/step-2")
        result: list[HeaderRoute] = self.run(self.activities.set_header_routes, request)
        return result

    def writes(self) -> list[tuple[str, str, str]]:
        """(method, path, content type) of every request that could change something."""
        return [(r.method, r.path, r.content_type) for r in self.made() if r.method != "GET"]

    def patches(self) -> list[Any]:
        return [r.body for r in self.made() if r.method == "PATCH"]

    def made(self) -> list[Any]:
        """Requests since the first activity ran."""
        return self.kube.requests()[self.start or 0 :]


@pytest.fixture
def routers(kube: Any) -> Routers:
    return Routers(kube)


@pytest.fixture
def core(kube: Any) -> client.CoreV1Api:
    return client.CoreV1Api(kube.api_client)


@pytest.fixture
def custom(kube: Any) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube.api_client)


def failed(run: Callable[[], object]) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        run()
    return caught.value


# -- Service selector (blue-green) --------------------------------------------------------------


@pytest.fixture
def services(core: client.CoreV1Api) -> RouterSpec:
    core.create_namespaced_service("default", fresh(ACTIVE))
    preview = fresh(ACTIVE)
    preview["metadata"]["name"] = "checkout-preview"
    core.create_namespaced_service("default", preview)
    return RouterSpec.model_validate(
        {
            "service": {
                "context": "deployflow-double",
                "activeService": "checkout",
                "previewService": "checkout-preview",
                "stableSelector": {"app": "checkout"},
                "canarySelector": {"app": "checkout", "track": "canary"},
            }
        }
    )


def selector(core: client.CoreV1Api, name: str) -> dict[str, str]:
    found: dict[str, str] = core.read_namespaced_service(name, "default").spec.selector
    return found


def test_blue_green_switches_the_active_service_selector_and_back(routers, services, core):
    assert routers.get_weights(services) == Weights(stable=100, canary=0)

    assert routers.set_weight(services, 100) == Weights(stable=0, canary=100)
    assert selector(core, "checkout") == {"app": "checkout", "tier": "web", "track": "canary"}
    assert selector(core, "checkout-preview") == {
        "app": "checkout",
        "tier": "web",
        "track": "canary",
    }
    assert routers.set_weight(services, 0) == Weights(stable=100, canary=0)

    assert selector(core, "checkout") == {"app": "checkout", "tier": "web"}
    assert routers.writes() == [
        (
            "PATCH",
            "/api/v1/namespaces/default/services/checkout-preview",
            "application/merge-patch+json",
        ),
        ("PATCH", "/api/v1/namespaces/default/services/checkout", "application/merge-patch+json"),
        ("PATCH", "/api/v1/namespaces/default/services/checkout", "application/merge-patch+json"),
    ]
    versions = [p["metadata"]["resourceVersion"] for p in routers.patches()]
    assert all(versions)
    assert routers.patches()[-1]["spec"] == {"selector": {"track": None}}


def test_repeating_a_switch_sends_no_write(routers, services):
    routers.set_weight(services, 100)
    before = len(routers.writes())

    routers.set_weight(services, 100)

    assert len(routers.writes()) == before


def test_a_split_on_a_service_router_is_refused_before_any_request(routers, services):
    error = failed(lambda: routers.set_weight(services, 30))

    assert error.type == errors.INVALID_SPEC
    assert error.non_retryable
    assert routers.writes() == []


def test_a_409_on_the_switch_is_read_again_and_the_switch_lands_once(routers, services, core, kube):
    kube.faults.fail("PATCH", "services", 409, times=2)

    assert routers.set_weight(services, 100) == Weights(stable=0, canary=100)

    assert selector(core, "checkout")["track"] == "canary"
    gets = [r for r in kube.requests() if r.method == "GET" and r.path.endswith("/checkout")]
    assert len(gets) >= 3  # each conflict read the Service again before re-sending


def test_a_missing_active_service_fails_naming_it_and_changes_nothing(routers, services, core):
    core.delete_namespaced_service("checkout", "default", _preload_content=False)

    error = failed(lambda: routers.set_weight(services, 100))

    assert error.type == errors.KUBERNETES_OBJECT_MISSING
    assert "Service default/checkout does not exist" in error.message
    assert selector(core, "checkout-preview") == {
        "app": "checkout",
        "tier": "web",
        "track": "canary",
    }


# -- ingress-nginx -------------------------------------------------------------------------


@pytest.fixture
def ingress(kube: Any, routers: Routers) -> RouterSpec:
    client.NetworkingV1Api(kube.api_client).create_namespaced_ingress(
        "default", fresh(STABLE_INGRESS)
    )
    return routers.spec(
        "ingressNginx",
        stableIngress="checkout",
        stableService="checkout",
        canaryService="checkout-canary",
    )


def read_ingress(kube: Any, name: str) -> Obj:
    api = client.NetworkingV1Api(kube.api_client)
    body: Obj = kube.api_client.sanitize_for_serialization(
        api.read_namespaced_ingress(name, "default")
    )
    return body


def test_the_first_weight_creates_the_canary_ingress_then_patches_its_weight(
    routers, ingress, kube
):
    assert routers.get_weights(ingress) == Weights(stable=100, canary=0)

    assert routers.set_weight(ingress, 5) == Weights(stable=95, canary=5)
    assert routers.set_weight(ingress, 50) == Weights(stable=50, canary=50)

    canary = read_ingress(kube, "checkout-canary")
    assert canary["metadata"]["annotations"] == {
        f"{NGINX}/canary": "true",
        f"{NGINX}/canary-weight": "50",
    }
    assert canary["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "deployflow"}
    paths = canary["spec"]["rules"][0]["http"]["paths"]
    assert [p["backend"]["service"]["name"] for p in paths] == ["checkout-canary", "cdn"]
    assert read_ingress(kube, "checkout")["metadata"].get("annotations") is None
    ingresses = "/apis/networking.k8s.io/v1/namespaces/default/ingresses"
    assert routers.writes() == [
        ("POST", ingresses, "application/json"),
        ("PATCH", f"{ingresses}/checkout-canary", "application/merge-patch+json"),
    ]
    assert routers.patches()[0]["metadata"]["annotations"] == {f"{NGINX}/canary-weight": "50"}


def test_an_ingress_header_route_rides_along_weight_changes_until_removed(routers, ingress, kube):
    routers.set_weight(ingress, 10)

    assert routers.set_header_routes(ingress, [BETA]) == [BETA]
    routers.set_weight(ingress, 20)
    annotations = read_ingress(kube, "checkout-canary")["metadata"]["annotations"]
    assert annotations[f"{NGINX}/canary-by-header"] == "X-Beta"
    assert annotations[f"{NGINX}/canary-by-header-value"] == "1"
    assert annotations[f"{NGINX}/canary-weight"] == "20"

    assert routers.set_header_routes(ingress, []) == []
    annotations = read_ingress(kube, "checkout-canary")["metadata"]["annotations"]
    assert annotations == {f"{NGINX}/canary": "true", f"{NGINX}/canary-weight": "20"}


def test_a_canary_ingress_someone_else_owns_is_never_overwritten(routers, ingress, kube):
    theirs = fresh(STABLE_INGRESS)
    theirs["metadata"]["name"] = "checkout-canary"
    client.NetworkingV1Api(kube.api_client).create_namespaced_ingress("default", theirs)

    error = failed(lambda: routers.set_weight(ingress, 10))

    assert error.type == errors.KUBERNETES_OBJECT_FOREIGN
    assert "is not deployflow's" in error.message
    assert read_ingress(kube, "checkout-canary")["metadata"].get("annotations") is None


@pytest.mark.parametrize(
    ("status", "error_type", "retryable"),
    [
        (500, errors.KUBERNETES_REQUEST_FAILED, True),
        (403, errors.KUBERNETES_FORBIDDEN, False),
        (422, errors.KUBERNETES_REQUEST_INVALID, False),
    ],
)
def test_a_failed_ingress_patch_leaves_the_previous_weight_and_a_retry_lands_it(
    routers, ingress, kube, status, error_type, retryable
):
    routers.set_weight(ingress, 10)
    kube.faults.fail("PATCH", "ingresses", status)

    error = failed(lambda: routers.set_weight(ingress, 40))

    assert (error.type, error.non_retryable) == (error_type, not retryable)
    assert routers.get_weights(ingress) == Weights(stable=90, canary=10)
    assert routers.set_weight(ingress, 40) == Weights(stable=60, canary=40)


def test_a_missing_stable_ingress_fails_naming_it(routers, ingress, kube):
    client.NetworkingV1Api(kube.api_client).delete_namespaced_ingress(
        "checkout", "default", _preload_content=False
    )

    error = failed(lambda: routers.set_weight(ingress, 10))

    assert error.type == errors.KUBERNETES_OBJECT_MISSING
    assert "Ingress default/checkout does not exist" in error.message
    assert [w for w in routers.writes() if w[0] != "DELETE"] == []


# -- Istio --------------------------------------------------------------------------------


@pytest.fixture
def virtual_service(custom: client.CustomObjectsApi, routers: Routers) -> RouterSpec:
    custom.create_namespaced_custom_object(*ISTIO, "default", "virtualservices", fresh(VS))
    return routers.spec(
        "istio",
        virtualService={"name": "checkout", "routes": ["primary"]},
        stableService="checkout-stable",
        canaryService="checkout-canary",
    )


def read_vs(custom: client.CustomObjectsApi) -> Obj:
    found: Obj = custom.get_namespaced_custom_object(
        *ISTIO, "default", "virtualservices", "checkout"
    )
    return found


def test_istio_weights_and_a_header_route_are_stored_and_removed(routers, virtual_service, custom):
    assert routers.set_weight(virtual_service, 25) == Weights(stable=75, canary=25)
    assert routers.set_header_routes(virtual_service, [BETA])[0].name == "beta"

    vs = read_vs(custom)
    assert [r["name"] for r in vs["spec"]["http"]] == ["beta", "primary", "admin"]
    assert [d["weight"] for d in vs["spec"]["http"][1]["route"]] == [75, 25]
    assert vs["spec"]["http"][0]["match"] == [
        {"uri": {"prefix": "/"}, "headers": {"x-beta": {"exact": "1"}}}
    ]
    assert vs["metadata"]["annotations"] == {HEADER_ROUTES: '["beta"]'}
    assert vs["spec"]["http"][2] == ADMIN

    routers.set_header_routes(virtual_service, [])
    routers.set_weight(virtual_service, 0)
    vs = read_vs(custom)
    assert vs["spec"]["http"] == [PRIMARY, ADMIN]
    vs_path = "/apis/networking.istio.io/v1/namespaces/default/virtualservices/checkout"
    assert {w for w in routers.writes()} == {("PATCH", vs_path, "application/json-patch+json")}


def test_an_istio_edit_between_read_and_patch_is_kept_not_overwritten(
    routers, virtual_service, custom, kube
):
    """Someone adds a route after the router read the VirtualService: its patch carries the
    old resourceVersion, the API server answers 409, the router reads again."""
    team = copy.deepcopy(ADMIN) | {"name": "team"}
    api = routers.activities.clients.kubernetes.api(kube.context)
    original = api.call_api
    edited: list[bool] = []

    def team_edits_first(*args: Any, **kwargs: Any) -> Any:
        if args[0] == "PATCH" and not edited:
            edited.append(True)
            vs = read_vs(custom)
            vs["spec"]["http"].append(team)
            custom.replace_namespaced_custom_object(
                *ISTIO, "default", "virtualservices", "checkout", vs
            )
        return original(*args, **kwargs)

    api.call_api = team_edits_first  # the other writer, racing the router's read-modify-write

    assert routers.set_weight(virtual_service, 30) == Weights(stable=70, canary=30)

    vs = read_vs(custom)
    assert [r["name"] for r in vs["spec"]["http"]] == ["primary", "admin", "team"]
    statuses = [r.method for r in kube.requests() if r.method in ("PATCH", "PUT")]
    assert statuses == ["PUT", "PATCH", "PATCH"]  # the team's write, the refused, the re-read


def test_istio_faults_leave_the_virtual_service_as_it_was(routers, virtual_service, custom, kube):
    routers.set_weight(virtual_service, 10)
    before = read_vs(custom)
    kube.faults.fail("PATCH", "virtualservices", 500)

    error = failed(lambda: routers.set_header_routes(virtual_service, [BETA]))

    assert error.type == errors.KUBERNETES_REQUEST_FAILED
    assert read_vs(custom) == before
    kube.faults.fail("PATCH", "virtualservices", 409, times=5)
    error = failed(lambda: routers.set_weight(virtual_service, 50))
    assert error.type == errors.KUBERNETES_REQUEST_FAILED
    assert "changed by another writer on each of 5 attempts" in error.message
    assert read_vs(custom) == before


def test_subset_based_istio_checks_the_destination_rule_first(routers, custom):
    subset_vs = fresh(VS)
    subset_vs["spec"]["http"] = [
        {
            "route": [
                {"destination": {"host": "checkout", "subset": "stable"}, "weight": 100},
                {"destination": {"host": "checkout", "subset": "canary"}, "weight": 0},
            ]
        }
    ]
    custom.create_namespaced_custom_object(*ISTIO, "default", "virtualservices", subset_vs)
    rule = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "checkout"},
        "spec": {
            "host": "checkout",
            "subsets": [{"name": "stable", "labels": {"app": "checkout"}}],
        },
    }
    custom.create_namespaced_custom_object(*ISTIO, "default", "destinationrules", rule)
    spec = routers.spec(
        "istio",
        virtualService={"name": "checkout"},
        destinationRule={
            "name": "checkout",
            "stableSubsetName": "stable",
            "canarySubsetName": "canary",
        },
    )

    error = failed(lambda: routers.set_weight(spec, 20))
    assert error.type == errors.INVALID_SPEC
    assert "defines subsets ['stable'], not ['canary', 'stable']" in error.message

    rule["spec"]["subsets"].append({"name": "canary", "labels": {"app": "checkout-canary"}})
    current = custom.get_namespaced_custom_object(*ISTIO, "default", "destinationrules", "checkout")
    rule["metadata"] = current["metadata"]
    custom.replace_namespaced_custom_object(*ISTIO, "default", "destinationrules", "checkout", rule)
    assert routers.set_weight(spec, 20) == Weights(stable=80, canary=20)


# -- Gateway API ----------------------------------------------------------------------------


@pytest.fixture
def http_route(custom: client.CustomObjectsApi, routers: Routers) -> RouterSpec:
    custom.create_namespaced_custom_object(*GATEWAY, "default", "httproutes", fresh(HTTP_ROUTE))
    return routers.spec(
        "gatewayAPI",
        httpRoute="checkout",
        stableService="checkout-stable",
        canaryService="checkout-canary",
    )


def read_route(custom: client.CustomObjectsApi) -> Obj:
    found: Obj = custom.get_namespaced_custom_object(*GATEWAY, "default", "httproutes", "checkout")
    return found


def test_gateway_api_backend_weights_and_a_header_rule(routers, http_route, custom):
    assert routers.set_weight(http_route, 40) == Weights(stable=60, canary=40)
    assert routers.set_header_routes(http_route, [BETA]) == [BETA]

    rules = read_route(custom)["spec"]["rules"]
    assert [r.get("name") for r in rules] == ["beta", None]
    assert rules[0]["backendRefs"] == [{"name": "checkout-canary", "port": 80}]
    assert [b["weight"] for b in rules[1]["backendRefs"]] == [60, 40]

    routers.set_header_routes(http_route, [])
    routers.set_weight(http_route, 0)
    assert read_route(custom)["spec"]["rules"] == [RULE]


def test_a_403_on_the_http_route_is_not_retried_and_changes_nothing(
    routers, http_route, custom, kube
):
    kube.faults.fail("PATCH", "httproutes", 403)

    error = failed(lambda: routers.set_weight(http_route, 40))

    assert error.type == errors.KUBERNETES_FORBIDDEN
    assert error.non_retryable
    assert "403" in error.message
    assert read_route(custom)["spec"]["rules"] == [RULE]


def test_a_404_read_of_the_http_route_names_it(routers, http_route, kube):
    kube.faults.fail("GET", "httproutes", 404)

    error = failed(lambda: routers.get_weights(http_route))

    assert error.type == errors.KUBERNETES_OBJECT_MISSING
    assert "HTTPRoute default/checkout does not exist" in error.message
