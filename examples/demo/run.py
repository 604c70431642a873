"""What `make demo` runs: bring the stack up, then one good and one bad rollout under load.

    python examples/demo/run.py [--strategy canary|blue-green|rolling|recreate]

Canary (the default), on two service slots behind NGINX, judged by Prometheus:

1. ``stack.py up``: Temporal dev server, service slots (stable v1, canary = the good
   spec's version), NGINX all-stable, Prometheus, worker; then steady load through NGINX.
2. The good rollout (``examples/rollouts/checkout-canary.yaml``): expect exit 0, promoted.
3. Reset: the promoted version becomes stable (stable slot restarted with it), NGINX back to
   100 % stable, canary slot restarted with the bad spec's version, its error rate set to 1.0.
4. The bad rollout (``checkout-canary-bad.yaml``): expect exit 1, rolled back.

Blue-green, rolling and recreate, on four "VMs" (127.0.0.1:18101-18104, each run by the
local host agent examples/demo/host.py, which the worker drives through the command
platform) behind HAProxy on :18090:

1. ``stack.py up``: Temporal dev server, HAProxy, worker (restarted if the code changed).
2. Baseline: v1 on the hosts the strategy starts from (blue-green: the blue pool, HAProxy
   100 % to it, green stopped; rolling and recreate: all four at 50/50), all in rotation;
   then steady load through HAProxy.
3. The good rollout (``checkout-STRATEGY.yaml``, v2): expect exit 0, promoted.
4. The bad rollout (``checkout-STRATEGY-bad.yaml``, v3, which the host agent runs as a bad
   build answering 500 on ``/``), straight after: expect exit 1, rolled back to v2.

After each rollout the load generator's lines from its run show what clients saw. The
committed specs use repository-relative paths; the routers want absolute ones, so each spec
is rendered with absolute paths (and the venv's python for the host agent) into
``.state/demo/rollouts/`` and that copy is what ``deployflow rollout start`` gets. The stack
stays up afterwards; ``make down`` stops it, hosts included.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import processes
import stack
import structlog
import yaml
from processes import HOST, LOGS, REPO, STATE, StackError

ROLLOUTS = REPO / "examples" / "rollouts"
RENDERED = STATE / "rollouts"
OUTCOMES = {
    0: "promoted",
    1: "rolled back / aborted",
    2: "invalid input",
    3: "Temporal unreachable",
}
VM_STRATEGIES = ("blue-green", "rolling", "recreate")
BASELINE_VERSION = "v1"
LOAD_RATE = 20.0
LOAD_REPORT_S = 3.0  # rollouts take 5-30 s: report often enough to see them move
PLATFORM_ACTIONS = ("deploy", "start", "stop", "restart", "current")
WORKFLOW_ID = f"rollout-{stack.SERVICE}-demo"  # every demo spec: service checkout, env demo
LEFTOVER_TIMEOUT_S = 30.0


def absolute(path: str) -> str:
    return path if Path(path).is_absolute() else str(REPO / path)


def render_nginx(nginx: dict[str, Any]) -> None:
    nginx["configPath"] = absolute(nginx["configPath"])
    for key in ("testCommand", "reloadCommand"):
        command: list[str] = nginx[key]
        if command[0] == "nginx":
            command[0] = stack.nginx_binary()
        if "-p" in command:
            at = command.index("-p") + 1
            command[at] = absolute(command[at])


def render_haproxy(haproxy: dict[str, Any]) -> None:
    for key in ("socket", "configPath"):
        haproxy[key] = absolute(haproxy[key])
    for key in ("checkCommand", "reloadCommand"):
        command: list[str] | None = haproxy.get(key)
        if not command:
            continue
        if command[0] == "haproxy":
            command[0] = stack.haproxy_binary()
        for at in range(1, len(command)):
            if command[at - 1] == "-f" and not command[at].startswith("{"):
                command[at] = absolute(command[at])


def render_command_platform(platform: dict[str, Any]) -> None:
    """``python`` is the venv's, scripts and ``--state-dir`` absolute, workdir the repo:
    the worker runs these commands, from wherever it was started."""
    for action in PLATFORM_ACTIONS:
        argv: list[str] | None = platform.get(action)
        if not argv:
            continue
        if argv[0] == "python":
            argv[0] = str(stack.BIN / "python")
        for at, word in enumerate(argv):
            if word.endswith(".py") or (at > 0 and argv[at - 1] == "--state-dir"):
                argv[at] = absolute(word)
    platform.setdefault("workdir", str(REPO))


def render_spec(source: Path) -> tuple[Path, str]:
    """Copy of ``source`` with absolute paths for its router and platform; returns it and
    its version."""
    document: dict[str, Any] = yaml.safe_load(source.read_text())
    spec = document["spec"]
    router = spec["router"]
    if "nginx" in router:
        render_nginx(router["nginx"])
    if "haproxy" in router:
        render_haproxy(router["haproxy"])
    command = (spec.get("platform") or {}).get("command")
    if command is not None:
        render_command_platform(command)
    RENDERED.mkdir(parents=True, exist_ok=True)
    target = RENDERED / source.name
    header = f"# Rendered from {source.relative_to(REPO)} by examples/demo/run.py.\n"
    target.write_text(header + yaml.safe_dump(document, sort_keys=False))
    return target, str(spec["version"])


def set_error_rate(slot: str, rate: float) -> None:
    url = f"http://{HOST}:{stack.SLOT_PORTS[slot]}/admin/error-rate"
    request = urllib.request.Request(url, data=str(rate).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=2.0) as response:
        response.read()
    print(f"  {slot:<11} error rate set to {rate}")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TEMPORAL_ADDRESS": f"{HOST}:{stack.TEMPORAL_PORT}"}
    command = [str(stack.BIN / "deployflow"), *args]
    return subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def demo_rollout_running() -> bool:
    described = stack.temporal("workflow", "describe", "--workflow-id", WORKFLOW_ID, "-o", "json")
    if described.returncode != 0:  # never started
        return False
    info = json.loads(described.stdout)["workflowExecutionInfo"]
    return bool(info["status"] == "WORKFLOW_EXECUTION_STATUS_RUNNING")


def end_leftover_rollout() -> None:
    """A rollout left running by an interrupted demo would make the next start exit 2:
    abort it (it rolls back), or terminate it if it cannot act (e.g. its workflow task
    keeps failing)."""
    if not demo_rollout_running():
        return
    print(f"  {WORKFLOW_ID} is still running from an earlier demo: aborting it")
    cli("rollout", "abort", stack.SERVICE, "--reason", "make demo starts afresh")
    deadline = time.monotonic() + LEFTOVER_TIMEOUT_S
    while demo_rollout_running():
        if time.monotonic() > deadline:
            print(f"  {WORKFLOW_ID} did not finish in {LEFTOVER_TIMEOUT_S:.0f}s: terminating it")
            reason = "make demo: abort did not finish it"
            stack.temporal(
                "workflow", "terminate", "--workflow-id", WORKFLOW_ID, "--reason", reason
            )
            break
        time.sleep(1.0)


def rollout(spec: Path) -> tuple[int, float]:
    """``deployflow rollout start SPEC --wait``, its output shown as it comes; exit code
    and seconds taken."""
    command = [str(stack.BIN / "deployflow"), "rollout", "start", str(spec), "--wait"]
    print(f"$ deployflow rollout start {spec.relative_to(REPO)} --wait", flush=True)
    env = {**os.environ, "TEMPORAL_ADDRESS": f"{HOST}:{stack.TEMPORAL_PORT}"}
    started = time.monotonic()
    code = subprocess.run(command, cwd=REPO, env=env, check=False).returncode
    return code, time.monotonic() - started


def report(title: str, outcome: tuple[int, float], expected: int) -> bool:
    code, seconds = outcome
    verdict = "as expected" if code == expected else f"UNEXPECTED, wanted exit {expected}"
    print(
        f"==> {title}: exit {code} ({OUTCOMES.get(code, 'failed')}) in {seconds:.0f}s — {verdict}"
    )
    return code == expected


class LoadLog:
    """The load generator's log from a mark on: what clients saw during one rollout."""

    def __init__(self) -> None:
        self.path = LOGS / "load.log"
        self.offset = 0

    def mark(self) -> None:
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def show(self, settle_s: float) -> None:
        time.sleep(settle_s)  # the line covering the rollout's last seconds
        try:
            with self.path.open("rb") as log:
                log.seek(self.offset)
                lines = log.read().decode(errors="replace").splitlines()
        except OSError:
            return
        print("  what the load saw (requests per status, [answers per version]):")
        for line in lines:
            if " load: " in line and "req/s to" not in line:
                print(f"    {line}")


def canary_demo(args: argparse.Namespace, good: tuple[Path, str], bad: tuple[Path, str]) -> bool:
    (good_spec, good_version), (bad_spec, bad_version) = good, bad
    print("==> stack up")
    stack.up(stack.CANARY_PARTS)
    end_leftover_rollout()
    # Load from an earlier demo would hit the stable slot while it restarts below.
    processes.stop("load")
    stack.set_slot("stable", stack.DEFAULT_VERSIONS["stable"])
    stack.set_slot("canary", good_version)
    set_error_rate("canary", 0.0)
    stack.reset_routing()
    processes.start(stack.load_component(args.load_seconds, LOAD_RATE, report_every=LOAD_REPORT_S))
    print()

    load = LoadLog()
    print(f"==> good canary: {good_version} healthy in the canary slot")
    load.mark()
    good_ok = report(f"{good_version} rollout", rollout(good_spec), expected=0)
    load.show(settle_s=LOAD_REPORT_S)
    print()

    print(f"==> {good_version} is stable now; bad canary: {bad_version} answering 500s")
    stack.set_slot("stable", good_version)
    stack.reset_routing()
    stack.set_slot("canary", bad_version)
    set_error_rate("canary", 1.0)
    load.mark()
    bad_ok = report(f"{bad_version} rollout", rollout(bad_spec), expected=1)
    load.show(settle_s=LOAD_REPORT_S)
    print()
    return good_ok and bad_ok


def check_vm_router(spec: Path) -> None:
    """The spec's HAProxy servers must be the stack's hosts, in its order (one backend)."""
    router = yaml.safe_load(spec.read_text())["spec"]["router"].get("haproxy") or {}
    wanted = {
        "stable": [f"{HOST}:{port}" for port in stack.VM_STABLE_PORTS],
        "canary": [f"{HOST}:{port}" for port in stack.VM_CANARY_PORTS],
        "backend": stack.HAPROXY_BACKEND,
    }
    have = {key: router.get(key) for key in wanted}
    if have != wanted:
        raise StackError(
            f"{spec.name}: router.haproxy {have} is not the demo's HAProxy backend {wanted} "
            "(examples/demo/stack.py)"
        )


def vm_baseline(strategy: str, spec: Path) -> None:
    """v1 where the strategy starts from, HAProxy in step, every server in rotation."""
    # Imported here, like stack.py does: the product's router, on the rendered spec.
    from activities.routing.base import ServerState, Weights
    from activities.routing.factory import router_for
    from workflows.spec import load_rollout

    # The router logs every socket command; here only its warnings are of interest.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    router = router_for(load_rollout(spec.read_text(), str(spec)).spec.router)
    if strategy == "blue-green":
        for port in stack.VM_STABLE_PORTS:
            stack.deploy_host(port, BASELINE_VERSION)
        weights = Weights(stable=100, canary=0)
    else:
        for port in stack.VM_PORTS:
            stack.deploy_host(port, BASELINE_VERSION)
        weights = Weights(stable=50, canary=50)
    router.set_weights(weights)
    router.set_server_states(dict.fromkeys(stack.all_vm_servers(), ServerState.READY))
    print(
        f"  haproxy     stable {', '.join(map(str, stack.VM_STABLE_PORTS))} {weights.stable} %"
        f" / canary {', '.join(map(str, stack.VM_CANARY_PORTS))} {weights.canary} %,"
        " all servers ready"
    )
    if strategy == "blue-green":
        for port in stack.VM_CANARY_PORTS:
            stack.stop_host(port)


def show_hosts() -> None:
    versions = {port: stack.host_version(port) for port in stack.VM_PORTS}
    print("  hosts: " + ", ".join(f":{p} {v or 'stopped'}" for p, v in versions.items()))


STORIES = {
    "blue-green": (
        "{good}: onto the idle green pool, health check + smoke test, then all traffic at "
        "once; blue stopped 5 s later",
        "{bad}, a bad build (500 on /): onto the idle blue pool; /healthz passes, the smoke "
        "test must catch it before any traffic moves",
    ),
    "rolling": (
        "{good}: one host at a time: drain at HAProxy, deploy, health check (GET /), back "
        "in rotation",
        "{bad}, a bad build (500 on /): the first host fails its health check while drained; "
        "it gets {good} back, the others are never touched",
    ),
    "recreate": (
        "{good}: stop all four hosts, deploy, start, health check (downtime expected)",
        "{bad}, a bad build (500 on /): every host fails its health check, every host gets "
        "{good} back (clients see the downtime and v3's 500s: recreate has no traffic step)",
    ),
}


def vm_demo(args: argparse.Namespace, good: tuple[Path, str], bad: tuple[Path, str]) -> bool:
    (good_spec, good_version), (bad_spec, bad_version) = good, bad
    for spec in (good_spec, bad_spec):
        check_vm_router(spec)
    print("==> stack up")
    stack.up(stack.VM_PARTS)
    end_leftover_rollout()
    processes.stop("load")
    print()
    print(f"==> baseline: {BASELINE_VERSION} on the hosts")
    vm_baseline(args.strategy, good_spec)
    processes.start(
        stack.load_component(
            args.load_seconds, LOAD_RATE, port=stack.HAPROXY_PORT, report_every=LOAD_REPORT_S
        )
    )
    show_hosts()
    print()

    load = LoadLog()
    good_story, bad_story = STORIES[args.strategy]
    results = []
    for spec, version, story, expected in (
        (good_spec, good_version, good_story, 0),
        (bad_spec, bad_version, bad_story, 1),
    ):
        print(f"==> {args.strategy}: " + story.format(good=good_version, bad=bad_version))
        load.mark()
        results.append(report(f"{version} rollout", rollout(spec), expected=expected))
        load.show(settle_s=LOAD_REPORT_S)
        show_hosts()
        print()
    return all(results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--strategy", default="canary")
    parser.add_argument("--load-seconds", type=int, default=900, help="bound on the load")
    args = parser.parse_args(argv)

    good_source = ROLLOUTS / f"checkout-{args.strategy}.yaml"
    bad_source = ROLLOUTS / f"checkout-{args.strategy}-bad.yaml"
    missing = [str(p.relative_to(REPO)) for p in (good_source, bad_source) if not p.exists()]
    if missing:
        have = sorted(p.stem.removeprefix("checkout-") for p in ROLLOUTS.glob("checkout-*.yaml"))
        strategies = [s for s in have if not s.endswith("-bad")]
        print(f"demo: no spec {', '.join(missing)}; strategies: {strategies}", file=sys.stderr)
        return 2
    if importlib.util.find_spec("starters.cli") is None:
        print("demo: the deployflow CLI (starters/cli.py) is not installed yet", file=sys.stderr)
        return 1

    vm = args.strategy in VM_STRATEGIES
    try:
        good, bad = render_spec(good_source), render_spec(bad_source)
        ok = vm_demo(args, good, bad) if vm else canary_demo(args, good, bad)
    except (StackError, OSError) as e:
        print(f"demo: {e}", file=sys.stderr)
        return 1

    stack.status(stack.VM_PARTS if vm else stack.CANARY_PARTS)
    service_port = stack.HAPROXY_PORT if vm else stack.NGINX_PORT
    print(
        f"\nTemporal UI: http://{HOST}:{stack.TEMPORAL_UI_PORT}"
        f"  (filter: DeployService = '{stack.SERVICE}')"
        + ("" if vm else f"\nPrometheus:  http://{HOST}:{stack.PROMETHEUS_PORT}")
        + f"\nService:     http://{HOST}:{service_port}/"
        "\nThe stack stays up; `make down` stops it."
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
