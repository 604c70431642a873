"""Rendering the nginx upstream file and validating the router specs (no nginx needed)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from activities.clients import Clients
from activities.routing.base import ServerState, Weights
from activities.routing.factory import router_for
from activities.routing.models import SetWeightInput
from activities.routing.nginx import (
    NginxRouter,
    parse_server_states,
    parse_weights,
    render_upstream,
)
from activities.routing.spec import NginxRouterSpec, RouterSpec

STABLE = ["127.0.0.1:8001"]
CANARY = ["127.0.0.1:8002"]


def server_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().startswith("server ")]


def test_split_gives_each_side_its_percentage_as_weight():
    text = render_upstream("checkout", STABLE, CANARY, Weights(stable=95, canary=5))

    assert text.startswith("# deployflow: stable=95 canary=5\n")
    assert "upstream checkout {" in text
    assert server_lines(text) == [
        "server 127.0.0.1:8001 weight=95;",
        "server 127.0.0.1:8002 weight=5;",
    ]
    assert text.rstrip().endswith("}")


def test_side_at_zero_percent_stays_listed_but_down():
    all_stable = render_upstream("checkout", STABLE, CANARY, Weights(stable=100, canary=0))
    all_canary = render_upstream("checkout", STABLE, CANARY, Weights(stable=0, canary=100))

    assert server_lines(all_stable) == [
        "server 127.0.0.1:8001 weight=100;",
        "server 127.0.0.1:8002 down;",
    ]
    assert server_lines(all_canary) == [
        "server 127.0.0.1:8001 down;",
        "server 127.0.0.1:8002 weight=100;",
    ]
    assert "weight=0" not in all_stable + all_canary  # nginx rejects weight=0


def test_equal_pools_give_each_server_its_side_percentage():
    text = render_upstream(
        "api", ["10.0.0.1:80", "10.0.0.2:80"], ["10.0.0.3:80", "[::1]:8080"], Weights.canary_at(20)
    )

    assert server_lines(text) == [
        "server 10.0.0.1:80 weight=160;",
        "server 10.0.0.2:80 weight=160;",
        "server 10.0.0.3:80 weight=40;",
        "server [::1]:8080 weight=40;",
    ]


def test_unequal_pools_still_split_by_percentage():
    text = render_upstream("api", ["a:1", "b:1"], ["c:1"], Weights.canary_at(5))
    weights = [int(line.split("weight=")[1].rstrip(";")) for line in server_lines(text)]
    stable, canary = sum(weights[:2]), weights[2]
    assert canary / (stable + canary) == pytest.approx(0.05)


def test_same_weights_render_identical_content():
    one = render_upstream("checkout", STABLE, CANARY, Weights.canary_at(25))
    two = render_upstream("checkout", list(STABLE), list(CANARY), Weights.canary_at(25))

    assert one == two
    assert one != render_upstream("checkout", STABLE, CANARY, Weights.canary_at(26))


@pytest.mark.parametrize("canary", [0, 1, 5, 50, 99, 100])
def test_rendered_weights_read_back(canary: int):
    text = render_upstream("checkout", STABLE, CANARY, Weights.canary_at(canary))

    assert parse_weights(text) == Weights.canary_at(canary)


def test_drained_and_maintained_servers_are_down_and_recorded_in_the_header():
    stable, canary = ["10.0.0.1:80", "10.0.0.2:80"], ["10.0.0.3:80"]
    states = {"10.0.0.2:80": ServerState.DRAIN, "10.0.0.3:80": ServerState.MAINT}

    text = render_upstream("api", stable, canary, Weights.canary_at(20), states)

    assert text.splitlines()[:2] == [
        "# deployflow: stable=80 canary=20",
        "# deployflow-servers: 10.0.0.2:80=drain 10.0.0.3:80=maint",
    ]
    assert server_lines(text) == [
        "server 10.0.0.1:80 weight=80;",
        "server 10.0.0.2:80 down;",
        "server 10.0.0.3:80 down;",
    ]
    assert parse_server_states(text) == states
    assert parse_weights(text) == Weights.canary_at(20)


def test_ready_servers_render_as_without_states():
    plain = render_upstream("checkout", STABLE, CANARY, Weights.canary_at(5))
    ready = {STABLE[0]: ServerState.READY, CANARY[0]: ServerState.READY}

    assert render_upstream("checkout", STABLE, CANARY, Weights.canary_at(5), ready) == plain
    assert "deployflow-servers" not in plain
    assert parse_server_states(plain) == {}


def test_states_of_servers_no_longer_listed_are_dropped():
    text = render_upstream(
        "checkout", STABLE, CANARY, Weights.canary_at(5), {"10.9.9.9:80": ServerState.DRAIN}
    )

    assert parse_server_states(text) == {}


def test_file_not_written_by_deployflow_reads_as_none():
    assert parse_weights("upstream x { server 127.0.0.1:1; }\n") is None


def nginx_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "upstream": "checkout",
        "configPath": "/etc/nginx/conf.d/checkout-upstream.conf",
        "stable": STABLE,
        "canary": CANARY,
    }
    return spec | overrides


def test_spec_accepts_camel_case_and_defaults_the_commands():
    spec = NginxRouterSpec.model_validate(nginx_spec())

    assert spec.config_path == "/etc/nginx/conf.d/checkout-upstream.conf"
    assert spec.test_command == ["nginx", "-t"]
    assert spec.reload_command == ["nginx", "-s", "reload"]
    assert spec.model_dump()["configPath"] == spec.config_path


@pytest.mark.parametrize(
    ("overrides", "location", "says"),
    [
        ({"upstream": "check out"}, "upstream", "not an nginx upstream name"),
        ({"upstream": "x;include /etc/passwd"}, "upstream", "not an nginx upstream name"),
        ({"configPath": "conf.d/x.conf"}, "configPath", "absolute"),
        ({"stable": []}, "stable", "at least 1"),
        ({"canary": []}, "canary", "at least 1"),
        ({"stable": ["127.0.0.1"]}, "stable.0", "not host:port"),
        ({"canary": ["127.0.0.1:8002", "h:1; down"]}, "canary.1", "not host:port"),
        ({"canary": ["127.0.0.1:0"]}, "canary.0", "port must be 1..65535"),
        ({"stable": ["127.0.0.1:65536"]}, "stable.0", "port must be 1..65535"),
        ({"canary": STABLE}, "canary", "also listed in stable"),
        ({"stable": STABLE * 2}, "stable", "duplicate"),
        ({"testCommand": []}, "testCommand", "at least 1"),
        ({"reloadComand": ["x"]}, "reloadComand", "Extra inputs"),
    ],
)
def test_spec_errors_name_the_field(overrides: dict[str, Any], location: str, says: str):
    with pytest.raises(ValidationError) as raised:
        NginxRouterSpec.model_validate(nginx_spec(**overrides))

    [error] = raised.value.errors()
    assert ".".join(str(part) for part in error["loc"]) == location
    assert says in error["msg"]


def test_router_spec_requires_one_router_kind():
    with pytest.raises(
        ValidationError,
        match="set exactly one of nginx, haproxy, nop, service, ingressNginx, istio, gatewayAPI, replicas; got none",
    ):
        RouterSpec.model_validate({})


def test_router_spec_errors_name_the_nested_field():
    with pytest.raises(ValidationError) as raised:
        SetWeightInput.model_validate(
            {
                "router": {"nginx": nginx_spec(canary=["bad"])},
                "weights": {"stable": 90, "canary": 10},
                "key": "wf/step-1",
            }
        )

    [error] = raised.value.errors()
    assert error["loc"] == ("router", "nginx", "canary", 0)


def test_router_for_builds_the_named_router():
    spec = RouterSpec.model_validate({"nginx": nginx_spec()})

    router = router_for(spec, Clients())

    assert isinstance(router, NginxRouter)
    assert router.spec == spec.nginx
    assert spec.kind == "nginx"
