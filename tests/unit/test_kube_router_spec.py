"""The Kubernetes router kinds in a spec's ``router:``: shapes, defaults and errors naming the
field, and which of them can route by header (lint's ``setHeaderRoute`` check)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from activities.routing.base import HeaderRoute
from activities.routing.spec import RouterSpec
from tests.workflows.harness import rollout
from workflows.core.spec import SpecError, validation_problems

SERVICE = {
    "activeService": "checkout",
    "previewService": "checkout-preview",
    "stableSelector": {"app": "checkout"},
    "canarySelector": {"app": "checkout-canary"},
}
NGINX = {"stableIngress": "checkout", "stableService": "checkout", "canaryService": "checkout-c"}
ISTIO_HOST = {
    "virtualService": {"name": "checkout", "routes": ["primary"]},
    "stableService": "checkout-stable",
    "canaryService": "checkout-canary",
}
ISTIO_SUBSET = {
    "virtualService": {"name": "checkout", "routes": []},
    "destinationRule": {"name": "checkout", "stableSubsetName": "s", "canarySubsetName": "c"},
}
GATEWAY = {"httpRoute": "checkout", "stableService": "stable", "canaryService": "canary"}


def route(name: str = "beta", **value: str) -> HeaderRoute:
    return HeaderRoute.model_validate(
        {"name": name, "match": [{"headerName": "X-Beta", "headerValue": value or {"exact": "1"}}]}
    )


def problems(router: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        RouterSpec.model_validate(router)
    return validation_problems(caught.value, "spec.router")


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("service", SERVICE),
        ("ingressNginx", NGINX),
        ("istio", ISTIO_HOST),
        ("istio", ISTIO_SUBSET),
        ("gatewayAPI", GATEWAY),
    ],
)
def test_each_kubernetes_router_is_selected_by_its_key_and_lists_no_servers(kind, body):
    spec = RouterSpec.model_validate({kind: {"context": "prod-a", "namespace": "shop", **body}})

    assert spec.kind == kind
    assert spec.pools() is None
    chosen = spec.selected()
    assert (chosen.context, chosen.namespace) == ("prod-a", "shop")  # type: ignore[attr-defined]
    dumped = spec.model_dump(exclude_none=True)
    assert list(dumped) == [kind]
    assert {k: dumped[kind][k] for k in body} == body
    assert RouterSpec.model_validate(dumped) == spec


def test_context_and_namespace_default_to_the_workers_current_context_and_default():
    spec = RouterSpec.model_validate({"gatewayAPI": GATEWAY}).gateway_api

    assert spec is not None
    assert (spec.context, spec.namespace) == (None, "default")


def test_the_canary_ingress_is_named_after_the_stable_one_unless_named():
    default = RouterSpec.model_validate({"ingressNginx": NGINX}).ingress_nginx
    named = RouterSpec.model_validate({"ingressNginx": NGINX | {"canaryIngress": "c"}})

    assert default is not None
    assert default.canary_ingress_name == "checkout-canary"
    assert named.ingress_nginx is not None
    assert named.ingress_nginx.canary_ingress_name == "c"


@pytest.mark.parametrize(
    ("router", "expected"),
    [
        (
            {"service": SERVICE | {"activeService": "Checkout"}},
            "spec.router.service.activeService: 'Checkout' is not a DNS-1035 label",
        ),
        (
            {"service": SERVICE | {"canarySelector": {"app": "checkout"}}},
            "spec.router.service: canarySelector: must differ from stableSelector",
        ),
        (
            {"service": SERVICE | {"stableSelector": {}}},
            "spec.router.service.stableSelector: Dictionary should have at least 1 item",
        ),
        (
            {"service": SERVICE | {"stableSelector": {"app": "a b"}}},
            "spec.router.service.stableSelector.app: 'a b' is not a label value",
        ),
        (
            {"ingressNginx": NGINX | {"namespace": "Shop"}},
            "spec.router.ingressNginx.namespace: 'Shop' is not a DNS-1123 label",
        ),
        (
            {"ingressNginx": NGINX | {"canaryService": "checkout"}},
            "spec.router.ingressNginx: canaryService: must differ from stableService",
        ),
        (
            {"istio": {"virtualService": {"name": "vs"}, "stableService": "s"}},
            "spec.router.istio: stableService and canaryService: required without destinationRule",
        ),
        (
            {"istio": ISTIO_SUBSET | {"stableService": "s"}},
            "spec.router.istio: destinationRule: subset-based routing names no "
            "stableService/canaryService",
        ),
        (
            {"gatewayAPI": GATEWAY | {"httpRoute": "a_b"}},
            "spec.router.gatewayAPI.httpRoute: 'a_b' is not a DNS-1123 subdomain (an object name)",
        ),
        (
            {"gatewayAPI": GATEWAY | {"context": "bad\nname"}},
            "spec.router.gatewayAPI.context: 'bad\\nname' is not a kubeconfig context name "
            "(no control characters)",
        ),
        (
            {"gatewayAPI": GATEWAY | {"token": "s3cret"}},
            "spec.router.gatewayAPI.token: Extra inputs are not permitted",
        ),
    ],
)
def test_a_bad_kubernetes_router_names_the_field(router, expected):
    assert any(problem.startswith(expected) for problem in problems(router)), problems(router)


@pytest.mark.parametrize(
    ("router", "routes", "expected"),
    [
        ({"nop": {"stable": ["10.0.0.1:80"], "canary": ["10.0.0.2:80"]}}, [route()], "nop"),
        ({"service": SERVICE}, [route()], "router service cannot route by header"),
        ({"ingressNginx": NGINX}, [route(), route("b")], "one header route at a time"),
        ({"ingressNginx": NGINX}, [route(prefix="v")], "not by prefix (route beta, header X-Beta)"),
        ({"gatewayAPI": GATEWAY}, [route(prefix="v")], "Gateway API matches a header by exact"),
    ],
)
def test_lint_says_which_header_routes_a_router_cannot_hold(router, routes, expected):
    problem = RouterSpec.model_validate(router).header_routes_problem(routes)

    assert problem is not None
    assert expected in problem


@pytest.mark.parametrize(
    ("router", "routes"),
    [
        ({"ingressNginx": NGINX}, [route(regex="^v[12]$")]),
        ({"istio": ISTIO_HOST}, [route(prefix="v"), route("b", regex=".*")]),
        ({"gatewayAPI": GATEWAY}, [route(), route("b", regex="x")]),
    ],
)
def test_header_capable_routers_hold_what_they_can(router, routes):
    assert RouterSpec.model_validate(router).header_routes_problem(routes) is None


def test_a_header_route_match_names_its_bad_field():
    with pytest.raises(ValidationError) as caught:
        HeaderRoute.model_validate(
            {"name": "beta", "match": [{"headerName": "X Beta", "headerValue": {"exact": "1"}}]}
        )
    assert (
        "match[0].headerName: String should match pattern" in validation_problems(caught.value)[0]
    )
    with pytest.raises(ValidationError) as caught:
        HeaderRoute.model_validate(
            {
                "name": "b",
                "match": [{"headerName": "X", "headerValue": {"exact": "1", "regex": "x"}}],
            }
        )
    assert validation_problems(caught.value) == [
        "match[0].headerValue: headerValue: set exactly one of exact, prefix, regex; got exact, regex"
    ]


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["kind", "context", "namespace", "httpRoute", "stableService", "x"]),
        st.one_of(st.text(max_size=20), st.integers(), st.none(), st.lists(st.text(max_size=3))),
    )
)
def test_any_gateway_api_body_is_a_spec_or_errors_naming_a_field(body):
    try:
        RouterSpec.model_validate({"gatewayAPI": body})
    except ValidationError as exc:
        for problem in validation_problems(exc, "spec.router"):
            assert problem.startswith("spec.router.gatewayAPI")


def canary_spec(router: dict[str, Any], steps: list[dict[str, Any]]) -> list[str]:
    with pytest.raises(SpecError) as caught:
        rollout(steps, router=router)
    return caught.value.problems


BETA_STEP = {
    "setHeaderRoute": {
        "name": "beta",
        "match": [{"headerName": "X-Beta", "headerValue": {"exact": "1"}}],
    }
}
VM_NGINX = {
    "nginx": {
        "upstream": "checkout",
        "configPath": "/etc/nginx/conf.d/checkout.conf",
        "stable": ["10.0.0.1:80"],
        "canary": ["10.0.0.2:80"],
    }
}


def test_lint_refuses_a_header_route_on_nginx_on_vms_naming_the_step():
    assert canary_spec(VM_NGINX, [{"setWeight": 10}, BETA_STEP]) == [
        "spec.strategy.canary.steps[1].setHeaderRoute: router nginx cannot route by header "
        "(setHeaderRoute)"
    ]


def test_lint_refuses_a_second_ingress_nginx_header_route_while_the_first_is_held():
    second = {"setHeaderRoute": BETA_STEP["setHeaderRoute"] | {"name": "gamma"}}
    removed = {"setHeaderRoute": {"name": "beta"}}

    problems = canary_spec({"ingressNginx": NGINX}, [BETA_STEP, second])
    swapped = rollout([BETA_STEP, removed, second], router={"ingressNginx": NGINX})

    assert problems == [
        "spec.strategy.canary.steps[1].setHeaderRoute: ingress-nginx holds one header route "
        "at a time (canary-by-header); got beta, gamma"
    ]
    assert [s.describe() for s in swapped.spec.strategy.canary.steps] == [  # type: ignore[union-attr]
        "setHeaderRoute beta",
        "setHeaderRoute beta (remove)",
        "setHeaderRoute gamma",
    ]


def test_lint_refuses_a_split_of_a_service_selector():
    assert canary_spec({"service": SERVICE}, [{"setWeight": 20}, {"setWeight": 100}]) == [
        "spec.strategy.canary.steps[0].setWeight: router service moves all traffic at once "
        "(0 or 100 only; use blueGreen, or a router that splits)"
    ]


def test_header_routes_lint_clean_on_istio_and_gateway_api():
    for router in ({"istio": ISTIO_HOST}, {"gatewayAPI": GATEWAY}):
        spec = rollout([{"setWeight": 10}, BETA_STEP, {"setWeight": 100}], router=router)
        assert spec.spec.router.kind in ("istio", "gatewayAPI")


def test_a_kubernetes_router_with_a_command_platform_has_no_hosts_to_deploy_to():
    platform = {"command": {"deploy": ["deploy", "{host}", "{version}"]}}

    with pytest.raises(SpecError) as caught:
        rollout([{"setWeight": 10}], router={"gatewayAPI": GATEWAY}, platform=platform)

    assert caught.value.problems == [
        "spec.platform: router gatewayAPI lists no hosts for platform command to deploy to "
        "(use platform kubernetes)"
    ]
