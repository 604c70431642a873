"""Rolling, blue-green and recreate on real processes: demo-service "VMs" on 127.0.0.1 driven
by the host agent through the command platform, a real HAProxy or NGINX in front, a real
worker, and the CLI's ``rollout start --wait``. Traffic runs through the router during the
rollouts (new connection per request) and every non-200 answer or connection error counts.

Rolling on a router: the workflow updates every server the router lists (its targets:
stable then canary), and a router spec needs at least one canary server, so the four hosts
are split 2 + 2 with the sides at 50/50; with equal pools that gives every server the same
weight, so all four serve.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from activities.routing.base import Weights
from tests.fixtures.fleet import CliResult, CliWorker, DemoHosts, Load, LoadLoop, get_once

pytestmark = pytest.mark.integration

HEALTHZ = {"http": {"path": "/healthz"}, "periodSeconds": 0.2, "timeoutSeconds": 1}
# Recreate checks ``GET /``: a release started with --error-rate 1 answers /healthz but fails it.
HOME = {"http": {"path": "/"}, "periodSeconds": 0.2, "timeoutSeconds": 1, "failureThreshold": 3}
# Deploys a version named *-broken with --error-rate 1 (a release whose code is broken).
BROKEN_WHEN_NAMED_SO = [
    "/bin/sh",
    "-c",
    'v="$1"; shift; case "$v" in *-broken) r=1;; *) r=0;; esac; exec "$@" --error-rate "$r"',
    "deploy-wrapper",
    "{version}",
]


def rollout(
    version: str,
    router: dict[str, Any],
    platform: dict[str, Any],
    strategy: dict[str, Any],
    **spec: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": "deployflow/v1",
        "kind": "Rollout",
        "metadata": {"name": "checkout"},
        "spec": {
            "service": "checkout",
            "environment": f"vm{uuid.uuid4().hex[:6]}",
            "version": version,
            "progressDeadlineSeconds": 60,
            "router": router,
            "platform": platform,
            "strategy": strategy,
            "healthCheck": HEALTHZ,
            **spec,
        },
    }


def served(url: str, requests: int = 40) -> set[str | None]:
    """Versions answering through the router (None: a failed request)."""
    return {get_once(url).version for _ in range(requests)}


def at(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["at"]).timestamp()


def report(name: str, cli: CliResult, load: Load | None = None) -> None:
    """The outcome, the load's numbers and failures, and the timeline (seconds from start)."""
    print(f"\n[{name}] exit {cli.code} in {cli.seconds:.1f}s; {load.summary() if load else ''}")
    events = cli.result.get("events", []) if cli.stdout.strip() else []
    for event in events:
        print(f"  {at(event) - at(events[0]):6.2f}s {event['kind']:<10} {event['message']}")
    for sample in (load.failures if load else [])[:20]:
        print(f"  failed at {sample.started:.3f}: {sample.status} {sample.body.strip()[:120]}")


def switch_timing(name: str, cli: CliResult, load: Load) -> None:
    """When v2 first and v1 last answered, relative to the ``weights`` event of the switch."""
    switch = at(cli.events("weights")[0])
    first_v2, last_v1 = load.first("v2"), load.last("v1")
    assert first_v2 is not None
    assert last_v1 is not None
    print(
        f"[{name}] switch: first v2 answer {1000 * (first_v2.finished - switch):+.0f} ms, "
        f"last v1 answer sent {1000 * (last_v1.started - switch):+.0f} ms "
        f"relative to the 'weights' event; overlap "
        f"{1000 * max(0.0, last_v1.started - first_v2.started):.0f} ms"
    )


async def test_rolling_update_of_four_hosts_behind_haproxy_under_load(
    demo_hosts: DemoHosts,
    haproxy_factory: Any,
    cli_worker: CliWorker,
    load_loop: LoadLoop,
    tmp_path: Path,
) -> None:
    hosts = demo_hosts.deploy("v1", count=4)
    haproxy = haproxy_factory(stable=hosts[:2], canary=hosts[2:], weights=Weights.canary_at(50))
    url = f"http://127.0.0.1:{haproxy.port}/"
    assert {haproxy.get()[1] for _ in range(16)} == {
        "stable-1",
        "stable-2",
        "canary-1",
        "canary-2",
    }
    spec = rollout(
        "v2",
        {"haproxy": haproxy.router_spec().model_dump(mode="json")},
        demo_hosts.platform(),
        {"rolling": {"maxUnavailable": 1, "drainSeconds": 1}},
    )

    with load_loop(url) as load:
        cli = await cli_worker.start_and_wait(spec, tmp_path)
    report("rolling/haproxy", cli, load)

    assert cli.code == 0, cli.stderr
    assert cli.result["outcome"] == "Promoted"
    assert demo_hosts.versions(hosts) == dict.fromkeys(hosts, "v2")
    assert served(url) == {"v2"}
    assert load.versions()["v1"] > 0  # the load saw both versions
    assert load.versions()["v2"] > 0
    assert load.failures == [], load.summary()


class InFlightCut(AssertionError):
    """Requests that were in flight on a drained server did not finish."""


def slow_upload(port: int, seconds: float) -> str:
    """A POST whose 5-byte body trickles in over ``seconds`` (a slow client, or any request
    that takes that long); its status line, or what went wrong."""
    body = b"0.000"  # a valid error rate: the demo service answers 200
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=seconds + 5) as conn:
            conn.sendall(
                b"POST /admin/error-rate HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body)
            )
            for byte in body:
                time.sleep(seconds / len(body))
                conn.sendall(bytes([byte]))
            reply = b""
            while chunk := conn.recv(4096):
                reply += chunk
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    return reply.split(b"\r\n", 1)[0].decode(errors="replace") or "connection closed, no reply"


async def test_rolling_update_lets_requests_in_flight_on_a_drained_host_finish(
    demo_hosts: DemoHosts,
    haproxy_factory: Any,
    cli_worker: CliWorker,
    tmp_path: Path,
) -> None:
    hosts = demo_hosts.deploy("v1", count=2)
    haproxy = haproxy_factory(stable=hosts[:1], canary=hosts[1:], weights=Weights.canary_at(50))
    spec = rollout(
        "v2",
        {"haproxy": haproxy.router_spec().model_dump(mode="json")},
        demo_hosts.platform(),
        {"rolling": {"maxUnavailable": 1, "drainSeconds": 3}},
    )
    outcomes: Counter[str] = Counter()
    stop = threading.Event()

    def loop() -> None:  # ~3 two-second requests in flight per server at any time
        deadline = time.monotonic() + 30
        while not stop.is_set() and time.monotonic() < deadline:
            outcome = slow_upload(haproxy.port, seconds=2.0)
            outcomes[outcome] += 1

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(6)]
    for thread in threads:
        thread.start()
    try:
        cli = await cli_worker.start_and_wait(spec, tmp_path)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=8)
    report("rolling/slow-requests", cli)
    print(f"[rolling/slow-requests] {dict(outcomes)}")

    assert cli.code == 0, cli.stderr
    assert demo_hosts.versions(hosts) == dict.fromkeys(hosts, "v2")
    cut = {o: n for o, n in outcomes.items() if o != "HTTP/1.1 200 OK"}
    if cut:
        raise InFlightCut(f"{sum(cut.values())} of {outcomes.total()} slow requests cut: {cut}")


async def test_blue_green_switch_behind_haproxy_under_load(
    demo_hosts: DemoHosts,
    haproxy_factory: Any,
    cli_worker: CliWorker,
    load_loop: LoadLoop,
    tmp_path: Path,
) -> None:
    blue, green = demo_hosts.deploy("v1", count=2), demo_hosts.reserve(2)
    haproxy = haproxy_factory(stable=blue, canary=green)  # 100 % blue, green idle
    url = f"http://127.0.0.1:{haproxy.port}/"
    spec = rollout(
        "v2",
        {"haproxy": haproxy.router_spec().model_dump(mode="json")},
        demo_hosts.platform(),
        {"blueGreen": {"scaleDownDelaySeconds": 1, "abortScaleDownDelaySeconds": 0}},
    )

    with load_loop(url) as load:
        cli = await cli_worker.start_and_wait(spec, tmp_path)
    report("blueGreen/haproxy", cli, load)
    switch_timing("blueGreen/haproxy", cli, load)

    assert cli.code == 0, cli.stderr
    assert served(url) == {"v2"}
    assert demo_hosts.versions(green) == dict.fromkeys(green, "v2")
    assert demo_hosts.versions(blue) == dict.fromkeys(blue, None)  # scaled down
    assert load.failures == [], load.summary()


async def test_blue_green_switch_behind_nginx_under_load(
    demo_hosts: DemoHosts,
    nginx_factory: Any,
    cli_worker: CliWorker,
    load_loop: LoadLoop,
    tmp_path: Path,
) -> None:
    blue, green = demo_hosts.deploy("v1", count=2), demo_hosts.reserve(2)
    nginx = nginx_factory(stable=blue, canary=green)  # canary at 0: its servers are down
    spec = rollout(
        "v2",
        {"nginx": nginx.router_spec(stable=blue, canary=green).model_dump(mode="json")},
        demo_hosts.platform(),
        {"blueGreen": {"scaleDownDelaySeconds": 1, "abortScaleDownDelaySeconds": 0}},
    )

    with load_loop(nginx.url) as load:
        cli = await cli_worker.start_and_wait(spec, tmp_path)
    report("blueGreen/nginx", cli, load)
    switch_timing("blueGreen/nginx", cli, load)

    assert cli.code == 0, cli.stderr
    assert served(nginx.url) == {"v2"}
    assert demo_hosts.versions(green) == dict.fromkeys(green, "v2")
    assert demo_hosts.versions(blue) == dict.fromkeys(blue, None)
    assert load.failures == [], load.summary()


async def test_blue_green_failing_smoke_test_keeps_blue_and_stops_green(
    demo_hosts: DemoHosts,
    haproxy_factory: Any,
    cli_worker: CliWorker,
    load_loop: LoadLoop,
    tmp_path: Path,
) -> None:
    blue, green = demo_hosts.deploy("v1", count=2), demo_hosts.reserve(2)
    haproxy = haproxy_factory(stable=blue, canary=green)
    url = f"http://127.0.0.1:{haproxy.port}/"
    spec = rollout(
        "v2",
        {"haproxy": haproxy.router_spec().model_dump(mode="json")},
        demo_hosts.platform(),
        {"blueGreen": {"scaleDownDelaySeconds": 1, "abortScaleDownDelaySeconds": 0}},
        smokeTests=[{"name": "orders-api", "path": "/api/orders"}],  # the demo answers 404
    )

    with load_loop(url) as load:
        cli = await cli_worker.start_and_wait(spec, tmp_path)
    report("blueGreen/smoke-fails", cli, load)

    assert cli.code == 1, cli.stderr
    assert cli.result["outcome"] == "RolledBack"
    assert "smoke tests failed" in cli.result["reason"]
    assert cli.events("weights") == []  # traffic never moved
    assert served(url) == {"v1"}
    assert set(load.versions()) == {"v1"}
    assert demo_hosts.versions(blue) == dict.fromkeys(blue, "v1")
    assert demo_hosts.versions(green) == dict.fromkeys(green, None)  # preview stopped
    assert load.failures == [], load.summary()


def recreate_setup(
    demo_hosts: DemoHosts, haproxy_factory: Any
) -> tuple[list[str], str, dict[str, Any]]:
    hosts = demo_hosts.deploy("v1", count=2)
    haproxy = haproxy_factory(stable=hosts[:1], canary=hosts[1:], weights=Weights.canary_at(50))
    router = {"haproxy": haproxy.router_spec().model_dump(mode="json")}
    return hosts, f"http://127.0.0.1:{haproxy.port}/", router


async def test_recreate_replaces_every_host(
    demo_hosts: DemoHosts, haproxy_factory: Any, cli_worker: CliWorker, tmp_path: Path
) -> None:
    hosts, url, router = recreate_setup(demo_hosts, haproxy_factory)
    spec = rollout(
        "v2",
        router,
        demo_hosts.platform(deploy_wrapper=BROKEN_WHEN_NAMED_SO),
        {"recreate": {}},
        healthCheck=HOME,
    )

    cli = await cli_worker.start_and_wait(spec, tmp_path)
    report("recreate", cli)

    assert cli.code == 0, cli.stderr
    assert demo_hosts.versions(hosts) == dict.fromkeys(hosts, "v2")
    assert served(url) == {"v2"}


async def test_recreate_to_a_version_failing_its_health_check_restores_every_host(
    demo_hosts: DemoHosts, haproxy_factory: Any, cli_worker: CliWorker, tmp_path: Path
) -> None:
    hosts, url, router = recreate_setup(demo_hosts, haproxy_factory)
    spec = rollout(
        "v3-broken",
        router,
        demo_hosts.platform(deploy_wrapper=BROKEN_WHEN_NAMED_SO),
        {"recreate": {}},
        healthCheck=HOME,
    )

    cli = await cli_worker.start_and_wait(spec, tmp_path)
    report("recreate/broken", cli)

    assert cli.code == 1, cli.stderr
    assert cli.result["outcome"] == "RolledBack"
    assert "health check failed" in cli.result["reason"]
    assert demo_hosts.versions(hosts) == dict.fromkeys(hosts, "v1")
    assert served(url) == {"v1"}  # and v1 answers 200 again, not the broken release's 500
