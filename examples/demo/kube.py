"""The cluster side of ``make demo PLATFORM=kubernetes``: which cluster, its objects, and
the traffic that stands in for an ingress controller.

The cluster is the one in ``KUBECONFIG`` when it answers within a few seconds; otherwise
deployflow's Kubernetes API server double (``python -m activities.kubernetes.testing``,
the stack's ``kubeapi``, its controller advancing on every request), where no pod ever
runs. Either way the rollout is deployflow's: the Kubernetes platform (the team's
Deployment ``checkout`` stays stable, deployflow's ``checkout-canary`` runs the new
version) and the ingress-nginx router (a canary Ingress with ``canary-weight``).

What the analysis judges must be real, and pods on the double are not: the demo service
processes of the VM canary demo (the stack's ``stable`` and ``canary`` slots) stand in for
each version's pods, Prometheus scrapes them (their metrics carry ``version``), and
``Traffic`` plays ingress-nginx: it reads the canary Ingress's weight and the Deployments'
versions back through the ``kubernetes`` client and sends that share of its requests to
the process running the canary's version, the rest to the stable one's.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import load
import stack
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from processes import HOST, StackError

NAMESPACE = "demo"
STABLE = "checkout"  # the team's Deployment, Service and Ingress
CANARY = "checkout-canary"  # deployflow's canary Deployment and Ingress, the canary Service
WEIGHT = "nginx.ingress.kubernetes.io/canary-weight"
VERSION = "deployflow.io/version"  # on the pod templates deployflow writes (and the seed's)
REPLICAS = 2
DOUBLE_IMAGE = "registry.example.com/demo/checkout:{version}"  # no pod pulls it
# On a real cluster pods do run: an image that starts without arguments and is Ready with
# no probe. Each version is then the same image; the template's version annotation differs.
REAL_IMAGE = os.environ.get("DEPLOYFLOW_DEMO_IMAGE", "registry.k8s.io/pause:3.10")
TIMEOUT = (3.05, 10.0)  # (connect, read) seconds for every call the demo makes
READY_TIMEOUT_S = 60.0
RATE = 20.0  # requests per second, as the VM canary demo's load
REFRESH_S = 0.5  # how often Traffic reads the cluster back


@dataclass(frozen=True)
class Cluster:
    api: client.ApiClient
    kubeconfig: str  # for kubectl and the worker
    double: bool

    @property
    def image(self) -> str:
        return DOUBLE_IMAGE if self.double else REAL_IMAGE


def real_cluster() -> tuple[Cluster | None, str]:
    """The cluster in ``KUBECONFIG`` (its current context) if one is set and answers; else
    None and why not."""
    path = os.environ.get("KUBECONFIG")
    if not path:
        return None, "no KUBECONFIG"
    try:
        api = config.new_client_from_config(config_file=path)
        client.VersionApi(api).get_code(_request_timeout=TIMEOUT)
    except Exception as e:  # any reason it is not usable: say it and use the double
        return None, f"KUBECONFIG={path} does not answer ({type(e).__name__}: {e})"
    return Cluster(api, path, double=False), ""


def double_cluster() -> Cluster:
    """The double the stack started (``kubeapi``), through the kubeconfig it wrote."""
    path = str(stack.KUBE_KUBECONFIG)
    return Cluster(config.new_client_from_config(config_file=path), path, double=True)


def banner(cluster: Cluster | None, why_not: str) -> str:
    """The demo's first lines: where it runs and what is real there."""
    if cluster is not None:
        host = cluster.api.configuration.host
        return (
            f"KUBECONFIG: running against the cluster at {host} (current context), namespace "
            f"{NAMESPACE}; its pods run image {REAL_IMAGE} (DEPLOYFLOW_DEMO_IMAGE), but the "
            "analysis judges the local demo service processes (:18001, :18002) standing in "
            "for each version, and the demo's traffic (not an ingress controller) follows "
            "the canary Ingress weight deployflow writes"
        )
    return (
        f"{why_not}: running against deployflow's Kubernetes API server double on "
        f"{HOST}:{stack.KUBE_API_PORT} — no pods really run; the Deployments, ReplicaSets and\n"
        "Ingresses are real API objects its controller simulation advances, and the local demo\n"
        "service processes (:18001, :18002) stand in for each version's pods: Prometheus\n"
        "scrapes them by version label, the analysis judges them, and the demo's traffic\n"
        "follows the canary Ingress weight deployflow writes (no ingress controller runs)"
    )


def deployment(image: str, version: str) -> dict[str, Any]:
    """The team's Deployment as it is before any rollout: ``version`` everywhere."""
    labels = {"app": STABLE}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": STABLE, "namespace": NAMESPACE, "labels": labels},
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels, "annotations": {VERSION: version}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": image.format(version=version),
                            "ports": [{"containerPort": 8080}],
                        }
                    ]
                },
            },
        },
    }


def service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]},
    }


def ingress() -> dict[str, Any]:
    """The team's Ingress; the router copies its rules into the canary Ingress."""
    backend = {"service": {"name": STABLE, "port": {"number": 80}}}
    path = {"path": "/", "pathType": "Prefix", "backend": backend}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": STABLE, "namespace": NAMESPACE},
        "spec": {
            "ingressClassName": "nginx",
            "rules": [{"host": "checkout.demo.example", "http": {"paths": [path]}}],
        },
    }


def apply(
    create: Callable[..., Any],
    read: Callable[..., Any],
    replace: Callable[..., Any],
    body: dict[str, Any],
) -> str:
    """Create ``body``, or replace what has its name (with the resourceVersion just read)."""
    namespaced = body["kind"] != "Namespace"
    where = (NAMESPACE,) if namespaced else ()
    name = body["metadata"]["name"]
    try:
        create(*where, body, _request_timeout=TIMEOUT)
        return "created"
    except ApiException as e:
        if e.status != 409:
            raise
    if not namespaced:
        return "exists"
    current = read(name, NAMESPACE, _request_timeout=TIMEOUT)
    body = {
        **body,
        "metadata": {**body["metadata"], "resourceVersion": current.metadata.resource_version},
    }
    replace(name, NAMESPACE, body, _request_timeout=TIMEOUT)
    return "replaced"


def seed(cluster: Cluster, version: str) -> None:
    """The team's objects at ``version``: namespace, Deployment, both Services, Ingress;
    then wait (bounded) until the Deployment's replicas are available."""
    core, apps = client.CoreV1Api(cluster.api), client.AppsV1Api(cluster.api)
    net = client.NetworkingV1Api(cluster.api)
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    done = [
        (
            "namespace",
            NAMESPACE,
            apply(core.create_namespace, core.read_namespace, core.replace_namespace, namespace),
        ),
        (
            "deployment",
            STABLE,
            apply(
                apps.create_namespaced_deployment,
                apps.read_namespaced_deployment,
                apps.replace_namespaced_deployment,
                deployment(cluster.image, version),
            ),
        ),
        *(
            (
                "service",
                name,
                apply(
                    core.create_namespaced_service,
                    core.read_namespaced_service,
                    core.replace_namespaced_service,
                    service(name),
                ),
            )
            for name in (STABLE, CANARY)
        ),
        (
            "ingress",
            STABLE,
            apply(
                net.create_namespaced_ingress,
                net.read_namespaced_ingress,
                net.replace_namespaced_ingress,
                ingress(),
            ),
        ),
    ]
    for kind, name, what in done:
        print(f"  {kind}/{name} {what}")
    deadline = time.monotonic() + READY_TIMEOUT_S
    while (state := read_state(cluster)).stable.available < REPLICAS:
        if time.monotonic() > deadline:
            raise StackError(f"deployment/{STABLE} not available in {READY_TIMEOUT_S:.0f}s")
        time.sleep(REFRESH_S)
    print(f"  {state}")


@dataclass(frozen=True)
class Workload:
    name: str
    version: str | None  # None: no such Deployment
    image: str = ""
    replicas: int = 0
    available: int = 0

    def __str__(self) -> str:
        if self.version is None:
            return f"{self.name}: none"
        where = f"{self.version} ({self.image})"
        return f"{self.name} {where} {self.available}/{self.replicas} available"


@dataclass(frozen=True)
class State:
    stable: Workload
    canary: Workload
    weight: int | None  # None: no canary Ingress yet

    def __str__(self) -> str:
        weight = "none yet" if self.weight is None else f"canary-weight {self.weight}"
        return f"deploy/{self.stable}; deploy/{self.canary}; ingress/{CANARY}: {weight}"


def as_json(api: client.ApiClient, model: object) -> dict[str, Any]:
    """A typed model as the API server's JSON (camelCase keys, unset fields left out)."""
    body: dict[str, Any] = api.sanitize_for_serialization(model)
    return body


def workload(cluster: Cluster, name: str) -> Workload:
    apps = client.AppsV1Api(cluster.api)
    try:
        found = apps.read_namespaced_deployment(name, NAMESPACE, _request_timeout=TIMEOUT)
    except ApiException as e:
        if e.status == 404:
            return Workload(name, None)
        raise
    body = as_json(cluster.api, found)
    template = body["spec"]["template"]
    image: str = template["spec"]["containers"][0]["image"]
    annotations = template.get("metadata", {}).get("annotations", {})
    return Workload(
        name,
        annotations.get(VERSION) or image.rpartition(":")[2],
        image.rpartition("/")[2],
        body["spec"].get("replicas", 0),
        body.get("status", {}).get("availableReplicas", 0),
    )


def read_state(cluster: Cluster) -> State:
    """Both Deployments and the canary Ingress's weight, read through the client."""
    net = client.NetworkingV1Api(cluster.api)
    try:
        canary = as_json(
            cluster.api, net.read_namespaced_ingress(CANARY, NAMESPACE, _request_timeout=TIMEOUT)
        )
        weight: int | None = int(canary["metadata"].get("annotations", {}).get(WEIGHT, "0"))
    except ApiException as e:
        if e.status != 404:
            raise
        weight = None
    return State(workload(cluster, STABLE), workload(cluster, CANARY), weight)


class Traffic:
    """RATE requests/s as ingress-nginx would send them for the objects deployflow wrote:
    ``canary-weight`` % (spread evenly) to the process running the canary Deployment's
    version, the rest to the stable Deployment's. Prints the cluster's state whenever it
    changes and, every ``report_every`` seconds, what the requests got."""

    def __init__(self, cluster: Cluster, ports: dict[str, int], report_every: float) -> None:
        self.cluster = cluster
        self.ports = ports  # version -> the stand-in process's port; the demo updates it
        self.report_every = report_every
        self.state = read_state(cluster)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = time.monotonic()

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10.0)

    def _refresh(self) -> None:
        try:
            state = read_state(self.cluster)
        except (ApiException, OSError) as e:  # shown, then tried again at the next refresh
            print(f"  [k8s] could not read the cluster: {e}")
            return
        if state != self.state:
            print(f"  [k8s {time.monotonic() - self._started:5.1f}s] {state}")
            self.state = state

    def _target(self, credit: float) -> tuple[str | None, float]:
        """Where the next request goes, and the canary's credit after it (a running sum of
        the weight: every time it passes 100 a request goes to the canary)."""
        state = self.state
        weight = state.weight or 0
        credit += weight
        if credit >= 100 and state.canary.version is not None:
            return state.canary.version, credit - 100
        return state.stable.version, credit

    def _run(self) -> None:
        tally = load.Tally()
        slots = threading.BoundedSemaphore(load.MAX_IN_FLIGHT)
        credit, tick = 0.0, time.monotonic()
        next_refresh, next_report = tick, tick + self.report_every
        with ThreadPoolExecutor(max_workers=8) as pool:
            while not self._stop.is_set():
                if tick >= next_refresh:
                    self._refresh()
                    next_refresh += REFRESH_S
                version, credit = self._target(credit)
                port = self.ports.get(version or "")
                if port is None:
                    tally.add("no-stand-in", "")
                elif slots.acquire(blocking=False):
                    pool.submit(load.hit, f"http://{HOST}:{port}/", tally, slots)
                else:
                    tally.add("skipped", "")
                tick += 1.0 / RATE
                if tick >= next_report:
                    print(f"  [traffic] {tally.take()}")
                    next_report += self.report_every
                self._stop.wait(max(0.0, tick - time.monotonic()))
        print(f"  [traffic] {tally.take()}")
