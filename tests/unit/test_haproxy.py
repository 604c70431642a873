"""HAProxy router logic without HAProxy: weights, command order, the file, the spec."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import ValidationError
from temporalio.exceptions import ApplicationError

from activities.clients import Clients
from activities.errors import INVALID_SPEC
from activities.routing.base import ServerState, Weights, merge_states
from activities.routing.factory import router_for
from activities.routing.files import parse_states_line, parse_weights_line
from activities.routing.haproxy.plan import (
    MAX_WEIGHT,
    parse_servers_state,
    plan_states,
    plan_weights,
    render_backend,
    server_weights,
    side_weights,
)
from activities.routing.haproxy.router import HAProxyRouter
from activities.routing.models import SetServerStatesInput
from activities.routing.spec import HAProxyRouterSpec, RouterSpec, server_names

DRAIN, MAINT, READY = ServerState.DRAIN, ServerState.MAINT, ServerState.READY


def weights_for(stable: list[str], canary: list[str], canary_pct: int) -> dict[str, int]:
    return side_weights(stable, canary, Weights.canary_at(canary_pct))


def apply(live: dict[str, int], command: str) -> dict[str, int]:
    """What ``set weight app/NAME W`` does to a map of server weights."""
    _, _, target, weight = command.split()
    return live | {target.split("/")[1]: int(weight)}


ONE_EACH = (["s:1"], ["c:1"])
THREE_TO_ONE = (["s:1", "s:2", "s:3"], ["c:1"])


def test_full_shift_to_canary_raises_canary_before_lowering_stable():
    live = weights_for(*ONE_EACH, 0)

    commands = plan_weights("app", live, weights_for(*ONE_EACH, 100))

    assert commands == ["set weight app/canary-1 100", "set weight app/stable-1 0"]


def test_full_shift_back_to_stable_raises_stable_first():
    live = weights_for(*ONE_EACH, 100)

    commands = plan_weights("app", live, weights_for(*ONE_EACH, 0))

    assert commands == ["set weight app/stable-1 100", "set weight app/canary-1 0"]


def test_partial_shift_raises_the_gaining_side_first():
    commands = plan_weights("app", weights_for(*ONE_EACH, 30), weights_for(*ONE_EACH, 60))

    assert commands == ["set weight app/canary-1 60", "set weight app/stable-1 40"]


def test_unequal_pools_raise_every_gaining_server_before_any_lowering():
    commands = plan_weights("app", weights_for(*THREE_TO_ONE, 60), weights_for(*THREE_TO_ONE, 30))

    assert commands == [
        "set weight app/stable-1 70",
        "set weight app/stable-2 70",
        "set weight app/stable-3 70",
        "set weight app/canary-1 90",
    ]


def test_same_weights_need_no_command():
    live = weights_for(*THREE_TO_ONE, 25)

    assert plan_weights("app", live, weights_for(*THREE_TO_ONE, 25)) == []


@example(n_stable=1, n_canary=1, old=0, new=100)
@example(n_stable=1, n_canary=1, old=100, new=0)
@given(
    n_stable=st.integers(1, 12),
    n_canary=st.integers(1, 12),
    old=st.integers(0, 100),
    new=st.integers(0, 100),
)
def test_every_step_of_a_shift_keeps_capacity_and_a_split_between_old_and_new(
    n_stable: int, n_canary: int, old: int, new: int
):
    stable = [f"10.0.0.{i}:80" for i in range(n_stable)]
    canary = [f"10.0.1.{i}:80" for i in range(n_canary)]
    names = server_names(stable, canary)
    live, wanted = weights_for(stable, canary, old), weights_for(stable, canary, new)

    def canary_share(weights: dict[str, int]) -> float:
        return sum(weights[names[a]] for a in canary) / sum(weights.values())

    low, high = sorted((canary_share(live), canary_share(wanted)))
    floor = min(sum(live.values()), sum(wanted.values()))
    for command in plan_weights("app", live, wanted):
        live = apply(live, command)
        assert sum(live.values()) >= floor > 0  # raised first: total never dips mid-shift
        assert low - 1e-9 <= canary_share(live) <= high + 1e-9
    assert live == wanted


@given(n_stable=st.integers(1, 64), n_canary=st.integers(1, 64), canary=st.integers(0, 100))
def test_server_weights_fit_haproxy_and_never_starve_a_side_with_traffic(
    n_stable: int, n_canary: int, canary: int
):
    per_stable, per_canary = server_weights(Weights.canary_at(canary), n_stable, n_canary)

    assert 0 <= per_stable <= MAX_WEIGHT
    assert 0 <= per_canary <= MAX_WEIGHT
    assert (per_canary > 0) == (canary > 0)
    assert (per_stable > 0) == (canary < 100)
    if canary < 100:  # a side's weight only rises with its share (raise-before-lower)
        assert server_weights(Weights.canary_at(canary + 1), n_stable, n_canary)[1] >= per_canary


@pytest.mark.parametrize(
    ("n_stable", "n_canary", "canary", "expected"),
    [
        (1, 1, 10, (90, 10)),  # equal pools: the percentages themselves
        (2, 2, 10, (90, 10)),  # the common divisor keeps weights small
        (2, 1, 5, (95, 10)),  # 190 : 10 = 95 % : 5 %
        (1, 2, 50, (100, 50)),
        (3, 1, 60, (40, 180)),  # 120 : 180 = 40 % : 60 %
        (3, 1, 80, (20, 240)),
        (1, 1, 100, (0, 100)),
    ],
)
def test_unequal_pools_keep_the_split_exact_while_it_fits(
    n_stable: int, n_canary: int, canary: int, expected: tuple[int, int]
):
    assert server_weights(Weights.canary_at(canary), n_stable, n_canary) == expected


@pytest.mark.parametrize(("n_stable", "n_canary", "canary"), [(3, 1, 90), (5, 3, 90), (2, 9, 30)])
def test_splits_beyond_256_scale_down_and_stay_close(n_stable: int, n_canary: int, canary: int):
    per_stable, per_canary = server_weights(Weights.canary_at(canary), n_stable, n_canary)

    assert MAX_WEIGHT in (per_stable, per_canary)
    share = n_canary * per_canary / (n_stable * per_stable + n_canary * per_canary)
    assert share == pytest.approx(canary / 100, abs=0.01)


def test_a_small_share_across_a_large_pool_is_floored_by_weight_one():
    # 1 % to 7 canary servers against 1 stable server: at least 7 x 1 against 256.
    assert server_weights(Weights.canary_at(1), 1, 7) == (256, 1)


def test_backend_file_names_servers_by_side_and_position():
    text = render_backend(
        "checkout", ["10.0.0.1:80", "10.0.0.2:80"], ["[::1]:8080"], Weights.canary_at(10)
    )

    assert text.splitlines()[0] == "# deployflow: stable=90 canary=10"
    assert "backend checkout\n    balance roundrobin\n" in text
    assert [line.strip() for line in text.splitlines() if "server " in line] == [
        "server stable-1 10.0.0.1:80 weight 90",
        "server stable-2 10.0.0.2:80 weight 90",
        "server canary-1 [::1]:8080 weight 20",
    ]


def test_backend_file_disables_drained_and_maintained_servers_and_records_which():
    states = {"10.0.0.2:80": DRAIN, "10.0.0.3:80": MAINT, "10.0.0.1:80": READY}

    text = render_backend(
        "checkout", ["10.0.0.1:80", "10.0.0.2:80"], ["10.0.0.3:80"], Weights.canary_at(50), states
    )

    assert [line.strip() for line in text.splitlines() if "server " in line] == [
        "server stable-1 10.0.0.1:80 weight 50",
        "server stable-2 10.0.0.2:80 weight 50 disabled",
        "server canary-1 10.0.0.3:80 weight 100 disabled",
    ]
    assert parse_states_line(text) == {"10.0.0.2:80": DRAIN, "10.0.0.3:80": MAINT}
    assert parse_weights_line(text) == Weights.canary_at(50)


def test_backend_file_without_states_has_no_states_line():
    text = render_backend("checkout", ["a:1"], ["b:1"], Weights.canary_at(5), {"a:1": READY})

    assert "deployflow-servers" not in text
    assert parse_states_line(text) == {}


SHOW_SERVERS_STATE = """\
1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
3 app 1 stable-1 127.0.0.1 2 0 33 100 21 1 0 2 0 0 0 0 - 18001 - 0 0 - - 0
3 app 2 stable-2 ::1 2 4 10 10 1 1 0 2 0 0 0 0 - 18002 - 0 0 - - 0
3 app 3 stable-3 127.0.0.1 2 8 77 0 0 1 0 2 0 0 0 0 localhost 18003 - 0 0 - - 0
3 app 4 canary-1 127.0.0.1 0 5 50 50 1 1 0 0 8 0 0 0 - 18004 - 0 0 - - 0
3 app 5 canary-2 127.0.0.1 0 9 50 50 1 1 0 0 8 0 0 0 - 18005 - 0 0 - - 0

"""


def test_show_servers_state_gives_weights_and_states():
    live = parse_servers_state(SHOW_SERVERS_STATE)

    assert {n: (s.weight, s.state) for n, s in live.items()} == {
        "stable-1": (33, READY),
        "stable-2": (10, READY),  # 0x04: configured ``disabled``, since set ready
        "stable-3": (77, DRAIN),
        "canary-1": (50, MAINT),  # ``disabled`` in the file
        "canary-2": (50, MAINT),  # maintenance wins over drain
    }
    assert live["stable-3"].fqdn == "localhost"


def test_live_server_matches_spec_address_by_ip_or_configured_name():
    live = parse_servers_state(SHOW_SERVERS_STATE)

    assert live["stable-1"].serves("127.0.0.1:18001")
    assert not live["stable-1"].serves("127.0.0.1:18002")
    assert not live["stable-1"].serves("127.0.0.2:18001")
    assert live["stable-2"].serves("[::1]:18002")
    assert live["stable-3"].serves("LOCALHOST:18003")
    assert not live["stable-3"].serves("other:18003")


def test_error_reply_is_not_a_servers_state():
    with pytest.raises(ValueError, match="not a 'show servers state' reply"):
        parse_servers_state("Can't find backend.\n")


def test_state_changes_bring_servers_back_before_taking_others_out():
    live = {"stable-1": DRAIN, "stable-2": READY, "canary-1": MAINT, "canary-2": READY}
    wanted = {"stable-1": READY, "stable-2": DRAIN, "canary-1": READY, "canary-2": READY}

    assert plan_states("app", live, wanted) == [
        "set server app/stable-1 state ready",
        "set server app/canary-1 state ready",
        "set server app/stable-2 state drain",
    ]


def test_unknown_server_address_is_an_invalid_spec():
    with pytest.raises(ApplicationError) as raised:
        merge_states({}, {"10.9.9.9:80": DRAIN}, ["10.0.0.1:80"])

    assert raised.value.type == INVALID_SPEC
    assert raised.value.non_retryable
    assert "10.9.9.9:80" in raised.value.message


def test_merged_states_keep_servers_not_mentioned():
    merged = merge_states({"a:1": DRAIN}, {"b:1": MAINT}, ["a:1", "b:1", "c:1"])

    assert merged == {"a:1": DRAIN, "b:1": MAINT, "c:1": READY}


def haproxy_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "backend": "checkout",
        "socket": "/run/haproxy/admin.sock",
        "configPath": "/etc/haproxy/conf.d/checkout-backend.cfg",
        "stable": ["127.0.0.1:8001"],
        "canary": ["127.0.0.1:8002"],
    }
    return spec | overrides


def test_spec_accepts_camel_case_and_checks_against_the_debian_main_config():
    spec = HAProxyRouterSpec.model_validate(haproxy_spec())

    assert spec.check_command == [
        "haproxy",
        "-c",
        "-f",
        "/etc/haproxy/haproxy.cfg",
        "-f",
        "{config}",
    ]
    assert spec.reload_command is None
    assert spec.names == {"127.0.0.1:8001": "stable-1", "127.0.0.1:8002": "canary-1"}
    assert spec.model_dump()["configPath"] == spec.config_path


@pytest.mark.parametrize(
    ("overrides", "location", "says"),
    [
        ({"backend": "check out"}, "backend", "not an HAProxy backend name"),
        ({"socket": "admin.sock"}, "socket", "absolute"),
        ({"configPath": "x.cfg"}, "configPath", "absolute"),
        ({"stable": ["127.0.0.1"]}, "stable.0", "not host:port"),
        ({"canary": ["127.0.0.1:8002", "h:1 backup"]}, "canary.1", "not host:port"),
        ({"canary": ["127.0.0.1:8001"]}, "canary", "also listed in stable"),
        ({"stable": ["a:1", "a:1"]}, "stable", "duplicate"),
        ({"checkCommand": ["haproxy", "-c"]}, "checkCommand", "must contain '{config}'"),
        ({"reloadCommand": []}, "reloadCommand", "at least 1"),
    ],
)
def test_spec_errors_name_the_field(overrides: dict[str, Any], location: str, says: str):
    with pytest.raises(ValidationError) as raised:
        HAProxyRouterSpec.model_validate(haproxy_spec(**overrides))

    [error] = raised.value.errors()
    assert ".".join(str(part) for part in error["loc"]) == location
    assert says in error["msg"]


def test_check_can_be_turned_off():
    assert HAProxyRouterSpec.model_validate(haproxy_spec(checkCommand=None)).check_command is None


def test_router_spec_builds_the_haproxy_router():
    spec = RouterSpec.model_validate({"haproxy": haproxy_spec()})

    router = router_for(spec, Clients())

    assert isinstance(router, HAProxyRouter)
    assert spec.kind == "haproxy"


def test_router_spec_refuses_two_router_kinds():
    nginx = {"upstream": "x", "configPath": "/x.conf", "stable": ["a:1"], "canary": ["b:1"]}

    with pytest.raises(
        ValidationError,
        match="set exactly one of nginx, haproxy, nop, service, ingressNginx, istio, gatewayAPI, replicas; got nginx, haproxy",
    ):
        RouterSpec.model_validate({"nginx": nginx, "haproxy": haproxy_spec()})


def test_server_states_input_takes_state_names():
    parsed = SetServerStatesInput.model_validate(
        {"router": {"haproxy": haproxy_spec()}, "states": {"127.0.0.1:8001": "drain"}, "key": "k"}
    )

    assert parsed.states == {"127.0.0.1:8001": DRAIN}
    with pytest.raises(ValidationError):
        SetServerStatesInput.model_validate(
            {"router": {"haproxy": haproxy_spec()}, "states": {"a:1": "down"}, "key": "k"}
        )
