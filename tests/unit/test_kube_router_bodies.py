"""The Kubernetes routers' pure builders: the exact bodies and patch types each change sends,
and, for any weights, that a change applied by an independent patch implementation
(``jsonpatch``; RFC 7386 below) reads back as asked and a second build changes nothing."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonpatch
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.exceptions import ApplicationError

from activities.errors import INVALID_SPEC, KUBERNETES_OBJECT_FOREIGN
from activities.routing import gateway_api, ingress_nginx, istio, service
from activities.routing.base import HeaderRoute, Weights
from activities.routing.kube import HEADER_ROUTES, JSON_PATCH, MERGE_PATCH, Patch, list_patch
from activities.routing.spec import RouterSpec

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NGINX = "nginx.ingress.kubernetes.io"
Obj = dict[str, Any]


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386, section 2, as written there."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


def applied(obj: Obj, patch: Patch) -> Obj:
    """``obj`` after ``patch``, as the API server would store it (a new resourceVersion)."""
    if patch.content_type == JSON_PATCH:
        assert isinstance(patch.body, list)
        result = jsonpatch.apply_patch(obj, patch.body)
    else:
        assert patch.content_type == MERGE_PATCH
        result = apply_merge_patch(obj, patch.body)
    assert result["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]
    result["metadata"]["resourceVersion"] = str(int(obj["metadata"]["resourceVersion"]) + 1)
    return dict(result)


def header_route(name: str = "beta", **value: str) -> HeaderRoute:
    return HeaderRoute.model_validate(
        {"name": name, "match": [{"headerName": "X-Beta", "headerValue": value or {"exact": "1"}}]}
    )


weights = st.integers(0, 100).map(Weights.canary_at)


# -- Service selector -------------------------------------------------------------------

SERVICE = RouterSpec.model_validate(
    {
        "service": {
            "namespace": "shop",
            "activeService": "checkout",
            "stableSelector": {"app": "checkout"},
            "canarySelector": {"app": "checkout", "track": "canary"},
        }
    }
).service
assert SERVICE is not None
ACTIVE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "checkout", "namespace": "shop", "resourceVersion": "7"},
    "spec": {"selector": {"app": "checkout", "tier": "web"}, "ports": [{"port": 80}]},
}


def test_switching_a_service_to_the_canary_is_one_merge_patch_of_its_selector():
    patch = service.selector_patch(SERVICE, ACTIVE, {"app": "checkout", "track": "canary"})

    assert patch == Patch(
        {"metadata": {"resourceVersion": "7"}, "spec": {"selector": {"track": "canary"}}},
        "application/merge-patch+json",
    )


def test_switching_back_removes_the_canary_key_and_keeps_the_teams_keys():
    canary = copy.deepcopy(ACTIVE)
    canary["spec"]["selector"]["track"] = "canary"

    patch = service.selector_patch(SERVICE, canary, {"app": "checkout"})

    assert patch is not None
    assert patch.body == {
        "metadata": {"resourceVersion": "7"},
        "spec": {"selector": {"track": None}},
    }
    assert applied(canary, patch)["spec"]["selector"] == {"app": "checkout", "tier": "web"}


def test_a_service_that_already_selects_the_side_needs_no_patch():
    assert service.selector_patch(SERVICE, ACTIVE, {"app": "checkout"}) is None
    assert service.selected_weights(SERVICE, ACTIVE) == Weights(stable=100, canary=0)


def test_a_selector_switch_refuses_a_split_and_a_selector_of_neither_side():
    with pytest.raises(ApplicationError) as split:
        service.side_selector(SERVICE, Weights.canary_at(20))
    foreign = copy.deepcopy(ACTIVE)
    foreign["spec"]["selector"] = {"app": "other"}
    with pytest.raises(ApplicationError) as neither:
        service.selected_weights(SERVICE, foreign)

    assert split.value.type == INVALID_SPEC
    assert "100/0 or 0/100, got 80/20" in split.value.message
    assert neither.value.type == KUBERNETES_OBJECT_FOREIGN
    assert "selects {'app': 'other'}" in neither.value.message


@PROPERTY
@given(st.lists(st.sampled_from([0, 100]), min_size=1, max_size=6))
def test_any_sequence_of_switches_reads_back_the_last_and_is_idempotent(shares):
    current = ACTIVE
    for share in shares:
        wanted = service.side_selector(SERVICE, Weights.canary_at(share))
        patch = service.selector_patch(SERVICE, current, wanted)
        if patch is not None:
            current = applied(current, patch)
        assert service.selector_patch(SERVICE, current, wanted) is None
    assert service.selected_weights(SERVICE, current) == Weights.canary_at(shares[-1])
    assert current["spec"]["selector"]["tier"] == "web"


# -- ingress-nginx -----------------------------------------------------------------------

INGRESS = RouterSpec.model_validate(
    {
        "ingressNginx": {
            "namespace": "shop",
            "stableIngress": "checkout",
            "stableService": "checkout",
            "canaryService": "checkout-canary",
        }
    }
).ingress_nginx
assert INGRESS is not None
STABLE_INGRESS = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "Ingress",
    "metadata": {"name": "checkout", "namespace": "shop", "resourceVersion": "3"},
    "spec": {
        "ingressClassName": "nginx",
        "tls": [{"hosts": ["checkout.example.com"], "secretName": "checkout-tls"}],
        "rules": [
            {
                "host": "checkout.example.com",
                "http": {
                    "paths": [
                        {
                            "path": "/",
                            "pathType": "Prefix",
                            "backend": {"service": {"name": "checkout", "port": {"number": 80}}},
                        },
                        {
                            "path": "/static",
                            "pathType": "Prefix",
                            "backend": {"service": {"name": "cdn", "port": {"number": 80}}},
                        },
                    ]
                },
            }
        ],
    },
}


def test_the_canary_ingress_copies_the_stable_rules_onto_the_canary_service():
    body = ingress_nginx.canary_ingress(INGRESS, STABLE_INGRESS, Weights.canary_at(5), None)

    assert body == {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": "checkout-canary",
            "namespace": "shop",
            "labels": {"app.kubernetes.io/managed-by": "deployflow"},
            "annotations": {f"{NGINX}/canary": "true", f"{NGINX}/canary-weight": "5"},
        },
        "spec": {
            "ingressClassName": "nginx",
            "rules": [
                {
                    "host": "checkout.example.com",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {
                                    "service": {"name": "checkout-canary", "port": {"number": 80}}
                                },
                            },
                            {
                                "path": "/static",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "cdn", "port": {"number": 80}}},
                            },
                        ]
                    },
                }
            ],
        },
    }
    assert STABLE_INGRESS["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == (
        "checkout"
    )


def canary_at(share: int, route: HeaderRoute | None = None) -> Obj:
    body = ingress_nginx.canary_ingress(INGRESS, STABLE_INGRESS, Weights.canary_at(share), route)
    body["metadata"]["resourceVersion"] = "11"
    body["metadata"]["annotations"]["team.example.com/owner"] = "payments"
    return body


def test_a_weight_change_patches_only_the_canary_weight():
    wanted = ingress_nginx.canary_ingress(INGRESS, STABLE_INGRESS, Weights.canary_at(20), None)

    patch = ingress_nginx.canary_patch(INGRESS, canary_at(5), wanted)

    assert patch == Patch(
        {"metadata": {"annotations": {f"{NGINX}/canary-weight": "20"}, "resourceVersion": "11"}},
        "application/merge-patch+json",
    )


def test_a_header_route_sets_canary_by_header_and_removing_it_nulls_those_keys():
    beta, pattern = header_route(), header_route("v2", regex="^v2.*")
    with_route = ingress_nginx.canary_ingress(INGRESS, STABLE_INGRESS, Weights.canary_at(5), beta)
    with_pattern = ingress_nginx.canary_ingress(
        INGRESS, STABLE_INGRESS, Weights.canary_at(5), pattern
    )
    without = ingress_nginx.canary_ingress(INGRESS, STABLE_INGRESS, Weights.canary_at(5), None)

    added = ingress_nginx.canary_patch(INGRESS, canary_at(5), with_route)
    swapped = ingress_nginx.canary_patch(INGRESS, canary_at(5, beta), with_pattern)
    removed = ingress_nginx.canary_patch(INGRESS, canary_at(5, beta), without)

    assert added is not None
    assert added.body == {
        "metadata": {
            "annotations": {
                f"{NGINX}/canary-by-header": "X-Beta",
                f"{NGINX}/canary-by-header-value": "1",
                "deployflow.dev/header-route": "beta",
            },
            "resourceVersion": "11",
        }
    }
    assert swapped is not None
    assert swapped.body["metadata"]["annotations"] == {
        f"{NGINX}/canary-by-header-value": None,
        f"{NGINX}/canary-by-header-pattern": "^v2.*",
        "deployflow.dev/header-route": "v2",
    }
    assert removed is not None
    assert removed.body["metadata"]["annotations"] == {
        f"{NGINX}/canary-by-header": None,
        f"{NGINX}/canary-by-header-value": None,
        "deployflow.dev/header-route": None,
    }
    result = applied(canary_at(5, beta), removed)
    assert result["metadata"]["annotations"]["team.example.com/owner"] == "payments"
    assert ingress_nginx.read_route(INGRESS, result) is None
    assert ingress_nginx.read_route(INGRESS, canary_at(5, pattern)) == pattern


def test_a_stable_ingress_without_the_stable_service_is_refused():
    other = copy.deepcopy(STABLE_INGRESS)
    other["spec"]["rules"][0]["http"]["paths"].pop(0)

    with pytest.raises(ApplicationError) as caught:
        ingress_nginx.canary_spec(INGRESS, other)

    assert caught.value.type == INVALID_SPEC
    assert "has no backend on stableService checkout" in caught.value.message


def test_no_canary_ingress_reads_as_all_stable_and_a_bad_weight_is_refused():
    bad = canary_at(5)
    bad["metadata"]["annotations"][f"{NGINX}/canary-weight"] = "150"

    assert ingress_nginx.read_weights(INGRESS, None) == Weights(stable=100, canary=0)
    with pytest.raises(ApplicationError, match=r"canary-weight '150' is not 0\.\.100"):
        ingress_nginx.read_weights(INGRESS, bad)


@PROPERTY
@given(st.lists(weights, min_size=1, max_size=5), st.booleans())
def test_any_weights_on_the_canary_ingress_read_back_and_a_repeat_changes_nothing(steps, routed):
    route = header_route() if routed else None
    current = canary_at(0, route)
    for wanted_weights in steps:
        wanted = ingress_nginx.canary_ingress(INGRESS, STABLE_INGRESS, wanted_weights, route)
        patch = ingress_nginx.canary_patch(INGRESS, current, wanted)
        if patch is not None:
            current = applied(current, patch)
        assert ingress_nginx.canary_patch(INGRESS, current, wanted) is None
        read = ingress_nginx.read_weights(INGRESS, current)
        assert (read, read.stable + read.canary) == (wanted_weights, 100)
    assert ingress_nginx.read_route(INGRESS, current) == route


# -- Istio --------------------------------------------------------------------------------

ISTIO = RouterSpec.model_validate(
    {
        "istio": {
            "namespace": "shop",
            "virtualService": {"name": "checkout", "routes": ["primary"]},
            "stableService": "checkout-stable",
            "canaryService": "checkout-canary",
        }
    }
).istio
assert ISTIO is not None
SUBSETS = RouterSpec.model_validate(
    {
        "istio": {
            "namespace": "shop",
            "virtualService": {"name": "checkout"},
            "destinationRule": {
                "name": "checkout",
                "stableSubsetName": "stable",
                "canarySubsetName": "canary",
            },
        }
    }
).istio
assert SUBSETS is not None
PRIMARY = {
    "name": "primary",
    "match": [{"uri": {"prefix": "/"}}],
    "timeout": "5s",
    "route": [
        {"destination": {"host": "checkout-stable", "port": {"number": 80}}, "weight": 100},
        {
            "destination": {
                "host": "checkout-canary.shop.svc.cluster.local",
                "port": {"number": 80},
            },
            "weight": 0,
        },
    ],
}
ADMIN = {"name": "admin", "route": [{"destination": {"host": "admin"}}]}
VS = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": {"name": "checkout", "namespace": "shop", "resourceVersion": "9"},
    "spec": {"hosts": ["checkout.example.com"], "http": [PRIMARY, ADMIN]},
}
SUBSET_VS = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": {"name": "checkout", "namespace": "shop", "resourceVersion": "2"},
    "spec": {
        "hosts": ["checkout"],
        "http": [
            {
                "route": [
                    {"destination": {"host": "checkout", "subset": "canary"}, "weight": 0},
                    {"destination": {"host": "checkout", "subset": "stable"}, "weight": 100},
                ]
            }
        ],
    },
}


def test_istio_weights_replace_the_http_list_whole_in_a_json_patch_guarded_by_version():
    http, names = istio.desired_http(ISTIO, VS, Weights.canary_at(25), None)
    patch = list_patch(VS, "/spec/http", http, names)

    shifted = copy.deepcopy(PRIMARY)
    shifted["route"][0]["weight"], shifted["route"][1]["weight"] = 75, 25
    assert patch == Patch(
        [
            {"op": "replace", "path": "/metadata/resourceVersion", "value": "9"},
            {"op": "replace", "path": "/spec/http", "value": [shifted, ADMIN]},
        ],
        "application/json-patch+json",
    )


def test_subset_based_istio_moves_the_subsets_weights():
    http, names = istio.desired_http(SUBSETS, SUBSET_VS, Weights.canary_at(40), None)

    assert [d["weight"] for d in http[0]["route"]] == [40, 60]
    assert names == []
    assert istio.read_weights(SUBSETS, SUBSET_VS) == Weights(stable=100, canary=0)


def test_an_istio_header_route_goes_first_and_is_recorded_in_an_annotation():
    route = HeaderRoute.model_validate(
        {
            "name": "beta",
            "match": [
                {"headerName": "X-Beta", "headerValue": {"prefix": "yes"}},
                {"headerName": "X-Region", "headerValue": {"regex": "eu-.*"}},
            ],
        }
    )
    http, names = istio.desired_http(ISTIO, VS, None, [route])
    patch = list_patch(VS, "/spec/http", http, names)

    beta = {
        "name": "beta",
        "match": [
            {
                "uri": {"prefix": "/"},
                "headers": {"x-beta": {"prefix": "yes"}, "x-region": {"regex": "eu-.*"}},
            }
        ],
        "timeout": "5s",
        "route": [
            {
                "destination": {
                    "host": "checkout-canary.shop.svc.cluster.local",
                    "port": {"number": 80},
                },
                "weight": 100,
            }
        ],
    }
    assert patch is not None
    assert patch.body == [
        {"op": "replace", "path": "/metadata/resourceVersion", "value": "9"},
        {"op": "replace", "path": "/spec/http", "value": [beta, PRIMARY, ADMIN]},
        {"op": "add", "path": "/metadata/annotations", "value": {HEADER_ROUTES: '["beta"]'}},
    ]
    with_route = applied(VS, patch)
    assert istio.read_header_routes(with_route)[0].match[0].header_name == "x-beta"

    http, names = istio.desired_http(ISTIO, with_route, Weights.canary_at(10), None)
    assert [r["name"] for r in http] == ["beta", "primary", "admin"]
    http, names = istio.desired_http(ISTIO, with_route, None, [])
    removed = list_patch(with_route, "/spec/http", http, names)
    assert removed is not None
    assert removed.body[1:] == [
        {"op": "replace", "path": "/spec/http", "value": [PRIMARY, ADMIN]},
        {"op": "remove", "path": "/metadata/annotations/deployflow.dev~1header-routes"},
    ]


@pytest.mark.parametrize(
    ("spec", "vs", "expected"),
    [
        (
            ISTIO.model_copy(
                update={
                    "virtual_service": ISTIO.virtual_service.model_copy(update={"routes": ["main"]})
                }
            ),
            VS,
            "VirtualService shop/checkout has no http route named ['main'] (it has: ['primary', 'admin'])",
        ),
        (
            ISTIO.model_copy(
                update={"virtual_service": ISTIO.virtual_service.model_copy(update={"routes": []})}
            ),
            VS,
            "VirtualService shop/checkout has 2 http routes: name the ones to shift",
        ),
        (
            ISTIO.model_copy(
                update={
                    "virtual_service": ISTIO.virtual_service.model_copy(
                        update={"routes": ["admin"]}
                    )
                }
            ),
            VS,
            "route admin: needs exactly the stable and the canary destination",
        ),
    ],
)
def test_an_istio_route_that_does_not_fit_the_spec_is_refused_naming_it(spec, vs, expected):
    with pytest.raises(ApplicationError) as caught:
        istio.desired_http(spec, vs, Weights.canary_at(10), None)

    assert caught.value.type == INVALID_SPEC
    assert expected in caught.value.message


def shifted(
    router: Any, spec: Any, start: dict, path: str, steps: list, header: Any, kept: Any = None
) -> dict:
    """``start`` after each of ``steps`` (its weights, then ``header`` routes) patched in as
    ``router``'s activity would: each read back as asked, each repeat no patch at all, and
    ``kept`` (a route the router does not own) still there after every step."""
    desired = router.desired_http if router is istio else router.desired_rules
    current = start
    for wanted in steps:
        for change in ((wanted, None), (None, header)):
            patch = list_patch(current, path, *desired(spec, current, *change))
            if patch is not None:
                current = applied(current, patch)
            assert list_patch(current, path, *desired(spec, current, *change)) is None
        read = router.read_weights(spec, current)
        assert (read, read.stable + read.canary) == (wanted, 100)
        assert kept is None or kept in current["spec"][path.rpartition("/")[2]]
    return current


@PROPERTY
@given(st.lists(weights, min_size=1, max_size=5), st.sampled_from([None, [], ["beta"]]))
def test_any_istio_weights_read_back_and_a_repeat_changes_nothing(steps, routes):
    header = None if routes is None else [header_route(n) for n in routes]
    current = shifted(istio, ISTIO, VS, "/spec/http", steps, header, kept=ADMIN)
    assert current["spec"]["http"][-1] == ADMIN
    assert [r.name for r in istio.read_header_routes(current)] == (routes or [])


# -- Gateway API ----------------------------------------------------------------------------

GATEWAY = RouterSpec.model_validate(
    {
        "gatewayAPI": {
            "namespace": "shop",
            "httpRoute": "checkout",
            "stableService": "checkout-stable",
            "canaryService": "checkout-canary",
        }
    }
).gateway_api
assert GATEWAY is not None
RULE = {
    "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
    "backendRefs": [
        {"name": "checkout-stable", "port": 80, "weight": 100},
        {"name": "checkout-canary", "port": 80, "weight": 0},
    ],
}
HTTP_ROUTE = {
    "apiVersion": "gateway.networking.k8s.io/v1",
    "kind": "HTTPRoute",
    "metadata": {
        "name": "checkout",
        "namespace": "shop",
        "resourceVersion": "4",
        "annotations": {},
    },
    "spec": {"parentRefs": [{"name": "web"}], "rules": [RULE]},
}


def test_gateway_api_weights_replace_the_rules_whole_in_a_json_patch():
    rules, names = gateway_api.desired_rules(GATEWAY, HTTP_ROUTE, Weights.canary_at(30), None)

    shifted = copy.deepcopy(RULE)
    shifted["backendRefs"][0]["weight"], shifted["backendRefs"][1]["weight"] = 70, 30
    assert list_patch(HTTP_ROUTE, "/spec/rules", rules, names) == Patch(
        [
            {"op": "replace", "path": "/metadata/resourceVersion", "value": "4"},
            {"op": "replace", "path": "/spec/rules", "value": [shifted]},
        ],
        "application/json-patch+json",
    )


def test_a_gateway_api_header_route_is_a_named_rule_to_the_canary_only():
    rules, names = gateway_api.desired_rules(GATEWAY, HTTP_ROUTE, None, [header_route(regex="^1$")])
    patch = list_patch(HTTP_ROUTE, "/spec/rules", rules, names)

    assert patch is not None
    assert patch.body[1:] == [
        {
            "op": "replace",
            "path": "/spec/rules",
            "value": [
                {
                    "name": "beta",
                    "matches": [
                        {
                            "path": {"type": "PathPrefix", "value": "/"},
                            "headers": [
                                {"name": "X-Beta", "type": "RegularExpression", "value": "^1$"}
                            ],
                        }
                    ],
                    "backendRefs": [{"name": "checkout-canary", "port": 80}],
                },
                RULE,
            ],
        },
        {
            "op": "add",
            "path": "/metadata/annotations/deployflow.dev~1header-routes",
            "value": '["beta"]',
        },
    ]
    assert gateway_api.read_header_routes(applied(HTTP_ROUTE, patch)) == [header_route(regex="^1$")]


def test_gateway_api_reads_weights_in_percent_and_refuses_a_rule_with_a_third_backend():
    odd = copy.deepcopy(HTTP_ROUTE)
    odd["spec"]["rules"][0]["backendRefs"] = [
        {"name": "checkout-stable"},
        {"name": "checkout-canary", "weight": 3},
    ]
    third = copy.deepcopy(HTTP_ROUTE)
    third["spec"]["rules"][0]["backendRefs"].append({"name": "legacy", "port": 80})

    assert gateway_api.read_weights(GATEWAY, odd) == Weights(stable=25, canary=75)
    with pytest.raises(ApplicationError, match="rule 0 has backends besides"):
        gateway_api.desired_rules(GATEWAY, third, Weights.canary_at(10), None)


@PROPERTY
@given(st.lists(weights, min_size=1, max_size=5), st.booleans())
def test_any_gateway_api_weights_read_back_and_a_repeat_changes_nothing(steps, routed):
    header = [header_route()] if routed else []
    current = shifted(gateway_api, GATEWAY, HTTP_ROUTE, "/spec/rules", steps, header)
    assert json.loads(current["metadata"]["annotations"].get(HEADER_ROUTES, "[]")) == (
        ["beta"] if routed else []
    )
