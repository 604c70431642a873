"""NginxRouter against a real nginx and two backends answering "stable" and "canary"."""

from __future__ import annotations

import http.client
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.clients import Clients
from activities.errors import INVALID_SPEC, ROUTER_COMMAND_FAILED, ROUTER_CONFIG_REJECTED
from activities.routing.activities import RouterActivities
from activities.routing.base import ServerState, Weights
from activities.routing.models import (
    GetServerStatesInput,
    GetWeightsInput,
    SetServerStatesInput,
    SetWeightInput,
)
from activities.routing.nginx import NginxRouter, render_upstream
from activities.routing.spec import NginxRouterSpec
from tests.fixtures.nginx import NginxServer

pytestmark = pytest.mark.integration

ROUTING = RouterActivities(Clients())


DRAIN, MAINT, READY = ServerState.DRAIN, ServerState.MAINT, ServerState.READY


def fetch(server: NginxServer) -> str:
    """One GET on a new connection; the backend's answer."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=2)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        body = response.read().decode()
        assert response.status == 200, (response.status, body)
        return body
    finally:
        conn.close()


def answers(server: NginxServer, n: int) -> Counter[str]:
    return Counter(fetch(server) for _ in range(n))


def shift(server: NginxServer, router: NginxRouter, weights: Weights) -> None:
    """Set weights and wait until the reload serves every new request."""
    before = server.workers()
    router.set_weights(weights)
    server.wait_workers_replaced(before)


def fake_spec(tmp_path: Path, test: str = "true", reload: str = "true") -> NginxRouterSpec:
    """Spec whose commands are shell snippets that also append their name to a log."""
    log = tmp_path / "commands.log"
    return NginxRouterSpec(
        upstream="app",
        config_path=str(tmp_path / "app-upstream.conf"),
        stable=["127.0.0.1:8001"],
        canary=["127.0.0.1:8002"],
        test_command=["sh", "-c", f"echo test >> {log}; {test}"],
        reload_command=["sh", "-c", f"echo reload >> {log}; {reload}"],
    )


def command_log(tmp_path: Path) -> list[str]:
    return (tmp_path / "commands.log").read_text().split()


@pytest.fixture
def backends(http_backend: Callable[[str], str]) -> tuple[str, str]:
    return http_backend("stable"), http_backend("canary")


@pytest.fixture
def router(nginx: NginxServer, backends: tuple[str, str]) -> NginxRouter:
    stable, canary = backends
    return NginxRouter(nginx.router_spec(stable=[stable], canary=[canary]))


def test_all_traffic_follows_full_shifts_both_ways(nginx: NginxServer, router: NginxRouter):
    shift(nginx, router, Weights(stable=100, canary=0))
    assert answers(nginx, 30) == {"stable": 30}

    shift(nginx, router, Weights(stable=0, canary=100))
    assert answers(nginx, 30) == {"canary": 30}
    assert router.get_weights() == Weights(stable=0, canary=100)

    shift(nginx, router, Weights(stable=100, canary=0))
    assert answers(nginx, 30) == {"stable": 30}


def test_partial_weights_split_traffic_in_proportion(nginx: NginxServer, router: NginxRouter):
    shift(nginx, router, Weights(stable=50, canary=50))
    seen = answers(nginx, 200)
    assert set(seen) == {"stable", "canary"}
    assert 70 <= seen["canary"] <= 130, seen

    shift(nginx, router, Weights(stable=90, canary=10))
    seen = answers(nginx, 200)
    assert 10 <= seen["canary"] <= 35, seen
    assert router.get_weights() == Weights(stable=90, canary=10)


def test_config_nginx_rejects_leaves_previous_file_and_routing(
    nginx: NginxServer, router: NginxRouter, backends: tuple[str, str]
):
    shift(nginx, router, Weights(stable=100, canary=0))
    applied = nginx.config_path.read_text()
    workers = nginx.workers()
    broken = NginxRouter(
        nginx.router_spec(stable=[backends[0]], canary=["no-such-host.invalid:80"])
    )

    with pytest.raises(ApplicationError) as raised:
        broken.set_weights(Weights(stable=50, canary=50))

    assert raised.value.type == ROUTER_CONFIG_REJECTED
    assert raised.value.non_retryable
    assert "host not found" in raised.value.message  # nginx's own words reach the operator
    assert nginx.config_path.read_text() == applied
    assert nginx.workers() == workers  # never reloaded
    assert answers(nginx, 30) == {"stable": 30}


def test_rejected_config_with_no_previous_file_removes_it(tmp_path: Path):
    spec = fake_spec(tmp_path, test="echo 'nginx: [emerg] unexpected \"}\"' >&2; exit 1")

    with pytest.raises(ApplicationError) as raised:
        NginxRouter(spec).set_weights(Weights(stable=95, canary=5))

    assert raised.value.type == ROUTER_CONFIG_REJECTED
    assert raised.value.message == 'nginx: [emerg] unexpected "}"'
    assert not Path(spec.config_path).exists()
    assert list(tmp_path.glob(".*.tmp")) == []


def test_failed_reload_is_retryable_and_the_retry_reloads(tmp_path: Path):
    spec = fake_spec(tmp_path, reload="echo 'nginx: [error] invalid PID' >&2; exit 1")
    path = Path(spec.config_path)
    path.write_text(render_upstream(spec.upstream, spec.stable, spec.canary, Weights.canary_at(0)))
    before = path.read_text()

    with pytest.raises(ApplicationError) as raised:
        NginxRouter(spec).set_weights(Weights.canary_at(25))

    assert raised.value.type == ROUTER_COMMAND_FAILED
    assert not raised.value.non_retryable
    assert path.read_text() == before  # so the retry below is not skipped as "unchanged"

    ok = fake_spec(tmp_path)
    NginxRouter(ok).set_weights(Weights.canary_at(25))
    assert command_log(tmp_path) == ["test", "reload", "test", "reload"]
    assert NginxRouter(ok).get_weights() == Weights.canary_at(25)


def test_a_file_written_but_never_reloaded_is_reloaded_by_the_retry(
    nginx: NginxServer, router: NginxRouter
):
    """A worker SIGKILLed between writing the upstream file and ``nginx -s reload``: the
    file holds the wanted split, nginx runs the old one. The retry must reload."""
    shift(nginx, router, Weights(stable=100, canary=0))
    shift(nginx, router, Weights(stable=90, canary=10))
    shift(nginx, router, Weights(stable=100, canary=0))
    stable_only = nginx.config_path.read_text()
    spec = router.spec
    wanted = render_upstream(spec.upstream, spec.stable, spec.canary, Weights(stable=0, canary=100))
    nginx.config_path.write_text(wanted)  # what the killed attempt left behind
    assert answers(nginx, 10) == {"stable": 10}  # nginx never loaded it

    shift(nginx, router, Weights(stable=0, canary=100))  # the retry

    assert answers(nginx, 30) == {"canary": 30}
    assert nginx.config_path.read_text() == wanted != stable_only


def test_same_weights_twice_runs_test_and_reload_once(tmp_path: Path):
    router = NginxRouter(fake_spec(tmp_path))

    router.set_weights(Weights.canary_at(10))
    first = Path(router.spec.config_path).read_text()
    router.set_weights(Weights.canary_at(10))

    assert Path(router.spec.config_path).read_text() == first
    assert command_log(tmp_path) == ["test", "reload"]


def test_activities_set_and_read_back_through_the_real_nginx(
    nginx: NginxServer, backends: tuple[str, str]
):
    router_json = {"nginx": nginx.router_spec([backends[0]], [backends[1]]).model_dump()}
    set_input = SetWeightInput.model_validate(
        {"router": router_json, "weights": {"stable": 75, "canary": 25}, "key": "wf-1/step-0"}
    )
    env = ActivityEnvironment()
    before = nginx.workers()

    applied = env.run(ROUTING.set_weight, set_input)
    nginx.wait_workers_replaced(before)

    assert applied == Weights(stable=75, canary=25)
    assert (
        env.run(ROUTING.get_weights, GetWeightsInput.model_validate({"router": router_json}))
        == applied
    )
    assert set(answers(nginx, 40)) == {"stable", "canary"}


def test_never_written_file_reads_as_all_stable(tmp_path: Path):
    assert NginxRouter(fake_spec(tmp_path)).get_weights() == Weights(stable=100, canary=0)


def set_states(server: NginxServer, router: NginxRouter, states: dict[str, ServerState]) -> None:
    """Set server states and wait until the reload serves every new request."""
    before = server.workers()
    router.set_server_states(states)
    server.wait_workers_replaced(before)


def test_drained_server_gets_no_requests_after_the_reload(
    nginx: NginxServer, http_backend: Callable[[str], str]
):
    stable = [http_backend("stable-a"), http_backend("stable-b")]
    canary = [http_backend("canary")]
    router = NginxRouter(nginx.router_spec(stable=stable, canary=canary))
    shift(nginx, router, Weights(stable=100, canary=0))
    assert set(answers(nginx, 20)) == {"stable-a", "stable-b"}

    set_states(nginx, router, {stable[1]: DRAIN})

    assert answers(nginx, 30) == {"stable-a": 30}
    assert router.get_server_states() == {stable[0]: READY, stable[1]: DRAIN, canary[0]: READY}

    shift(nginx, router, Weights(stable=50, canary=50))  # weights move, the drain stays
    assert set(answers(nginx, 40)) == {"stable-a", "canary"}
    assert router.get_weights() == Weights(stable=50, canary=50)

    set_states(nginx, router, {stable[1]: READY, canary[0]: MAINT})
    assert set(answers(nginx, 30)) == {"stable-a", "stable-b"}
    assert router.get_server_states()[canary[0]] == MAINT


def test_unknown_server_state_is_invalid_and_changes_nothing(tmp_path: Path):
    spec = fake_spec(tmp_path)
    router = NginxRouter(spec)
    router.set_weights(Weights.canary_at(10))
    before = Path(spec.config_path).read_text()

    with pytest.raises(ApplicationError) as raised:
        router.set_server_states({"127.0.0.1:8001": DRAIN, "127.0.0.1:9999": DRAIN})

    assert raised.value.type == INVALID_SPEC
    assert raised.value.non_retryable
    assert Path(spec.config_path).read_text() == before
    assert command_log(tmp_path) == ["test", "reload"]


def test_same_states_twice_reload_once_and_survive_weight_changes(tmp_path: Path):
    router = NginxRouter(fake_spec(tmp_path))

    router.set_server_states({"127.0.0.1:8002": MAINT})
    router.set_server_states({"127.0.0.1:8002": MAINT})
    router.set_weights(Weights.canary_at(40))

    assert command_log(tmp_path) == ["test", "reload", "test", "reload"]
    assert router.get_server_states() == {"127.0.0.1:8001": READY, "127.0.0.1:8002": MAINT}
    assert router.get_weights() == Weights.canary_at(40)
    assert "server 127.0.0.1:8002 down;" in Path(router.spec.config_path).read_text()


def test_rejected_state_change_restores_the_file(tmp_path: Path):
    ok = NginxRouter(fake_spec(tmp_path))
    ok.set_weights(Weights.canary_at(10))
    before = Path(ok.spec.config_path).read_text()
    rejecting = NginxRouter(fake_spec(tmp_path, test="echo 'nginx: [emerg] bad' >&2; exit 1"))

    with pytest.raises(ApplicationError) as raised:
        rejecting.set_server_states({"127.0.0.1:8001": DRAIN})

    assert raised.value.type == ROUTER_CONFIG_REJECTED
    assert Path(ok.spec.config_path).read_text() == before
    assert ok.get_server_states()["127.0.0.1:8001"] == READY


def test_server_state_activities_through_the_real_nginx(
    nginx: NginxServer, backends: tuple[str, str]
):
    router_json = {"nginx": nginx.router_spec([backends[0]], [backends[1]]).model_dump()}
    env = ActivityEnvironment()
    before = nginx.workers()
    env.run(
        ROUTING.set_weight,
        SetWeightInput.model_validate(
            {"router": router_json, "weights": {"stable": 50, "canary": 50}, "key": "wf/step-0"}
        ),
    )
    nginx.wait_workers_replaced(before)
    before = nginx.workers()

    states = env.run(
        ROUTING.set_server_states,
        SetServerStatesInput.model_validate(
            {"router": router_json, "states": {backends[1]: "drain"}, "key": "wf/step-1"}
        ),
    )
    nginx.wait_workers_replaced(before)

    assert states == {backends[0]: READY, backends[1]: DRAIN}
    assert (
        env.run(
            ROUTING.get_server_states, GetServerStatesInput.model_validate({"router": router_json})
        )
        == states
    )
    assert answers(nginx, 20) == {"stable": 20}
