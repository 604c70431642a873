"""The local demo stack: Temporal dev server, two demo service slots, NGINX, HAProxy,
Prometheus, worker; the incident parts (Alertmanager, local PagerDuty and Slack servers,
``deployflow serve``); and the "VMs" of the blue-green, rolling and recreate demos.

    python examples/demo/stack.py up [NAME ...]     start what is not running (all by default)
    python examples/demo/stack.py down              stop everything this stack started
    python examples/demo/stack.py status            what runs, where
    python examples/demo/stack.py slot canary --version v3 [--error-rate 1.0]
    python examples/demo/stack.py restart stable    the slot's process afresh, same version
    python examples/demo/stack.py reset             NGINX back to 100 % stable

Every process runs in the background with its PID in ``.state/demo/pids/NAME.pid`` and its
output in ``.state/demo/logs/NAME.log``; ``down`` stops exactly those PIDs. Everything
listens on 127.0.0.1 only, on the ports below (chosen away from the usual 80/9090/8000s so a
system nginx or prometheus started by the Debian packages does not get in the way).

The canary demo uses the two service slots (:18001 stable, :18002 canary) behind NGINX.
The VM strategies use four hosts on :18101-:18104 behind HAProxy (:18090): those ports
belong to the local host agent (examples/demo/host.py, state in ``.state/demo/hosts/``),
which the worker runs through the command platform; this stack never starts a process on
them itself, and ``down`` stops them through the agent, by its recorded PIDs.

The Kubernetes demo (``run.py --platform kubernetes``, see kube.py) uses the same two slots
as stand-ins for the versions' pods and, with no reachable cluster in ``KUBECONFIG``,
``kubeapi``: deployflow's Kubernetes API server double on :19601, whose kubeconfig
(``.state/demo/kube/kubeconfig``) the worker is then started with.

The worker serves its Prometheus metrics on :19464 and ``/readyz`` on :19465 (its readiness
here); Prometheus scrapes it as job ``deployflow-worker`` with the alert rules of
``examples/prometheus/worker-rules.yml``.

The incident demo adds: Prometheus's alert rule ``CheckoutHighErrorRate`` (the stable
slot's 5xx ratio over 10 s above 0.5) sent to Alertmanager (:19093), whose webhook posts to
``deployflow serve`` (:19095, runbooks ``examples/runbooks/checkout.yaml``) with a Bearer
token the stack generates once (``.state/demo/webhook-token``); and the local PagerDuty
(HTTPS :19443) and Slack (:19444) servers (``notify``), whose environment for the worker is
in ``.state/demo/notify/notify.env`` while they run.

``up`` restarts a running worker (and ``serve``) when what it loaded at start is out of
date: the deployflow code (a fingerprint of the packages' sources), or its environment —
a worker started before the notify servers has no way to page, so starting ``notify``
and then ``worker`` restarts it with their environment. The fingerprints are kept in
``.state/demo/NAME.code``. Likewise Prometheus and Alertmanager are restarted when their
configuration or command line changed (it is written on every ``up``). The worker runs
with the venv's ``bin`` first on ``PATH``, so ``python`` in a runbook's or monitor's
command platform is the venv's.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from processes import (
    HOST,
    PIDS,
    REPO,
    STATE,
    STOP_TIMEOUT_S,
    Component,
    StackError,
    children,
    cmdline,
    http_status,
    port_open,
    running_pid,
    start,
    stop,
)

from starters.devserver import build_command, find_temporal_binary

TEMPORAL_PORT = 7233
TEMPORAL_UI_PORT = 8233
STABLE_PORT = 18001
CANARY_PORT = 18002
NGINX_PORT = 18080
HAPROXY_PORT = 18090
PROMETHEUS_PORT = 19090
ALERTMANAGER_PORT = 19093
SERVE_PORT = 19095
PAGERDUTY_PORT = 19443
SLACK_PORT = 19444
WORKER_METRICS_PORT = 19464
WORKER_HEALTH_PORT = 19465
KUBE_API_PORT = 19601  # the Kubernetes API server double (`make demo PLATFORM=kubernetes`)
# The VM strategies' hosts, one port each, split into the router's two lists (for blue-green
# the two pools; rolling and recreate treat them as one fleet at 50/50). The specs in
# examples/rollouts/ list exactly these, in this order.
VM_STABLE_PORTS = (18101, 18102)
VM_CANARY_PORTS = (18103, 18104)
VM_PORTS = (*VM_STABLE_PORTS, *VM_CANARY_PORTS)

SERVICE = "checkout"
UPSTREAM = "checkout"
SLOT_PORTS = {"stable": STABLE_PORT, "canary": CANARY_PORT}
DEFAULT_VERSIONS = {"stable": "v1", "canary": "v2"}
# The queue the worker polls; readiness is "a poller shows up there" (a warning if not).
TASK_QUEUE = os.environ.get("DEPLOYFLOW_TASK_QUEUE", "deployflow")

NGINX_PREFIX = STATE / "nginx"
UPSTREAM_FILE = NGINX_PREFIX / "checkout-upstream.conf"
HAPROXY_PREFIX = STATE / "haproxy"
HAPROXY_MAIN = HAPROXY_PREFIX / "haproxy.cfg"
HAPROXY_BACKEND = "checkout-vms"
HAPROXY_BACKEND_FILE = HAPROXY_PREFIX / f"{HAPROXY_BACKEND}.cfg"
HAPROXY_SOCKET = HAPROXY_PREFIX / "admin.sock"
PROMETHEUS_DIR = STATE / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
PROMETHEUS_RULES = PROMETHEUS_DIR / "rules.yml"
ALERTMANAGER_DIR = STATE / "alertmanager"
ALERTMANAGER_CONFIG = ALERTMANAGER_DIR / "alertmanager.yml"
NOTIFY_DIR = STATE / "notify"
NOTIFY_ENV = NOTIFY_DIR / "notify.env"  # written by the notify servers once they listen
NOTIFY_STATE = NOTIFY_DIR / "notify-servers.json"  # likewise, last: "ready"
WEBHOOK_TOKEN_FILE = STATE / "webhook-token"
RUNBOOKS = REPO / "examples" / "runbooks" / "checkout.yaml"
WORKER_RULES = REPO / "examples" / "prometheus" / "worker-rules.yml"
WORKER_JOB = "deployflow-worker"  # the job worker-rules.yml selects on
NOTIFY_MARKER = "activities.notify.local_servers"
HOSTS_DIR = STATE / "hosts"
KUBE_DIR = STATE / "kube"
KUBE_KUBECONFIG = KUBE_DIR / "kubeconfig"  # written by the double once it listens
KUBE_MARKER = "activities.kubernetes.testing"
HOST_AGENT = REPO / "examples" / "demo" / "host.py"
# What the worker and serve run: a change to any of it means the running one is out of date.
WORKER_SOURCES = ("workflows", "activities", "workers", "starters")
BIN = Path(sys.executable).parent

# The alert the incident demo is about: the stable slot's 5xx ratio over 10 s. The runbook
# (examples/runbooks/checkout.yaml) queries the same ratio.
ALERT_NAME = "CheckoutHighErrorRate"
STABLE_SLOT = f'job="{SERVICE}", instance="{HOST}:{STABLE_PORT}"'
ERROR_RATIO = (
    f'sum(rate(http_requests_total{{{STABLE_SLOT}, code=~"5.."}}[10s]))'
    f" / sum(rate(http_requests_total{{{STABLE_SLOT}}}[10s]))"
)
ALERT_GROUP_BY = ("alertname", "service")
REPEAT_INTERVAL = "10s"

ORDER = (
    "temporal",
    "stable",
    "canary",
    "nginx",
    "haproxy",
    "kubeapi",
    "notify",
    "worker",
    "serve",
    "alertmanager",
    "prometheus",
)
# What each demo needs (`stack.py up` with no names starts everything).
CANARY_PARTS = ["temporal", "stable", "canary", "nginx", "prometheus", "worker"]
VM_PARTS = ["temporal", "haproxy", "worker"]
# The Kubernetes demo: the slots stand in for the pods; "kubeapi" only without a cluster.
KUBE_PARTS = ["temporal", "stable", "canary", "kubeapi", "prometheus", "worker"]
PIPELINE_PARTS = ["temporal", "stable", "canary", "nginx", "haproxy", "prometheus", "worker"]
INCIDENT_PARTS = [
    "temporal",
    "stable",
    "notify",
    "worker",
    "serve",
    "alertmanager",
    "prometheus",
]


def http_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=2.0) as response:
        return json.load(response)


def temporal(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the temporal CLI against the demo server."""
    command = [find_temporal_binary(), *args, "--address", f"{HOST}:{TEMPORAL_PORT}"]
    return subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)


def cli_env() -> dict[str, str]:
    """The environment for ``deployflow`` commands against this stack."""
    return {**os.environ, "TEMPORAL_ADDRESS": f"{HOST}:{TEMPORAL_PORT}"}


def cli(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run ``deployflow ARGS`` against this stack (bounded, output captured)."""
    return subprocess.run(
        [str(BIN / "deployflow"), *args],
        cwd=REPO,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def workflow_running(workflow_id: str) -> bool:
    """Whether the workflow exists and is running (the temporal CLI's describe)."""
    described = temporal("workflow", "describe", "--workflow-id", workflow_id, "-o", "json")
    if described.returncode != 0:  # never started
        return False
    info = json.loads(described.stdout)["workflowExecutionInfo"]
    return bool(info["status"] == "WORKFLOW_EXECUTION_STATUS_RUNNING")


def close_or_terminate(workflow_id: str, timeout_s: float) -> None:
    """Wait until the workflow has closed; terminate it if it has not within ``timeout_s``
    (an earlier demo's leftover whose workflow task keeps failing, say)."""
    deadline = time.monotonic() + timeout_s
    while workflow_running(workflow_id):
        if time.monotonic() > deadline:
            print(f"  {workflow_id} did not close in {timeout_s:.0f}s: terminating it")
            reason = "make demo: it did not close"
            temporal("workflow", "terminate", "--workflow-id", workflow_id, "--reason", reason)
            return
        time.sleep(0.5)


def temporal_ready() -> bool:
    listed = temporal("operator", "search-attribute", "list")
    return listed.returncode == 0 and "DeployPhase" in listed.stdout


def prometheus_targets() -> list[dict[str, object]]:
    body = http_json(f"http://{HOST}:{PROMETHEUS_PORT}/api/v1/targets")
    assert isinstance(body, dict)
    targets: list[dict[str, object]] = body["data"]["activeTargets"]
    return targets


def prometheus_ready() -> bool:
    """Ready, both slots listed and the running ones scraped, Alertmanager known (alerts
    sent before Prometheus knows an Alertmanager are dropped)."""
    if http_status(f"http://{HOST}:{PROMETHEUS_PORT}/-/ready") != 200:
        return False
    health = {}
    for target in prometheus_targets():
        labels = target["labels"]
        assert isinstance(labels, dict)
        if labels["job"] == SERVICE:  # the worker's target is up once the worker is
            health[labels["instance"]] = target["health"]
    running = [
        f"{HOST}:{port}"
        for slot, port in SLOT_PORTS.items()
        if running_pid(slot, f"--port {port}") is not None
    ]
    body = http_json(f"http://{HOST}:{PROMETHEUS_PORT}/api/v1/alertmanagers")
    assert isinstance(body, dict)
    alertmanagers = body["data"]["activeAlertmanagers"]
    return (
        len(health) == len(SLOT_PORTS)
        and all(health.get(target) == "up" for target in running)
        and len(alertmanagers) == 1
    )


def haproxy_ready() -> bool:
    """The frontend accepts connections and the admin socket answers."""
    if not port_open(HAPROXY_PORT):
        return False
    try:
        with socket.socket(socket.AF_UNIX) as admin:
            admin.settimeout(1.0)
            admin.connect(str(HAPROXY_SOCKET))
            admin.sendall(b"show info\n")
            return b"Pid:" in admin.recv(65536)
    except OSError:
        return False


def worker_polling() -> bool:
    """The worker's readiness: Temporal lists it as a poller of its queue."""
    return http_status(f"http://{HOST}:{WORKER_HEALTH_PORT}/readyz") == 200


def service_argv(slot: str, version: str, error_rate: float = 0.0) -> list[str]:
    return [
        str(BIN / "python"),
        str(REPO / "examples" / "demo_service.py"),
        "--host",
        HOST,
        "--port",
        str(SLOT_PORTS[slot]),
        "--service",
        SERVICE,
        "--version",
        version,
        "--error-rate",
        str(error_rate),
    ]


def write_all_stable_upstream() -> None:
    """The router-owned upstream file at 100 % stable, rendered by the router's own code."""
    # Imported here so `down` and `status` work even while the router module is mid-change.
    from activities.routing.base import Weights
    from activities.routing.nginx import render_upstream

    weights = Weights(stable=100, canary=0)
    UPSTREAM_FILE.write_text(
        render_upstream(UPSTREAM, [f"{HOST}:{STABLE_PORT}"], [f"{HOST}:{CANARY_PORT}"], weights)
    )


def write_nginx_config() -> None:
    """nginx.conf with pid, logs and temp dirs inside the prefix; includes the upstream file."""
    for sub in ("logs", "tmp"):
        (NGINX_PREFIX / sub).mkdir(parents=True, exist_ok=True)
    temp = "\n".join(
        f'    {kind}_temp_path "{NGINX_PREFIX / "tmp" / kind}";'
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (NGINX_PREFIX / "nginx.conf").write_text(
        f"""# Written by examples/demo/stack.py; the upstream file belongs to deployflow's router.
daemon off;
worker_processes 1;
pid "{NGINX_PREFIX / "nginx.pid"}";
error_log "{NGINX_PREFIX / "logs" / "error.log"}" warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
{temp}
    include {UPSTREAM_FILE.name};
    server {{
        listen {HOST}:{NGINX_PORT};
        location / {{
            proxy_pass http://{UPSTREAM};
            proxy_next_upstream off;
        }}
    }}
}}
"""
    )


def haproxy_main_config() -> str:
    """The main config: admin socket, frontend, health checks; the backend is in its own file."""
    return f"""# Written by examples/demo/stack.py; {HAPROXY_BACKEND_FILE.name} is deployflow's.
global
    stats socket {HAPROXY_SOCKET} mode 600 level admin
    pidfile {HAPROXY_PREFIX / "haproxy.pid"}
    maxconn 1000
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
    # HAProxy's own view of which hosts are up, so a stopped host costs clients a quick
    # 503 (recreate's downtime) instead of connect retries. deployflow's drain/ready states
    # are administrative and independent of it.
    option httpchk GET /healthz
    default-server check inter 1s fall 1 rise 1
    retries 1
frontend {SERVICE}
    bind {HOST}:{HAPROXY_PORT}
    http-response set-header X-Server %[srv_name]
    default_backend {HAPROXY_BACKEND}
"""


def write_haproxy_config() -> None:
    """The main config and the router-owned backend file at 100 % to the stable pool,
    rendered by the router's own code. deployflow's HAProxy router changes weights and
    server states over the socket at runtime and keeps that file in step."""
    # Imported here so `down` and `status` work even while the router module is mid-change.
    from activities.routing.base import Weights
    from activities.routing.haproxy.plan import render_backend

    if len(str(HAPROXY_SOCKET).encode()) >= 108:  # sun_path, NUL included
        raise StackError(f"{HAPROXY_SOCKET}: too long for a unix socket; move the repository")
    HAPROXY_PREFIX.mkdir(parents=True, exist_ok=True)
    HAPROXY_MAIN.write_text(haproxy_main_config())
    HAPROXY_BACKEND_FILE.write_text(
        render_backend(
            HAPROXY_BACKEND,
            [f"{HOST}:{port}" for port in VM_STABLE_PORTS],
            [f"{HOST}:{port}" for port in VM_CANARY_PORTS],
            Weights(stable=100, canary=0),
        )
    )


def haproxy_binary() -> str:
    return shutil.which("haproxy") or "/usr/sbin/haproxy"


def haproxy_command(*args: str) -> list[str]:
    """Master-worker mode in the foreground: the recorded PID is the master."""
    return [haproxy_binary(), "-W", "-f", str(HAPROXY_MAIN), "-f", str(HAPROXY_BACKEND_FILE), *args]


def prometheus_config() -> str:
    targets = ", ".join(f"'{HOST}:{port}'" for port in SLOT_PORTS.values())
    return f"""# Written by examples/demo/stack.py.
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: {SERVICE}
    static_configs:
      - targets: [{targets}]
  - job_name: {WORKER_JOB}
    static_configs:
      - targets: ['{HOST}:{WORKER_METRICS_PORT}']
rule_files: [{PROMETHEUS_RULES.name}, '{WORKER_RULES}']
alerting:
  alertmanagers:
    - api_version: v2
      static_configs:
        - targets: ['{HOST}:{ALERTMANAGER_PORT}']
"""


def prometheus_rules() -> str:
    """The incident demo's alert: the stable slot answers more than half with 5xx. No
    traffic is 0/0 = NaN, which never fires."""
    return f"""# Written by examples/demo/stack.py.
groups:
  - name: {SERVICE}
    rules:
      - alert: {ALERT_NAME}
        expr: '{ERROR_RATIO} > 0.5'
        for: 0s
        labels:
          severity: critical
          service: {SERVICE}
          environment: demo
        annotations:
          summary: >-
            the stable slot {HOST}:{STABLE_PORT} answers
            {{{{ $value | humanizePercentage }}}} of its requests with 5xx
          runbook: examples/runbooks/checkout.yaml
"""


def write_prometheus_config() -> None:
    PROMETHEUS_DIR.mkdir(parents=True, exist_ok=True)
    PROMETHEUS_CONFIG.write_text(prometheus_config())
    PROMETHEUS_RULES.write_text(prometheus_rules())
    promtool = shutil.which("promtool") or "/usr/bin/promtool"
    if Path(promtool).exists():
        checked = subprocess.run(
            [promtool, "check", "config", str(PROMETHEUS_CONFIG)],
            capture_output=True,
            text=True,
            check=False,
        )
        if checked.returncode != 0:
            raise StackError(
                f"promtool rejected the demo config:\n{checked.stdout}{checked.stderr}"
            )


def prometheus_argv() -> list[str]:
    return [
        shutil.which("prometheus") or "/usr/bin/prometheus",
        f"--config.file={PROMETHEUS_CONFIG}",
        f"--storage.tsdb.path={PROMETHEUS_DIR / 'data'}",
        "--storage.tsdb.retention.time=1d",
        f"--web.listen-address={HOST}:{PROMETHEUS_PORT}",
        f"--web.external-url=http://{HOST}:{PROMETHEUS_PORT}",  # the alerts' generatorURL
    ]


def webhook_token() -> str:
    """The Bearer token Alertmanager sends and serve expects: generated once, kept in
    WEBHOOK_TOKEN_FILE (mode 600)."""
    if not WEBHOOK_TOKEN_FILE.exists():
        STATE.mkdir(parents=True, exist_ok=True)
        partial = WEBHOOK_TOKEN_FILE.with_suffix(".partial")
        partial.touch(mode=0o600)
        partial.write_text(secrets.token_urlsafe(32) + "\n")
        partial.replace(WEBHOOK_TOKEN_FILE)
    return WEBHOOK_TOKEN_FILE.read_text().strip()


def alertmanager_config() -> str:
    """One route to ``deployflow serve``: a new group is sent after 1 s, changes at the next
    1 s tick, an unchanged firing group again every REPEAT_INTERVAL; resolutions too. The
    token is read from its file, so it is not in this one."""
    group_by = ", ".join(ALERT_GROUP_BY)
    return f"""# Written by examples/demo/stack.py.
route:
  receiver: deployflow
  group_by: [{group_by}]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: {REPEAT_INTERVAL}
receivers:
  - name: deployflow
    webhook_configs:
      - url: http://{HOST}:{SERVE_PORT}/alerts/alertmanager
        send_resolved: true
        max_alerts: 0
        http_config:
          authorization: {{type: Bearer, credentials_file: '{WEBHOOK_TOKEN_FILE}'}}
"""


def alertmanager_argv() -> list[str]:
    return [
        shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager",
        f"--config.file={ALERTMANAGER_CONFIG}",
        f"--storage.path={ALERTMANAGER_DIR / 'data'}",
        f"--web.listen-address={HOST}:{ALERTMANAGER_PORT}",
        f"--web.external-url=http://{HOST}:{ALERTMANAGER_PORT}",  # the webhook's externalURL
        "--cluster.listen-address=",  # no gossip, no second port
    ]


def write_alertmanager_config() -> None:
    ALERTMANAGER_DIR.mkdir(parents=True, exist_ok=True)
    webhook_token()
    ALERTMANAGER_CONFIG.write_text(alertmanager_config())


def notify_env() -> dict[str, str]:
    """The worker's environment for the local notify servers while they run (else none)."""
    if running_pid("notify", NOTIFY_MARKER) is None:
        return {}
    try:
        lines = NOTIFY_ENV.read_text().splitlines()
    except OSError:
        return {}
    env = {}
    for line in lines:
        name, _, quoted = line.partition("=")
        value = shlex.split(quoted)  # written with shlex.quote: one word
        if name and len(value) == 1:
            env[name] = value[0]
    return env


def kube_env() -> dict[str, str]:
    """The worker's KUBECONFIG: the double's while it runs, else the one this shell has."""
    if running_pid("kubeapi", KUBE_MARKER) is not None:
        return {"KUBECONFIG": str(KUBE_KUBECONFIG)}
    return {"KUBECONFIG": os.environ["KUBECONFIG"]} if os.environ.get("KUBECONFIG") else {}


def kube_ready() -> bool:
    return KUBE_KUBECONFIG.exists() and port_open(KUBE_API_PORT)


def notify_ready() -> bool:
    return NOTIFY_STATE.exists() and port_open(SLACK_PORT)


def nginx_binary() -> str:
    return shutil.which("nginx") or "/usr/sbin/nginx"


def nginx_command(*args: str) -> list[str]:
    return [nginx_binary(), "-p", str(NGINX_PREFIX), "-c", "nginx.conf", *args]


def service_component(slot: str, version: str, error_rate: float = 0.0) -> Component:
    port = SLOT_PORTS[slot]
    return Component(
        name=slot,
        argv=service_argv(slot, version, error_rate),
        marker=f"--port {port}",
        ready=lambda: http_status(f"http://{HOST}:{port}/healthz") == 200,
        url=f"http://{HOST}:{port}/ ({version})",
        port=port,
    )


def load_component(
    seconds: int, rate: float, port: int = NGINX_PORT, report_every: float = 10.0
) -> Component:
    """The load generator (examples/demo/load.py) as a stack process, so `down` stops it."""
    url = f"http://{HOST}:{port}/"
    return Component(
        name="load",
        argv=[
            str(BIN / "python"),
            str(REPO / "examples" / "demo" / "load.py"),
            f"--url={url}",
            f"--rate={rate}",
            f"--seconds={seconds}",
            f"--report-every={report_every}",
        ],
        marker="load.py",
        ready=lambda: True,
        url=f"{rate:g} req/s to {url} for at most {seconds}s",
    )


def components() -> dict[str, Component]:
    """Every long-running part of the stack, by name."""
    temporal_argv = build_command(find_temporal_binary(), db_filename=STATE / "temporal.db")
    listed = [
        Component(
            name="temporal",
            argv=temporal_argv,
            marker="temporal",
            ready=temporal_ready,
            url=f"{HOST}:{TEMPORAL_PORT}, UI http://{HOST}:{TEMPORAL_UI_PORT}",
            port=TEMPORAL_PORT,
            ready_timeout_s=60.0,
        ),
        *(service_component(slot, version) for slot, version in DEFAULT_VERSIONS.items()),
        Component(
            name="nginx",
            argv=nginx_command(),
            marker="nginx",
            ready=lambda: http_status(f"http://{HOST}:{NGINX_PORT}/") is not None,
            url=f"http://{HOST}:{NGINX_PORT}/",
            port=NGINX_PORT,
        ),
        Component(
            name="haproxy",
            argv=haproxy_command(),
            marker="haproxy",
            ready=haproxy_ready,
            url=f"http://{HOST}:{HAPROXY_PORT}/ (backend {HAPROXY_BACKEND}, hosts :{VM_PORTS[0]}"
            f"-:{VM_PORTS[-1]})",
            port=HAPROXY_PORT,
        ),
        Component(
            name="kubeapi",
            argv=[
                str(BIN / "python"),
                "-m",
                KUBE_MARKER,
                f"--host={HOST}",
                f"--port={KUBE_API_PORT}",
                f"--kubeconfig={KUBE_KUBECONFIG}",
            ],
            marker=KUBE_MARKER,
            ready=kube_ready,
            url=f"http://{HOST}:{KUBE_API_PORT} (Kubernetes API server double, kubeconfig "
            f"{KUBE_KUBECONFIG.relative_to(REPO)})",
            port=KUBE_API_PORT,
        ),
        Component(
            name="notify",
            argv=[
                str(BIN / "python"),
                "-m",
                NOTIFY_MARKER,
                f"--state-dir={NOTIFY_DIR}",
                f"--pagerduty-port={PAGERDUTY_PORT}",
                f"--slack-port={SLACK_PORT}",
            ],
            marker=NOTIFY_MARKER,
            ready=notify_ready,
            url=f"PagerDuty https://{HOST}:{PAGERDUTY_PORT}/v2/enqueue, "
            f"Slack http://{HOST}:{SLACK_PORT}/api/ (GET /_received on both)",
            port=PAGERDUTY_PORT,
        ),
        worker_component(),
        serve_component(),
        Component(
            name="alertmanager",
            argv=alertmanager_argv(),
            marker="alertmanager",
            ready=lambda: http_status(f"http://{HOST}:{ALERTMANAGER_PORT}/-/ready") == 200,
            url=f"http://{HOST}:{ALERTMANAGER_PORT}/ (webhook to serve, repeats every "
            f"{REPEAT_INTERVAL})",
            port=ALERTMANAGER_PORT,
        ),
        Component(
            name="prometheus",
            argv=prometheus_argv(),
            marker="prometheus",
            ready=prometheus_ready,
            url=f"http://{HOST}:{PROMETHEUS_PORT}/ (alert {ALERT_NAME})",
            port=PROMETHEUS_PORT,
        ),
    ]
    return {c.name: c for c in listed}


def deployflow_binary() -> str:
    return shutil.which("deployflow", path=str(BIN)) or "deployflow"


def worker_component() -> Component:
    """The worker, with the notify servers' environment when they run; ``python`` on its
    PATH is the venv's (runbook and monitor commands run ``python examples/demo/...``)."""
    return Component(
        name="worker",
        argv=[
            deployflow_binary(),
            "worker",
            f"--metrics-listen={HOST}:{WORKER_METRICS_PORT}",
            f"--health-listen={HOST}:{WORKER_HEALTH_PORT}",
        ],
        marker="worker",
        ready=worker_polling,
        url=f"task queue {TASK_QUEUE}, metrics http://{HOST}:{WORKER_METRICS_PORT}/metrics, "
        f"health http://{HOST}:{WORKER_HEALTH_PORT}/readyz",
        env={
            "TEMPORAL_ADDRESS": f"{HOST}:{TEMPORAL_PORT}",
            **notify_env(),
            **kube_env(),
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', os.defpath)}",
        },
        ready_timeout_s=20.0,
        required=False,
    )


def serve_component() -> Component:
    """``deployflow serve``: Alertmanager's webhook into incident workflows."""
    return Component(
        name="serve",
        argv=[
            deployflow_binary(),
            "serve",
            "--runbooks",
            str(RUNBOOKS.relative_to(REPO)),
            "--listen",
            f"{HOST}:{SERVE_PORT}",
        ],
        marker="serve",
        ready=lambda: http_status(f"http://{HOST}:{SERVE_PORT}/healthz") == 200,
        url=f"http://{HOST}:{SERVE_PORT}/alerts/alertmanager (runbooks "
        f"{RUNBOOKS.relative_to(REPO)})",
        port=SERVE_PORT,
        env={
            "TEMPORAL_ADDRESS": f"{HOST}:{TEMPORAL_PORT}",
            "DEPLOYFLOW_WEBHOOK_TOKEN": webhook_token() if WEBHOOK_TOKEN_FILE.exists() else "",
        },
    )


def worker_code(*extra: Path) -> str:
    """A fingerprint of the code a worker loads: every source file under WORKER_SOURCES
    (and the ``extra`` files it reads at start)."""
    digest = hashlib.sha256()
    paths = [p for package in WORKER_SOURCES for p in sorted((REPO / package).rglob("*.py"))]
    for path in [*paths, *extra]:
        digest.update(str(path.relative_to(REPO)).encode() + b"\0")
        with contextlib.suppress(OSError):  # a file removed while we look
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def env_fingerprint(env: dict[str, str]) -> str:
    """What a process was given besides PATH (which differs between shells), hashed: the
    notify variables carry a (local, fake) routing key and token."""
    given = sorted((k, v) for k, v in env.items() if k != "PATH")
    return hashlib.sha256(json.dumps(given).encode()).hexdigest()


def start_current(component: Component, code: str) -> None:
    """Start the worker or serve; a running one started with other code or another
    environment is stopped first. Its fingerprints are kept in ``STATE/NAME.code``: the
    code's on the first line, the environment's on the second."""
    name = component.name
    wanted = [code, env_fingerprint(component.env)]
    record = STATE / f"{name}.code"
    pid = running_pid(name, component.marker)
    recorded = record.read_text().split() if record.exists() else []
    if pid is not None and recorded == wanted:
        print(f"  {name:<12} already running (pid {pid}), on the current code")
        return
    if pid is not None:
        if recorded[:1] != wanted[:1]:
            why = "loaded older code"
        elif name == "worker" and "PAGERDUTY_EVENTS_URL" in component.env:
            why = "was started without the notify servers' environment"
        else:
            why = "was started with another environment"
        print(f"  {name:<12} pid {pid} {why}: restarting it")
        stop(name)
    start(component)
    record.write_text("\n".join(wanted) + "\n")


def restart_if_changed(component: Component, config: Path, text: str) -> None:
    """Stop a running component whose config file or command line is not what this stack
    writes now (Prometheus and Alertmanager read their config only at start)."""
    pid = running_pid(component.name, component.marker)
    if pid is None:
        return
    with contextlib.suppress(OSError):
        same_argv = cmdline(pid) in (None, " ".join(component.argv) + " ")
        if config.read_text() == text and same_argv:
            return
    print(f"  {component.name:<12} its config changed: restarting it")
    stop(component.name)


def up(names: list[str] | None = None) -> None:
    """Start the named components (all by default) in dependency order."""
    wanted = names or list(ORDER)
    table = components()
    if "nginx" in wanted and running_pid("nginx", "nginx") is None:
        # A fresh NGINX starts from all-stable; while it runs, the router owns the file.
        write_nginx_config()
        write_all_stable_upstream()
        checked = subprocess.run(nginx_command("-t"), capture_output=True, text=True, check=False)
        if checked.returncode != 0:
            raise StackError(f"nginx -t rejected the demo config:\n{checked.stderr}")
    if "haproxy" in wanted and running_pid("haproxy", "haproxy") is not None:
        with contextlib.suppress(OSError):
            if HAPROXY_MAIN.read_text() != haproxy_main_config():
                print(f"  {'haproxy':<12} its config changed: restarting it")
                stop("haproxy")
    if "haproxy" in wanted and running_pid("haproxy", "haproxy") is None:
        # Likewise: a fresh HAProxy starts all-stable from a backend file written here.
        write_haproxy_config()
        checked = subprocess.run(haproxy_command("-c"), capture_output=True, text=True, check=False)
        if checked.returncode != 0:
            raise StackError(f"haproxy -c rejected the demo config:\n{checked.stdout}")
    if "prometheus" in wanted:
        restart_if_changed(table["prometheus"], PROMETHEUS_CONFIG, prometheus_config())
        restart_if_changed(table["prometheus"], PROMETHEUS_RULES, prometheus_rules())
        write_prometheus_config()
    if "alertmanager" in wanted:
        restart_if_changed(table["alertmanager"], ALERTMANAGER_CONFIG, alertmanager_config())
        write_alertmanager_config()
    if "serve" in wanted or "alertmanager" in wanted:
        webhook_token()
    if "kubeapi" in wanted and running_pid("kubeapi", KUBE_MARKER) is None:
        # A fresh double is an empty cluster; its kubeconfig is written once it listens.
        KUBE_KUBECONFIG.unlink(missing_ok=True)
        KUBE_DIR.mkdir(parents=True, exist_ok=True)
    if "notify" in wanted and running_pid("notify", NOTIFY_MARKER) is None:
        # Written by the servers once they listen; a killed one leaves them behind.
        for stale in (NOTIFY_STATE, NOTIFY_ENV):
            stale.unlink(missing_ok=True)
        NOTIFY_DIR.mkdir(parents=True, exist_ok=True)
    for name in ORDER:
        if name not in wanted:
            continue
        # Built now, not with the table: the worker's environment comes from the notify
        # servers started just before it, serve's token from the file written above.
        if name == "worker":
            start_current(worker_component(), worker_code())
        elif name == "serve":
            start_current(serve_component(), worker_code(RUNBOOKS))
        else:
            start(table[name])


def down() -> None:
    """Stop every process with a PID file, the last started first; then the VM hosts."""
    recorded = {p.stem for p in PIDS.glob("*.pid")} if PIDS.exists() else set()
    known = ["load", *reversed(ORDER)]
    for name in [*known, *sorted(recorded - set(known))]:
        stop(name)
    for port in recorded_hosts():
        stop_host(port)


# -- the VM hosts, through the host agent (what the worker's command platform runs) --------


def host_agent(verb: str, port: int, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        str(BIN / "python"),
        str(HOST_AGENT),
        verb,
        "--port",
        str(port),
        "--state-dir",
        str(HOSTS_DIR),
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def deploy_host(port: int, version: str) -> None:
    """Run ``version`` on a VM host (a no-op when it already does)."""
    done = host_agent("deploy", port, "--version", version, "--service", SERVICE)
    if done.returncode != 0:
        raise StackError(f"host.py deploy {version} on :{port} failed:\n{done.stderr.strip()}")
    for line in done.stdout.strip().splitlines():  # "stopped ...", then "started ..."
        print(f"  host {port:<7} {line}")


def stop_host(port: int) -> None:
    done = host_agent("stop", port)
    if done.returncode != 0:
        raise StackError(f"host.py stop on :{port} failed:\n{done.stderr.strip()}")
    print(f"  host {port:<7} {done.stdout.strip()}")


def host_version(port: int) -> str | None:
    """What the host agent says runs on ``port`` (None: nothing healthy runs)."""
    done = host_agent("current", port)
    return (done.stdout.strip() or None) if done.returncode == 0 else None


def all_vm_servers() -> list[str]:
    """The VM hosts as the router lists them, stable pool first."""
    return [f"{HOST}:{port}" for port in VM_PORTS]


def recorded_hosts() -> list[int]:
    """Ports the host agent has a PID file for (whether or not it still runs)."""
    if not HOSTS_DIR.exists():
        return []
    return sorted(int(p.stem) for p in HOSTS_DIR.glob("*.pid") if p.stem.isdigit())


def status(names: list[str] | None = None) -> int:
    """Print the state of the named components (all by default); 0 when they all run.
    The VM hosts are listed with HAProxy, the scrape targets with Prometheus."""
    wanted = names or list(ORDER)
    table = components()
    all_up = True
    for name in ORDER:
        if name not in wanted:
            continue
        component = table[name]
        pid = running_pid(name, component.marker)
        all_up &= pid is not None
        state = f"running (pid {pid})" if pid else "stopped"
        where = component.url
        if pid and name in SLOT_PORTS:
            where = f"http://{HOST}:{SLOT_PORTS[name]}/ ({slot_version(pid)})"
        print(f"  {name:<12} {state:<22} {where}")
    load = running_pid("load", "load.py")
    where = " ".join((cmdline(load) or "").split()[2:]) if load else ""
    print(f"  {'load':<12} {f'running (pid {load})' if load else 'stopped':<22} {where}")
    if "haproxy" in wanted:
        for port in sorted({*VM_PORTS, *recorded_hosts()}):
            version = host_version(port)
            state = f"runs {version}" if version else "stopped"
            print(f"  {f'host {port}':<12} {state:<22} http://{HOST}:{port}/")
    if "prometheus" in wanted and running_pid("prometheus", "prometheus"):
        with contextlib.suppress(OSError, KeyError, AssertionError):
            for t in prometheus_targets():
                labels = t["labels"]
                assert isinstance(labels, dict)
                print(f"  scrape       {labels['instance']:<22} {t['health']}")
    return 0 if all_up else 1


def slot_options(pid: int) -> tuple[str, float]:
    """The version and error rate a running slot was started with, from its command line."""
    words = (cmdline(pid) or "").split()
    options = dict(zip(words, [*words[1:], ""], strict=True))
    return options.get("--version", "?"), float(options.get("--error-rate") or 0)


def slot_version(pid: int) -> str:
    """``version[, error-rate X]`` a running slot was started with."""
    version, rate = slot_options(pid)
    return version if rate == 0 else f"{version}, started with error-rate {rate:g}"


def slot_named(name: str) -> str:
    """A slot by its name or port (``stable``, ``18001``); StackError for anything else."""
    for slot, port in SLOT_PORTS.items():
        if name in (slot, str(port)):
            return slot
    have = ", ".join(f"{slot} ({port})" for slot, port in SLOT_PORTS.items())
    raise StackError(f"no service slot {name!r}; have {have}")


def restart_slot(name: str) -> None:
    """Stop a slot's process and start its version afresh: what it was started with, so
    knobs turned at runtime (error rate, leak, hang) are back to that. A stopped slot is
    started with its default version. What a runbook's ``restart`` runs for the demo."""
    slot = slot_named(name)
    pid = running_pid(slot, f"--port {SLOT_PORTS[slot]}")
    version, rate = slot_options(pid) if pid is not None else (DEFAULT_VERSIONS[slot], 0.0)
    stop(slot)
    start(service_component(slot, version, rate))


def set_slot(slot: str, version: str, error_rate: float = 0.0) -> None:
    """Run ``version`` in a service slot, restarting it only if it runs something else."""
    component = service_component(slot, version, error_rate)
    pid = running_pid(slot, component.marker)
    if pid is not None and cmdline(pid) == " ".join(component.argv) + " ":
        print(f"  {slot:<12} already runs {version} (pid {pid})")
        return
    stop(slot)
    start(component)


def reset_routing() -> None:
    """All traffic to stable: rewrite the upstream file and reload a running NGINX."""
    write_all_stable_upstream()
    master = running_pid("nginx", "nginx")
    if master is not None:
        old_workers = children(master)
        subprocess.run(nginx_command("-t"), capture_output=True, check=True)
        subprocess.run(nginx_command("-s", "reload"), capture_output=True, check=True)
        # `-s reload` only signals the master. Until the old workers have finished their
        # requests, stopping the canary slot would turn those requests into 502s.
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while old_workers & children(master) and time.monotonic() < deadline:
            time.sleep(0.05)
    print(f"  nginx        100 % to stable {HOST}:{STABLE_PORT}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    verbs = parser.add_subparsers(dest="verb", required=True)
    up_parser = verbs.add_parser("up", help="start what is not running")
    up_parser.add_argument("names", nargs="*", metavar="NAME", help=", ".join(ORDER))
    verbs.add_parser("down", help="stop every recorded PID")
    verbs.add_parser("status", help="what runs, where")
    slot_parser = verbs.add_parser("slot", help="(re)start a service slot with a version")
    slot_parser.add_argument("slot", choices=sorted(SLOT_PORTS))
    slot_parser.add_argument("--version", required=True)
    slot_parser.add_argument("--error-rate", type=float, default=0.0)
    restart_parser = verbs.add_parser("restart", help="restart a service slot, same version")
    restart_parser.add_argument("slot", metavar="SLOT", help="stable, canary, or its port")
    verbs.add_parser("reset", help="NGINX back to 100 %% stable")
    load_parser = verbs.add_parser("load", help="start the load generator in the background")
    load_parser.add_argument("--seconds", type=int, default=600)
    load_parser.add_argument("--rate", type=float, default=20.0)
    args = parser.parse_args(argv)
    if args.verb == "up" and set(args.names) - set(ORDER):
        parser.error(f"unknown component(s) {sorted(set(args.names) - set(ORDER))}; have {ORDER}")
    try:
        if args.verb == "up":
            up(args.names)
        elif args.verb == "down":
            down()
        elif args.verb == "status":
            return status()
        elif args.verb == "slot":
            set_slot(args.slot, args.version, args.error_rate)
        elif args.verb == "restart":
            restart_slot(args.slot)
        elif args.verb == "reset":
            reset_routing()
        elif args.verb == "load":
            start(load_component(args.seconds, args.rate))
    except StackError as e:
        print(f"stack: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
