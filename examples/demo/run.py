"""What `make demo` runs: bring the stack up, then one good and one bad rollout under load.

    python examples/demo/run.py [--strategy canary|blue-green|rolling|recreate|pipeline]

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

Kubernetes (``--platform kubernetes``; see examples/demo/kube.py): the canary demo's two
rollouts (``examples/kubernetes/checkout-demo.yaml``, ``checkout-demo-bad.yaml``) on the
Kubernetes platform and the ingress-nginx router, against the cluster in ``KUBECONFIG`` or
deployflow's API server double; the slots stand in for the pods. Everything is stopped at
the end unless ``--keep-up``.

Incident (``--scenario incident``; see examples/demo/incident.py): an alert on the stable
slot becomes a PagerDuty page, a Slack thread and a restart by the runbook
``examples/runbooks/checkout.yaml``, through Alertmanager and ``deployflow serve``.

Self-healing (``--scenario self-healing``; see examples/demo/healing.py): the scheduled
monitor ``examples/monitors/checkout.yaml`` finds the stable slot hung, then leaking; its
SelfHealer restarts it within a restart budget, and once the budget is spent pages instead.

Pipeline (``examples/pipelines/checkout.yaml``): v2 is promoted staging → production, two
environments of checkout on the same stack. Staging is the four VMs behind HAProxy
(blue-green); production is the two NGINX slots (canary, judged by Prometheus), behind two
gates: 5 s live in staging, then alice's approval.

1. ``stack.py up`` (all but the incident parts); v1 live in both (the VMs' blue pool, green
   stopped; the stable slot, NGINX 100 % to it), v2 in the canary slot (the canary stage's
   version must run on the list it will put it on); steady load through NGINX.
2. ``deployflow pipeline start ... --version v2 --wait`` in the background; the demo polls
   ``pipeline status --json`` (bounded) and shows the timeline until production awaits
   approval, then ``pipeline approve checkout --as alice``; the background start must exit
   0 (every stage succeeded).
3. ``deployflow history checkout``, then an emergency ``deployflow rollback checkout --env
   production --to v1`` (production's history has only v2 promoted, so no last known good
   to default to), timed end to end and by what clients of NGINX got; production must
   answer v1 again. Production has no platform, so the rollback flips NGINX back to the
   stable slot, which still runs v1.

After each rollout the load generator's lines from its run show what clients saw. The
committed specs use repository-relative paths; the routers want absolute ones, so each spec
(each pipeline stage's rollout) is rendered with absolute paths (and the venv's python for
the host agent) into ``.state/demo/rollouts/`` (``pipelines/``) and that copy is what
``deployflow rollout start`` (``pipeline start``) gets. A workflow an interrupted demo left
running is ended first. The stack stays up afterwards; ``make down`` stops it, hosts
included.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import logging
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import healing
import incident
import kube
import processes
import stack
import structlog
import yaml
from processes import HOST, LOGS, REPO, STATE, StackError

from workflows.core.spec import SpecError
from workflows.rollouts.spec import rollout_workflow_id

if TYPE_CHECKING:
    from workflows.rollouts.spec import Rollout

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
PIPELINES = REPO / "examples" / "pipelines"
RENDERED_PIPELINES = STATE / "pipelines"
PIPELINE_ID = f"pipeline-{stack.SERVICE}"
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


def render_rollout_spec(spec: dict[str, Any]) -> None:
    """Absolute paths for a rollout spec's router and platform (in place)."""
    router = spec["router"]
    if "nginx" in router:
        render_nginx(router["nginx"])
    if "haproxy" in router:
        render_haproxy(router["haproxy"])
    command = (spec.get("platform") or {}).get("command")
    if command is not None:
        render_command_platform(command)


def write_rendered(source: Path, document: dict[str, Any], directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / source.name
    header = f"# Rendered from {source.relative_to(REPO)} by examples/demo/run.py.\n"
    target.write_text(header + yaml.safe_dump(document, sort_keys=False))
    return target


def render_spec(source: Path) -> tuple[Path, str]:
    """Copy of ``source`` with absolute paths for its router and platform; returns it and
    its version."""
    document: dict[str, Any] = yaml.safe_load(source.read_text())
    render_rollout_spec(document["spec"])
    return write_rendered(source, document, RENDERED), str(document["spec"]["version"])


def render_pipeline(source: Path) -> Path:
    """Copy of a ``kind: Pipeline`` file with every stage's rollout rendered."""
    document: dict[str, Any] = yaml.safe_load(source.read_text())
    for stage in document["spec"]["stages"]:
        render_rollout_spec(stage["rollout"])
    return write_rendered(source, document, RENDERED_PIPELINES)


def set_error_rate(slot: str, rate: float) -> None:
    url = f"http://{HOST}:{stack.SLOT_PORTS[slot]}/admin/error-rate"
    request = urllib.request.Request(url, data=str(rate).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=2.0) as response:
        response.read()
    print(f"  {slot:<12} error rate set to {rate}")


def abort_rollout(workflow_id: str) -> None:
    stack.cli("rollout", "abort", workflow_id, "--reason", "make demo starts afresh")


def cancel_workflow(workflow_id: str) -> None:
    stack.temporal("workflow", "cancel", "--workflow-id", workflow_id)


# What an interrupted demo may leave running on the shared routers and hosts, and how to end
# it, in this order: a pipeline first (cancelling it rolls back the stage it is in), then
# rollouts of each demo environment (abort rolls back), then an emergency rollback (it is
# left to finish). The pipeline's ids come from examples/pipelines/checkout.yaml.
LEFTOVERS: tuple[tuple[str, Callable[[str], None] | None], ...] = (
    (PIPELINE_ID, cancel_workflow),
    *(
        (rollout_workflow_id(stack.SERVICE, env), abort_rollout)
        for env in ("demo", "demo-kubernetes", "staging", "production")
    ),
    (f"rollback-{stack.SERVICE}-production", None),
)


def end_leftovers() -> None:
    """A workflow left running by an interrupted demo would make the next start exit 2 (or
    move traffic under it): end it, or terminate it if it does not end (e.g. its workflow
    task keeps failing)."""
    for workflow_id, end in LEFTOVERS:
        if not stack.workflow_running(workflow_id):
            continue
        doing = "ending it" if end is not None else "waiting for it"
        print(f"  {workflow_id} is still running from an earlier demo: {doing}")
        if end is not None:
            end(workflow_id)
        stack.close_or_terminate(workflow_id, LEFTOVER_TIMEOUT_S)


def rollout(spec: Path) -> tuple[int, float]:
    """``deployflow rollout start SPEC --wait``, its output shown as it comes; exit code
    and seconds taken."""
    command = [str(stack.BIN / "deployflow"), "rollout", "start", str(spec), "--wait"]
    print(f"$ deployflow rollout start {spec.relative_to(REPO)} --wait")
    started = time.monotonic()
    code = subprocess.run(command, cwd=REPO, env=stack.cli_env(), check=False).returncode
    return code, time.monotonic() - started


def report(
    title: str, outcome: tuple[int, float], expected: int, succeeded: str = OUTCOMES[0]
) -> bool:
    """One line: exit code, what it means, seconds taken; True when it was ``expected``.
    ``succeeded`` says what exit 0 means for this command."""
    code, seconds = outcome
    verdict = "as expected" if code == expected else f"UNEXPECTED, wanted exit {expected}"
    meaning = succeeded if code == 0 else OUTCOMES.get(code, "failed")
    print(f"==> {title}: exit {code} ({meaning}) in {seconds:.0f}s — {verdict}")
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
    end_leftovers()
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


KUBE_SPECS = REPO / "examples" / "kubernetes"


def render_kube_spec(source: Path, cluster: kube.Cluster) -> tuple[Path, str]:
    """Copy of a Kubernetes demo spec with the image this cluster can run; it and its version."""
    document: dict[str, Any] = yaml.safe_load(source.read_text())
    document["spec"]["platform"]["kubernetes"]["deployment"]["image"] = cluster.image
    return write_rendered(source, document, RENDERED), str(document["spec"]["version"])


def kubectl_get(cluster: kube.Cluster) -> None:
    command = ["kubectl", "--kubeconfig", cluster.kubeconfig, "-n", kube.NAMESPACE]
    print(f"$ kubectl -n {kube.NAMESPACE} get deploy,ingress")
    try:
        done = subprocess.run(
            [*command, "get", "deploy,ingress"], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        print(f"  kubectl: {e}")
        return
    for line in (done.stdout + done.stderr).splitlines():
        print(f"  {line}")
    if cluster.double:
        print("  (AGE is the double's simulated clock: 10 s a controller round, a round a request)")


def kubernetes_demo(args: argparse.Namespace) -> bool:
    """The canary demo on the Kubernetes platform and the ingress-nginx router (kube.py)."""
    real, why_not = kube.real_cluster()
    print(kube.banner(real, why_not))
    print()
    print("==> stack up")
    stack.up([p for p in stack.KUBE_PARTS if real is None or p != "kubeapi"])
    cluster = real or kube.double_cluster()
    good_spec, good_version = render_kube_spec(KUBE_SPECS / "checkout-demo.yaml", cluster)
    bad_spec, bad_version = render_kube_spec(KUBE_SPECS / "checkout-demo-bad.yaml", cluster)
    end_leftovers()
    processes.stop("load")  # the VM demo's load generator, if one runs: not ours here
    stable_version = stack.DEFAULT_VERSIONS["stable"]
    stack.set_slot("stable", stable_version)
    stack.set_slot("canary", good_version)
    print()
    print(f"==> the team's objects in namespace {kube.NAMESPACE}, at {stable_version}")
    kube.seed(cluster, stable_version)
    print()

    ports = {stable_version: stack.STABLE_PORT, good_version: stack.CANARY_PORT}
    with kube.Traffic(cluster, ports, report_every=LOAD_REPORT_S) as traffic:
        print(f"==> good canary: {good_version} healthy (stand-in :{stack.CANARY_PORT})")
        good_ok = report(f"{good_version} rollout", rollout(good_spec), expected=0)
        print()
        print(f"==> {good_version} is stable now; bad canary: {bad_version} answering 500s")
        # The stable stand-in becomes good_version; meanwhile the canary slot serves it.
        stack.set_slot("stable", good_version)
        traffic.ports = {good_version: stack.STABLE_PORT}
        stack.set_slot("canary", bad_version, error_rate=1.0)
        traffic.ports = {good_version: stack.STABLE_PORT, bad_version: stack.CANARY_PORT}
        bad_ok = report(f"{bad_version} rollout", rollout(bad_spec), expected=1)
        time.sleep(LOAD_REPORT_S)  # the traffic line covering the rollback
    print()
    print(f"==> read back: {kube.read_state(cluster)}")
    kubectl_get(cluster)
    return good_ok and bad_ok


def check_vm_router(source: str, router: dict[str, Any]) -> None:
    """A spec's HAProxy servers must be the stack's hosts, in its order (one backend)."""
    haproxy = router.get("haproxy") or {}
    wanted = {
        "stable": [f"{HOST}:{port}" for port in stack.VM_STABLE_PORTS],
        "canary": [f"{HOST}:{port}" for port in stack.VM_CANARY_PORTS],
        "backend": stack.HAPROXY_BACKEND,
    }
    have = {key: haproxy.get(key) for key in wanted}
    if have != wanted:
        raise StackError(
            f"{source}: router.haproxy {have} is not the demo's HAProxy backend {wanted} "
            "(examples/demo/stack.py)"
        )


def load_rollout_file(spec: Path) -> Rollout:
    from workflows.rollouts.spec import load_rollout

    return load_rollout(spec.read_text(), str(spec))


def vm_baseline(strategy: str, rollout: Rollout) -> None:
    """v1 where the strategy starts from, HAProxy in step, every server in rotation."""
    # Imported here, like stack.py does: the product's router, on the rendered spec.
    from activities.clients import Clients
    from activities.routing.base import ServerState, Weights
    from activities.routing.factory import rotation_for, router_for

    # The router logs every socket command; here only its warnings are of interest.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    router, clients = rollout.spec.router, Clients()
    if strategy == "blue-green":
        for port in stack.VM_STABLE_PORTS:
            stack.deploy_host(port, BASELINE_VERSION)
        weights = Weights(stable=100, canary=0)
    else:
        for port in stack.VM_PORTS:
            stack.deploy_host(port, BASELINE_VERSION)
        weights = Weights(stable=50, canary=50)
    router_for(router, clients).set_weights(weights)
    rotation_for(router, clients).set_server_states(
        dict.fromkeys(stack.all_vm_servers(), ServerState.READY)
    )
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
        check_vm_router(spec.name, yaml.safe_load(spec.read_text())["spec"]["router"])
    print("==> stack up")
    stack.up(stack.VM_PARTS)
    end_leftovers()
    processes.stop("load")
    print()
    print(f"==> baseline: {BASELINE_VERSION} on the hosts")
    vm_baseline(args.strategy, load_rollout_file(good_spec))
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


# -- the promotion pipeline: staging (VMs, blue-green) → production (NGINX, canary) --------

PIPELINE_SOURCE = PIPELINES / f"{stack.SERVICE}.yaml"
PIPELINE_VERSION = "v2"
APPROVER = "alice"
GATE_TIMEOUT_S = 180.0  # staging's blue-green takes ~15 s, then the 5 s soak
PIPELINE_TIMEOUT_S = 180.0  # after the approval: production's canary takes ~25 s
ROLLBACK_TIMEOUT_S = 120.0
SAMPLE_EVERY_S = 0.05


def pipeline_ui_url() -> str:
    return f"http://{HOST}:{stack.TEMPORAL_UI_PORT}/namespaces/default/workflows/{PIPELINE_ID}"


def answers(url: str, count: int = 20) -> dict[str, int]:
    """Which versions answer ``count`` requests to ``url`` (``error`` when none does)."""
    seen: dict[str, int] = {}
    for _ in range(count):
        version = answering_version(url)
        seen[version] = seen.get(version, 0) + 1
    return dict(sorted(seen.items()))


def describe(answered: dict[str, int]) -> str:
    return " ".join(f"{version}={count}" for version, count in answered.items())


def answering_version(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=2.0) as response:
            body = response.read(200).decode(errors="replace")
    except OSError:
        return "error"
    words = body.split()
    return words[1] if len(words) >= 2 else "error"


class Sampler:
    """Asks ``url`` which version answers, every SAMPLE_EVERY_S, in a thread: when traffic
    switched, as a client saw it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.samples: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), answering_version(self.url)))
            self._stop.wait(SAMPLE_EVERY_S)

    def only_since(self, version: str) -> float | None:
        """When every answer from then on was ``version`` (None: the last one was not)."""
        since: float | None = None
        for at, seen in self.samples:
            if seen != version:
                since = None
            elif since is None:
                since = at
        return since


def workflow_seconds(workflow_id: str) -> str:
    """How long the latest run of ``workflow_id`` took, start to close, per Temporal."""
    described = stack.temporal("workflow", "describe", "--workflow-id", workflow_id, "-o", "json")
    if described.returncode != 0:
        return "?"
    info = json.loads(described.stdout)["workflowExecutionInfo"]
    if not info.get("closeTime"):
        return "still running"
    took = datetime.fromisoformat(info["closeTime"]) - datetime.fromisoformat(info["startTime"])
    return f"{took.total_seconds():.2f}s"


class Timeline:
    """The pipeline's timeline, each event printed once, seconds since the demo started it."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.since = datetime.now(UTC)
        self.shown: set[tuple[str, str, str]] = set()

    def ours(self, status: dict[str, Any]) -> bool:
        """Whether ``status`` is of the run this demo started: until that run exists,
        ``pipeline status`` answers for the previous one (closed runs answer queries)."""
        events = status["events"]
        return bool(events) and all(datetime.fromisoformat(e["at"]) >= self.since for e in events)

    def show(self, status: dict[str, Any]) -> None:
        for event in status["events"]:
            key = (event["at"], event["kind"], event["message"])
            if key not in self.shown:
                self.shown.add(key)
                elapsed = time.monotonic() - self.started
                print(f"  [{elapsed:3.0f}s] {event['kind']:<17} {event['message']}")


def pipeline_status(timeline: Timeline) -> dict[str, Any] | None:
    """``deployflow pipeline status --json`` of the run ``timeline`` follows; None while
    there is none (not started yet, or the worker has not run its first task)."""
    done = stack.cli("pipeline", "status", stack.SERVICE, "--json")
    if done.returncode != 0:
        return None
    status: dict[str, Any] = json.loads(done.stdout)
    return status if timeline.ours(status) else None


def start_pipeline(spec: Path, version: str) -> subprocess.Popen[bytes]:
    """``deployflow pipeline start SPEC --version V --wait`` in the background: its exit
    code is the pipeline's outcome. Its progress (stderr: the submission, then the whole
    timeline at the end) goes to a log; the demo shows the timeline as it grows instead."""
    log = LOGS / "pipeline-start.log"
    print(
        f"$ deployflow pipeline start {spec.relative_to(REPO)} --version {version} --wait &"
        f"   (stderr: {log.relative_to(REPO)})"
    )
    command = [
        str(stack.BIN / "deployflow"),
        *("pipeline", "start", str(spec), "--version", version, "--wait"),
    ]
    with log.open("wb") as stderr:
        return subprocess.Popen(
            command, cwd=REPO, env=stack.cli_env(), stdin=subprocess.DEVNULL, stderr=stderr
        )


def await_gate(
    environment: str, run: subprocess.Popen[bytes], timeline: Timeline
) -> dict[str, Any] | None:
    """Poll the pipeline's status (bounded) until ``environment`` awaits approval; None if
    the pipeline ends first or the time runs out."""
    deadline = time.monotonic() + GATE_TIMEOUT_S
    while time.monotonic() < deadline:
        status = pipeline_status(timeline)
        if status is not None:
            timeline.show(status)
            stage = next(s for s in status["stages"] if s["environment"] == environment)
            if stage["state"] == "awaiting-approval":
                return status
            if status["outcome"] != "Running":
                print(f"  the pipeline ended {status['outcome']}: {status['message']}")
                return None
        if run.poll() is not None:
            print(f"  `pipeline start` exited {run.returncode} before {environment}'s gate")
            return None
        time.sleep(1.0)
    print(f"  {environment} did not reach its approval gate within {GATE_TIMEOUT_S:.0f}s")
    return None


def await_pipeline(run: subprocess.Popen[bytes], timeline: Timeline) -> int | None:
    """The background ``pipeline start --wait``'s exit code (None: not within the bound),
    showing the timeline meanwhile."""
    deadline = time.monotonic() + PIPELINE_TIMEOUT_S
    while run.poll() is None and time.monotonic() < deadline:
        status = pipeline_status(timeline)
        if status is not None:
            timeline.show(status)
        time.sleep(1.0)
    status = pipeline_status(timeline)  # a closed workflow still answers queries
    if status is not None:
        timeline.show(status)
    if run.poll() is None:
        print(f"  the pipeline did not finish within {PIPELINE_TIMEOUT_S:.0f}s of the approval")
        return None
    return run.returncode


def show_cli(*args: str, timeout: float = 60.0) -> tuple[int, float]:
    """Run ``deployflow ARGS`` and print what it printed; exit code and seconds taken."""
    print("$ deployflow " + " ".join(f'"{a}"' if " " in a else a for a in args))
    started = time.monotonic()
    done = stack.cli(*args, timeout=timeout)
    seconds = time.monotonic() - started
    for line in (done.stderr + done.stdout).splitlines():
        print(f"  {line}")
    return done.returncode, seconds


def promote(
    version: str, production: str, run: subprocess.Popen[bytes], timeline: Timeline
) -> bool:
    """Follow the pipeline to production's approval gate, approve as APPROVER, wait for
    the outcome: True when it succeeded (exit 0)."""
    if await_gate(production, run, timeline) is None:
        return False
    print(
        f"==> {production} waits for {APPROVER}'s approval. From a shell:\n"
        f"      deployflow pipeline approve {stack.SERVICE} --as {APPROVER}\n"
        f"    or in the Temporal UI, {pipeline_ui_url()}: send the Update `approve`\n"
        f'    with {{"approver": "{APPROVER}", "comment": "..."}}. The demo approves now:'
    )
    code, _ = show_cli("pipeline", "approve", stack.SERVICE, "--as", APPROVER, "--comment", "demo")
    if code != 0:
        return False
    exit_code = await_pipeline(run, timeline)
    if exit_code is None:
        return False
    seconds = time.monotonic() - timeline.started
    return report(f"{version} pipeline", (exit_code, seconds), 0, succeeded="every stage succeeded")


def last_known_good(environment: str) -> str | None:
    """What ``deployflow rollback`` would default to with no rollout running: the version
    promoted in ``environment`` before the live one, per ``deployflow history``."""
    done = stack.cli("history", stack.SERVICE, "--env", environment, "--json")
    if done.returncode != 0:
        return None
    promoted: list[str] = []
    for row in json.loads(done.stdout):
        if row.get("outcome") == "Promoted" and row.get("version") not in promoted:
            promoted.append(row["version"])
    return promoted[1] if len(promoted) > 1 else None


def emergency_rollback(environment: str, url: str, load: LoadLog) -> bool:
    """``deployflow rollback`` of ``environment`` to BASELINE_VERSION, timed end to end and
    as clients saw it; True when it exits 0 and ``url`` answers only that version."""
    target = BASELINE_VERSION
    default = last_known_good(environment)
    print(
        f"==> emergency rollback of {environment} to {target}; history's last known good: "
        + (default or f"none (only one version was ever promoted in {environment})")
        + f", so --to {target}"
    )
    load.mark()
    with Sampler(url) as sampler:
        time.sleep(1.0)  # what clients got before
        began = time.monotonic()
        outcome = show_cli(
            *("rollback", stack.SERVICE, "--env", environment, "--to", target),
            *("--reason", "make demo: emergency drill"),
            timeout=ROLLBACK_TIMEOUT_S,
        )
        time.sleep(1.0)
    ok = report(f"emergency rollback to {target}", outcome, 0, succeeded=f"{target} is live")
    since = sampler.only_since(target)
    print(
        f"  end to end (CLI start to exit): {outcome[1]:.2f}s; the EmergencyRollback workflow: "
        f"{workflow_seconds(f'rollback-{stack.SERVICE}-{environment}')}; clients got only "
        + (f"{target} from {since - began:+.2f}s on" if since is not None else f"{target}: never")
    )
    load.show(settle_s=LOAD_REPORT_S)
    served = answers(url)
    print(f"  {url} now answers: {describe(served)}")
    return ok and set(served) == {target}


def pipeline_demo(args: argparse.Namespace) -> bool:
    # Imported here, like vm_baseline's: the product's own reading of the rendered file.
    from workflows.promotion.spec import load_pipeline

    spec = render_pipeline(PIPELINE_SOURCE)
    pipeline = load_pipeline(spec.read_text(), str(spec))
    staging, production = pipeline.spec.stages  # the file has exactly these two
    check_vm_router(spec.name, staging.rollout["router"])
    version, production_url = PIPELINE_VERSION, f"http://{HOST}:{stack.NGINX_PORT}/"

    print("==> stack up")
    stack.up(stack.PIPELINE_PARTS)
    end_leftovers()
    processes.stop("load")
    print()
    print(
        f"==> baseline: {BASELINE_VERSION} live in {staging.environment} and "
        f"{production.environment}; {version} ready in production's idle (canary) slot"
    )
    vm_baseline("blue-green", pipeline.stage_rollout(0, BASELINE_VERSION))
    stack.set_slot("stable", BASELINE_VERSION)
    # The canary stage analyses the version it promotes, on the list the router has idle
    # (canary, after the reset below): that slot must already run it, healthy.
    stack.set_slot("canary", version)
    set_error_rate("canary", 0.0)
    stack.reset_routing()
    processes.start(stack.load_component(args.load_seconds, LOAD_RATE, report_every=LOAD_REPORT_S))
    show_hosts()
    print()

    load = LoadLog()
    print(
        f"==> pipeline: {version} → {staging.environment} (blue-green on the VMs), then "
        f"{production.environment} (canary on NGINX, under load) once it has soaked "
        f"{production.required_soak_time} in {staging.environment} and {APPROVER} approved"
    )
    load.mark()
    timeline = Timeline()
    run = start_pipeline(spec, version)
    try:
        promoted = promote(version, production.environment, run, timeline)
    finally:
        if run.poll() is None:  # our CLI process only: the pipeline itself goes on
            run.terminate()
            run.wait(timeout=10)
    load.show(settle_s=LOAD_REPORT_S)
    show_hosts()
    print(f"  {production_url} answers: {describe(answers(production_url))}")
    print()
    if not promoted:
        return False

    show_cli("history", stack.SERVICE)
    print()
    rolled_back = emergency_rollback(production.environment, production_url, load)
    print()
    return rolled_back


SCENARIOS = ("incident", "self-healing")


def scenario(args: argparse.Namespace) -> int:
    """A demo that is not a rollout (``--scenario``); its exit code."""
    if importlib.util.find_spec("starters.cli") is None:
        print("demo: the deployflow CLI (starters/cli.py) is not installed yet", file=sys.stderr)
        return 1
    try:
        return healing.demo(args) if args.scenario == "self-healing" else incident.demo(args)
    except (StackError, OSError) as e:
        print(f"demo: {e}", file=sys.stderr)
        return 1


PLATFORMS = ("vm", "kubernetes")


def kubernetes(args: argparse.Namespace) -> int:
    """``--platform kubernetes``: the canary demo there, then everything stopped by PID."""
    if args.strategy != "canary":
        print("demo: PLATFORM=kubernetes runs the canary demo only", file=sys.stderr)
        return 2
    try:
        ok = kubernetes_demo(args)
    except (StackError, SpecError, OSError) as e:
        print(f"demo: {e}", file=sys.stderr)
        ok = False
    finally:
        if args.keep_up:
            stack.status(stack.KUBE_PARTS)
            print("\nThe stack stays up (--keep-up); `make down` stops it.")
        else:
            print("\n==> stopping the stack (by the PIDs it recorded)")
            stack.down()
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--strategy", default="canary")
    parser.add_argument(
        "--scenario",
        choices=SCENARIOS,
        help="instead of a rollout: incident (an alert → page, Slack thread, restart) or "
        "self-healing (a scheduled monitor restarts a hung or leaking slot, then pages)",
    )
    parser.add_argument("--load-seconds", type=int, default=900, help="bound on the load")
    parser.add_argument(
        "--platform",
        choices=PLATFORMS,
        default="vm",
        help="kubernetes: the canary on Deployments and an ingress-nginx canary Ingress, on "
        "the cluster in KUBECONFIG or deployflow's API server double; the stack is stopped "
        "at the end",
    )
    parser.add_argument("--keep-up", action="store_true", help="kubernetes: leave it running")
    args = parser.parse_args(argv)
    if isinstance(sys.stdout, io.TextIOWrapper):  # in order with the CLI's output under make
        sys.stdout.reconfigure(line_buffering=True)
    if args.scenario is not None:
        return scenario(args)
    if args.platform == "kubernetes":
        return kubernetes(args)

    pipeline = args.strategy == "pipeline"
    good_source = ROLLOUTS / f"checkout-{args.strategy}.yaml"
    bad_source = ROLLOUTS / f"checkout-{args.strategy}-bad.yaml"
    needed = [PIPELINE_SOURCE] if pipeline else [good_source, bad_source]
    missing = [str(p.relative_to(REPO)) for p in needed if not p.exists()]
    if missing:
        have = sorted(p.stem.removeprefix("checkout-") for p in ROLLOUTS.glob("checkout-*.yaml"))
        strategies = [s for s in have if not s.endswith("-bad")] + ["pipeline"]
        print(f"demo: no spec {', '.join(missing)}; strategies: {strategies}", file=sys.stderr)
        return 2
    if importlib.util.find_spec("starters.cli") is None:
        print("demo: the deployflow CLI (starters/cli.py) is not installed yet", file=sys.stderr)
        return 1

    vm = args.strategy in VM_STRATEGIES
    try:
        if pipeline:
            ok = pipeline_demo(args)
        else:
            good, bad = render_spec(good_source), render_spec(bad_source)
            ok = vm_demo(args, good, bad) if vm else canary_demo(args, good, bad)
    except (StackError, SpecError, OSError) as e:
        print(f"demo: {e}", file=sys.stderr)
        return 1

    parts = stack.PIPELINE_PARTS if pipeline else stack.VM_PARTS if vm else stack.CANARY_PARTS
    stack.status(parts)
    services = {
        "Service:": [stack.HAPROXY_PORT if vm else stack.NGINX_PORT],
        "Staging:": [stack.HAPROXY_PORT],
        "Production:": [stack.NGINX_PORT],
    }
    shown = ("Staging:", "Production:") if pipeline else ("Service:",)
    print(
        f"\nTemporal UI: http://{HOST}:{stack.TEMPORAL_UI_PORT}"
        f"  (filter: DeployService = '{stack.SERVICE}')"
        + ("" if vm else f"\nPrometheus:  http://{HOST}:{stack.PROMETHEUS_PORT}")
        + "".join(f"\n{label:<12} http://{HOST}:{services[label][0]}/" for label in shown)
        + "\nThe stack stays up; `make down` stops it."
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
