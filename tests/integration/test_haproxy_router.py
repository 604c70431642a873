"""HAProxyRouter against a real HAProxy and backends answering "stable" and "canary"."""

from __future__ import annotations

import http.client
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from structlog.testing import capture_logs
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.clients import Clients
from activities.errors import INVALID_SPEC, ROUTER_COMMAND_FAILED, ROUTER_CONFIG_REJECTED
from activities.routing.activities import RouterActivities
from activities.routing.base import ServerState, Weights
from activities.routing.haproxy.router import HAProxyRouter
from activities.routing.haproxy.runtime import RuntimeSession
from activities.routing.models import (
    GetServerStatesInput,
    GetWeightsInput,
    SetServerStatesInput,
    SetWeightInput,
)
from activities.routing.spec import CONFIG_PLACEHOLDER
from tests.fixtures.haproxy import HAProxyFactory, HAProxyServer

pytestmark = pytest.mark.integration

ROUTING = RouterActivities(Clients())

DRAIN, MAINT, READY = ServerState.DRAIN, ServerState.MAINT, ServerState.READY


def answers(server: HAProxyServer, n: int) -> Counter[str]:
    """Bodies of ``n`` GETs, each on a new connection; all must be 200."""
    seen: Counter[str] = Counter()
    for _ in range(n):
        status, _, body = server.get()
        assert status == 200, (status, body)
        seen[body] += 1
    return seen


def answering_servers(server: HAProxyServer, n: int) -> Counter[str]:
    """HAProxy server names (``stable-1``...) that answered ``n`` GETs."""
    return Counter(server.get()[1] for _ in range(n))


def live_weights(server: HAProxyServer) -> dict[str, int]:
    session = RuntimeSession(str(server.socket))
    try:
        rows = session.ask("show servers state app").splitlines()[2:]
    finally:
        session.close()
    return {row.split()[3]: int(row.split()[7]) for row in rows}


@pytest.fixture
def backends(http_backend: Callable[[str], str]) -> tuple[str, str]:
    return http_backend("stable"), http_backend("canary")


@pytest.fixture
def haproxy(haproxy_factory: HAProxyFactory, backends: tuple[str, str]) -> HAProxyServer:
    return haproxy_factory(stable=[backends[0]], canary=[backends[1]])


@pytest.fixture
def router(haproxy: HAProxyServer) -> HAProxyRouter:
    return HAProxyRouter(haproxy.router_spec())


def test_full_shifts_take_effect_at_once_both_ways(haproxy: HAProxyServer, router: HAProxyRouter):
    assert answers(haproxy, 20) == {"stable": 20}

    router.set_weights(Weights(stable=0, canary=100))
    assert answers(haproxy, 30) == {"canary": 30}  # no reload, nothing to wait for
    assert router.get_weights() == Weights(stable=0, canary=100)
    assert live_weights(haproxy) == {"stable-1": 0, "canary-1": 100}

    router.set_weights(Weights(stable=100, canary=0))
    assert answers(haproxy, 30) == {"stable": 30}
    assert router.get_weights() == Weights(stable=100, canary=0)


def test_partial_weights_split_traffic_in_proportion(haproxy: HAProxyServer, router: HAProxyRouter):
    router.set_weights(Weights(stable=50, canary=50))
    seen = answers(haproxy, 200)
    assert 80 <= seen["canary"] <= 120, seen

    router.set_weights(Weights(stable=90, canary=10))
    seen = answers(haproxy, 200)
    assert 10 <= seen["canary"] <= 30, seen
    assert router.get_weights() == Weights(stable=90, canary=10)
    assert haproxy.config_path.read_text().startswith("# deployflow: stable=90 canary=10\n")


def test_unequal_pools_split_by_percentage(
    haproxy_factory: HAProxyFactory, http_backend: Callable[[str], str]
):
    stable = [http_backend("stable"), http_backend("stable"), http_backend("stable")]
    server = haproxy_factory(stable=stable, canary=[http_backend("canary")])
    router = HAProxyRouter(server.router_spec())

    router.set_weights(Weights.canary_at(25))

    assert live_weights(server) == {"stable-1": 75, "stable-2": 75, "stable-3": 75, "canary-1": 75}
    assert 80 <= answers(server, 400)["canary"] <= 120
    router.set_weights(Weights.canary_at(60))
    assert live_weights(server) == {"stable-1": 40, "stable-2": 40, "stable-3": 40, "canary-1": 180}
    assert router.get_weights() == Weights.canary_at(60)


def test_shift_sends_gaining_side_first_in_one_session(
    haproxy: HAProxyServer, router: HAProxyRouter
):
    with capture_logs() as logs:
        router.set_weights(Weights.canary_at(100))
        router.set_weights(Weights.canary_at(0))

    sent = [e["commands"] for e in logs if e["event"] == "haproxy_runtime"]
    assert sent == [
        ["set weight app/canary-1 100", "set weight app/stable-1 0"],
        ["set weight app/stable-1 100", "set weight app/canary-1 0"],
    ]


def test_same_weights_twice_sends_no_command_and_checks_once(
    haproxy: HAProxyServer, tmp_path: Path
):
    log = tmp_path / "checks.log"
    check = ["sh", "-c", f'echo check >> {log}; exec {" ".join(haproxy.check_command[:-1])} "$0"']
    router = HAProxyRouter(haproxy.router_spec(check_command=[*check, CONFIG_PLACEHOLDER]))

    with capture_logs() as logs:
        router.set_weights(Weights.canary_at(10))
        written = haproxy.config_path.stat().st_mtime_ns
        router.set_weights(Weights.canary_at(10))

    sent = [e["commands"] for e in logs if e["event"] == "haproxy_runtime"]
    assert sent == [["set weight app/canary-1 10", "set weight app/stable-1 90"], []]
    assert log.read_text().split() == ["check"]
    assert haproxy.config_path.stat().st_mtime_ns == written


def test_shifts_under_load_fail_no_request(haproxy: HAProxyServer, router: HAProxyRouter):
    """≥ 50 full flips between the sides while 2 clients send requests, new connection each."""
    shifts, deadline = 60, time.monotonic() + 20
    stop = threading.Event()
    results: Counter[str] = Counter()
    errors: list[str] = []
    lock = threading.Lock()

    def client() -> None:
        while not stop.is_set():
            try:
                status, _, body = haproxy.get()
                outcome = body if status == 200 else f"HTTP {status}"
            except OSError as e:
                outcome = f"{type(e).__name__}: {e}"
            with lock:
                results[outcome] += 1
                if outcome not in ("stable", "canary"):
                    errors.append(outcome)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(2)]
    for thread in threads:
        thread.start()
    done, call_ms = 0, []
    with capture_logs() as logs:
        while done < shifts and time.monotonic() < deadline:
            started = time.monotonic()
            router.set_weights(Weights.canary_at(100 if done % 2 == 0 else 0))
            call_ms.append((time.monotonic() - started) * 1000)
            done += 1
            time.sleep(0.02)  # let requests land on each side
    stop.set()
    for thread in threads:
        thread.join(timeout=10)

    runtime = [e for e in logs if e["event"] == "haproxy_runtime"]
    commands_ms = [e["commands_ms"] for e in runtime]
    session_ms = [e["duration_ms"] for e in runtime]
    print(
        f"\nhaproxy: {done} shifts, {sum(results.values())} requests, {len(errors)} failed "
        f"{dict(results)}; shift commands median {statistics.median(commands_ms):.3f} ms "
        f"max {max(commands_ms):.3f} ms; commands + read-back median "
        f"{statistics.median(session_ms):.3f} ms; set_weights median "
        f"{statistics.median(call_ms):.1f} ms (includes haproxy -c)"
    )
    assert done >= 50
    assert errors == []
    assert results["stable"] > 0
    assert results["canary"] > 0


class _Tracked(BaseHTTPRequestHandler):
    """Answers its server's name; ``/slow`` takes 1 s. Counts requests in flight."""

    def do_GET(self) -> None:
        server = self.server
        assert isinstance(server, TrackedBackend)
        with server.lock:
            server.in_flight += 1
        try:
            if self.path == "/slow":
                time.sleep(1.0)
            body = server.name.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        finally:
            with server.lock:
                server.in_flight -= 1

    def log_message(self, format: str, *args: object) -> None:
        pass


class TrackedBackend(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, name: str) -> None:
        super().__init__(("127.0.0.1", 0), _Tracked)
        self.name, self.in_flight, self.lock = name, 0, threading.Lock()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def tracked() -> Iterator[Callable[[str], TrackedBackend]]:
    started: list[TrackedBackend] = []

    def start(name: str) -> TrackedBackend:
        backend = TrackedBackend(name)
        threading.Thread(target=backend.serve_forever, args=(0.02,), daemon=True).start()
        started.append(backend)
        return backend

    yield start
    for backend in started:
        backend.shutdown()
        backend.server_close()


def test_drained_server_finishes_its_request_and_gets_no_new_ones(
    haproxy_factory: HAProxyFactory, tracked: Callable[[str], TrackedBackend]
):
    a, b, canary = tracked("a"), tracked("b"), tracked("canary")
    server = haproxy_factory(stable=[a.address, b.address], canary=[canary.address])
    router = HAProxyRouter(server.router_spec())
    slow: list[tuple[int, str, str]] = []

    def slow_request() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        conn.request("GET", "/slow")
        response = conn.getresponse()
        slow.append((response.status, response.getheader("X-Server", ""), response.read().decode()))
        conn.close()

    request = threading.Thread(target=slow_request)
    request.start()
    deadline = time.monotonic() + 2
    while a.in_flight + b.in_flight == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    busy = a if a.in_flight else b
    other = b if busy is a else a

    router.set_server_states({busy.address: DRAIN})

    assert answers(server, 30) == {other.name: 30}  # new requests avoid the drained server
    request.join()
    assert [s[0] for s in slow] == [200]
    assert slow[0][2] == busy.name
    assert router.get_server_states() == {
        a.address: DRAIN if busy is a else READY,
        b.address: DRAIN if busy is b else READY,
        canary.address: READY,
    }

    router.set_weights(Weights.canary_at(50))  # weights move, the drain stays
    assert set(answers(server, 40)) == {other.name, "canary"}

    router.set_server_states({busy.address: READY})  # back at its side's weight
    seen = answers(server, 80)
    assert seen[busy.name] > 0
    assert seen[other.name] > 0
    assert 30 <= seen["canary"] <= 50


def test_maint_takes_a_server_out_until_ready(haproxy: HAProxyServer, router: HAProxyRouter):
    router.set_weights(Weights.canary_at(50))
    canary = haproxy.canary[0]

    router.set_server_states({canary: MAINT})
    assert answers(haproxy, 20) == {"stable": 20}
    assert router.get_server_states()[canary] == MAINT
    assert "server canary-1 " in haproxy.config_path.read_text()
    assert " disabled" in haproxy.config_path.read_text()

    router.set_server_states({canary: READY})
    assert set(answers(haproxy, 20)) == {"stable", "canary"}
    assert " disabled" not in haproxy.config_path.read_text()


def test_unknown_server_is_an_invalid_spec_and_changes_nothing(
    haproxy: HAProxyServer, router: HAProxyRouter
):
    before = haproxy.config_path.read_text()

    with pytest.raises(ApplicationError) as raised:
        router.set_server_states({haproxy.stable[0]: DRAIN, "127.0.0.1:1": DRAIN})

    assert raised.value.type == INVALID_SPEC
    assert raised.value.non_retryable
    assert router.get_server_states()[haproxy.stable[0]] == READY
    assert haproxy.config_path.read_text() == before


def test_weights_and_states_survive_a_reload(
    haproxy_factory: HAProxyFactory, http_backend: Callable[[str], str]
):
    stable = [http_backend("stable-a"), http_backend("stable-b")]
    server = haproxy_factory(stable=stable, canary=[http_backend("canary")])
    router = HAProxyRouter(server.router_spec())
    router.set_weights(Weights.canary_at(30))
    router.set_server_states({stable[1]: DRAIN})
    applied = live_weights(server)

    server.reload()

    assert live_weights(server) == applied
    assert router.get_weights() == Weights.canary_at(30)
    # Drain has no config keyword: the new process starts the server in maintenance.
    assert router.get_server_states()[stable[1]] == MAINT
    assert set(answers(server, 40)) == {"stable-a", "canary"}
    router.set_server_states({stable[1]: DRAIN})
    assert router.get_server_states()[stable[1]] == DRAIN


def test_check_rejecting_the_file_changes_nothing(haproxy: HAProxyServer):
    bad = ["sh", "-c", 'echo "[ALERT] config : parsing [$0:5]" >&2; exit 1', CONFIG_PLACEHOLDER]
    router = HAProxyRouter(haproxy.router_spec(check_command=bad))
    before = haproxy.config_path.read_text()

    with pytest.raises(ApplicationError) as raised:
        router.set_weights(Weights.canary_at(50))

    assert raised.value.type == ROUTER_CONFIG_REJECTED
    assert raised.value.non_retryable
    assert "[ALERT] config : parsing" in raised.value.message
    assert live_weights(haproxy) == {"stable-1": 100, "canary-1": 0}
    assert haproxy.config_path.read_text() == before
    assert list(haproxy.config_path.parent.glob(".*.check")) == []


def test_real_check_rejects_an_unresolvable_server(haproxy: HAProxyServer):
    router = HAProxyRouter(haproxy.router_spec(canary=["no-such-host.invalid:80"]))

    with pytest.raises(ApplicationError) as raised:
        router.set_weights(Weights.canary_at(50))

    assert raised.value.type == ROUTER_CONFIG_REJECTED
    assert "no-such-host.invalid" in raised.value.message
    assert live_weights(haproxy) == {"stable-1": 100, "canary-1": 0}


def test_command_haproxy_refuses_is_not_retryable(haproxy: HAProxyServer):
    operator = HAProxyRouter(haproxy.router_spec(socket=str(haproxy.prefix / "operator.sock")))
    before = haproxy.config_path.read_text()

    with pytest.raises(ApplicationError) as raised:
        operator.set_weights(Weights.canary_at(50))

    assert raised.value.type == ROUTER_CONFIG_REJECTED
    assert raised.value.non_retryable
    assert "Permission denied" in raised.value.message
    assert haproxy.config_path.read_text() == before


def test_unreachable_socket_is_retryable(haproxy: HAProxyServer):
    router = HAProxyRouter(haproxy.router_spec(socket=str(haproxy.prefix / "missing.sock")))

    for call in (lambda: router.set_weights(Weights.canary_at(5)), router.get_weights):
        with pytest.raises(ApplicationError) as raised:
            call()
        assert raised.value.type == ROUTER_COMMAND_FAILED
        assert not raised.value.non_retryable


def test_servers_not_running_are_an_invalid_spec_without_a_reload_command(
    haproxy: HAProxyServer, http_backend: Callable[[str], str]
):
    added = HAProxyRouter(haproxy.router_spec(canary=[haproxy.canary[0], http_backend("new")]))

    with pytest.raises(ApplicationError) as raised:
        added.set_weights(Weights.canary_at(50))

    assert raised.value.type == INVALID_SPEC
    assert "canary-2" in raised.value.message
    assert "reloadCommand" in raised.value.message
    assert live_weights(haproxy) == {"stable-1": 100, "canary-1": 0}


def test_reload_command_brings_new_servers_in(
    haproxy: HAProxyServer, http_backend: Callable[[str], str]
):
    canary = [haproxy.canary[0], http_backend("canary-b")]
    router = HAProxyRouter(
        haproxy.router_spec(canary=canary, reload_command=haproxy.reload_command)
    )

    router.set_weights(Weights.canary_at(100))

    assert live_weights(haproxy) == {"stable-1": 0, "canary-1": 100, "canary-2": 100}
    assert set(answers(haproxy, 20)) == {"canary", "canary-b"}
    assert router.get_weights() == Weights.canary_at(100)


def test_activities_set_and_read_back_through_the_real_haproxy(haproxy: HAProxyServer):
    router_json = {"haproxy": haproxy.router_spec().model_dump()}
    env = ActivityEnvironment()

    applied = env.run(
        ROUTING.set_weight,
        SetWeightInput.model_validate(
            {"router": router_json, "weights": {"stable": 75, "canary": 25}, "key": "wf/step-0"}
        ),
    )
    states = env.run(
        ROUTING.set_server_states,
        SetServerStatesInput.model_validate(
            {"router": router_json, "states": {haproxy.canary[0]: "maint"}, "key": "wf/step-1"}
        ),
    )

    assert applied == Weights(stable=75, canary=25)
    assert (
        env.run(ROUTING.get_weights, GetWeightsInput.model_validate({"router": router_json}))
        == applied
    )
    assert states == {haproxy.stable[0]: READY, haproxy.canary[0]: MAINT}
    assert (
        env.run(
            ROUTING.get_server_states, GetServerStatesInput.model_validate({"router": router_json})
        )
        == states
    )
    assert answers(haproxy, 20) == {"stable": 20}
