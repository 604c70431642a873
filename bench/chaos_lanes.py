"""Lanes of bench/chaos.py: one strategy on one load balancer, its hosts and its worker.

A lane runs its rollouts one after another and remembers what they left: which server list
holds the traffic (canary, blue-green) and which version runs there (or on every host, for
rolling and recreate). Each rollout is a real spec (the same vocabulary as
examples/rollouts/) with short steps: pauses of about a second, analysis every second on a
1 s scrape, the host agent as the command platform.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos_history import share
from chaos_parts import Worker
from chaos_traffic import HAProxyLane, Hosts, NginxLane, Router

from activities.routing.base import ServerState, Weights
from workflows.rollouts.spec import Rollout, parse_rollout

LANES = ("canary-nginx", "canary-haproxy", "blue-green", "rolling", "recreate")
STRATEGY = {
    "canary-nginx": "canary",
    "canary-haproxy": "canary",
    "blue-green": "blueGreen",
    "rolling": "rolling",
    "recreate": "recreate",
}
# Pause timers get lengths no other timer of the spec has, so the history tells them apart.
PAUSE_S = {"canary": 1.2, "rolling": 1.2, "blueGreen": 2.0}
ERROR_RATIO = (
    'sum(rate(http_requests_total{service="{{service}}",version="{{version}}",code=~"5.."}[3s]))'
    ' / sum(rate(http_requests_total{service="{{service}}",version="{{version}}"}[3s]))'
)


def template(name: str, prometheus: str, count: int | None, delay: str | None) -> dict[str, Any]:
    """The canary's 5xx ratio every second; Error after 3 measurements in a row fail."""
    metric: dict[str, Any] = {
        "name": "error-rate",
        "interval": "1s",
        "failureLimit": 0,
        "consecutiveErrorLimit": 2,
        "successCondition": "result < 0.05",
        "provider": {"prometheus": {"address": prometheus, "query": ERROR_RATIO, "timeout": 2}},
    }
    if count is not None:
        metric["count"] = count
    if delay is not None:
        metric["initialDelay"] = delay
    return {"name": name, "metrics": [metric]}


def uses(name: str) -> dict[str, Any]:
    return {"templates": [{"templateName": name}]}


def strategy_and_templates(strategy: str, prometheus: str) -> tuple[dict[str, Any], list[Any]]:
    pause = {"duration": f"{int(PAUSE_S.get(strategy, 0) * 1000)}ms"}
    if strategy == "canary":
        steps = [
            {"setWeight": 20}, {"pause": pause}, {"analysis": uses("step")},
            {"setWeight": 50}, {"pause": pause}, {"setWeight": 80}, {"pause": pause},
        ]  # fmt: skip
        return {"canary": {"steps": steps, "analysis": uses("background") | {"startingStep": 1}}}, [
            template("step", prometheus, 2, None),
            template("background", prometheus, None, "1s"),
        ]
    if strategy == "blueGreen":
        return {
            "blueGreen": {
                "autoPromotionSeconds": int(PAUSE_S["blueGreen"]),
                "prePromotionAnalysis": uses("pre"),
                "postPromotionAnalysis": uses("post"),
                "scaleDownDelaySeconds": 1,
                "abortScaleDownDelaySeconds": 1,
            }
        }, [template("pre", prometheus, 3, "1500ms"), template("post", prometheus, 3, None)]
    if strategy == "rolling":
        return {
            "rolling": {
                "maxUnavailable": 1,
                "maxSurge": 0,
                "pauseBetweenBatches": pause["duration"],
                "drainSeconds": 1,
            }
        }, []
    return {"recreate": {}}, []


@dataclass
class Lane:
    name: str
    router: Router
    hosts: Hosts
    ports: dict[str, list[int]]  # "stable" / "canary" -> host ports
    worker: Worker
    task_queue: str
    prometheus: str
    live: str = "stable"  # the list holding the traffic (canary, blue-green)
    version: str = "v1"  # what runs there (rolling, recreate: on every host)
    made: int = 1  # versions made so far
    guard: asyncio.Lock = field(default_factory=asyncio.Lock)  # one worker change at a time

    @property
    def strategy(self) -> str:
        return STRATEGY[self.name]

    @property
    def shifts_traffic(self) -> bool:
        return self.strategy in ("canary", "blueGreen")

    @property
    def new_side(self) -> str:
        return "canary" if self.live == "stable" else "stable"

    @property
    def service(self) -> str:
        return self.name

    def all_ports(self) -> list[int]:
        return [*self.ports["stable"], *self.ports["canary"]]

    def next_version(self) -> str:
        self.made += 1
        return f"v{self.made}"

    def rollout(self, version: str, environment: str, broken: list[str]) -> Rollout:
        strategy, templates = strategy_and_templates(self.strategy, self.prometheus)
        checked_path = "/healthz" if self.shifts_traffic else "/"  # rolling, recreate: the page
        spec: dict[str, Any] = {
            "service": self.service,
            "environment": environment,
            "version": version,
            "router": self.router.spec(),
            "platform": self.hosts.platform(broken),
            "healthCheck": {
                "http": {"path": checked_path},
                "periodSeconds": 0.5,
                "failureThreshold": 2,
                "successThreshold": 1,
            },
            "strategy": strategy,
            "analysisTemplates": templates,
        }
        if self.shifts_traffic:
            spec["smokeTests"] = [{"name": "home page", "path": "/", "expectedStatus": 200}]
        body = {
            "apiVersion": "deployflow/v1",
            "kind": "Rollout",
            "metadata": {"name": self.service},
            "spec": spec,
        }
        return parse_rollout([body], source="bench/chaos.py")

    def at_rest(self) -> Weights:
        """The router's weights between rollouts."""
        if not self.shifts_traffic:
            return Weights(stable=50, canary=50)  # one fleet over both lists
        return Weights(stable=100, canary=0) if self.live == "stable" else Weights.canary_at(100)

    def setup(self) -> None:
        for port in self.all_ports():
            self.hosts.deploy(port, self.service, self.version)

    # -- what the bench samples and checks ----------------------------------------------

    def sample(self, version: str, new_side: str) -> tuple[int | None, ...]:
        """Traffic lanes: the new version's share at the router. Host lanes: per host, 1 if it
        answers the new version, 0 if another one, None if nothing answers."""
        if self.shifts_traffic:
            weights = self.router.weights()
            return (None if weights is None else share(weights, new_side),)
        answers = [Hosts.version(port) for port in self.all_ports()]
        return tuple(None if v is None else int(v == version) for v in answers)

    def end_state(self, outcome: str, version: str, old: str, new_side: str) -> list[str]:
        """How the router and hosts differ from what ``outcome`` means (empty: they match)."""
        promoted = outcome == "Promoted"
        wanted = version if promoted else old
        problems = []
        if self.shifts_traffic:
            side = new_side if promoted else ("stable" if new_side == "canary" else "canary")
            weights = self.router.weights()
            if weights is None:
                problems.append("router unreadable after the run")
            elif share(weights, side) != 100:
                split = " (split)" if weights.stable not in (0, 100) else ""
                problems.append(
                    f"router at stable {weights.stable} / canary {weights.canary}{split} "
                    f"after {outcome}"
                )
        else:
            for port in self.all_ports():
                running = Hosts.version(port)
                if running != wanted:
                    problems.append(f":{port} answers {running or 'nothing'}, not {wanted}")
            states = self.router.states() or {}
            out = sorted(a for a, s in states.items() if s != ServerState.READY)
            if out:
                problems.append("out of rotation: " + ", ".join(out))
        answers = self.serves(wanted)
        if answers:
            seen = ", ".join(f"{v} x{n}" for v, n in sorted(answers.items()))
            split = " (split)" if {version, old} <= set(answers) else ""
            problems.append(f"through the router: {seen}, wanted {wanted} only{split}")
        return problems

    def serves(self, wanted: str, run: int = 10, within: float = 3.0) -> Counter[str]:
        """Requests through the load balancer until ``run`` in a row answer ``wanted`` (an
        NGINX reload's old worker may take a request or two); what answered, if that did
        not happen within ``within`` s, else nothing."""
        answers: Counter[str] = Counter()
        deadline, streak = time.monotonic() + within, 0
        while streak < run:
            if time.monotonic() > deadline:
                return answers
            answer = self.answer()
            answers[answer] += 1
            streak = streak + 1 if answer == wanted else 0
            time.sleep(0.02)
        return Counter()

    def answer(self) -> str:
        """Which version answers one request through the load balancer."""
        status, body = self.router.get()
        words = body.split()
        return words[1] if status == 200 and len(words) == 2 else f"HTTP {status}"

    def advance(self, outcome: str, version: str, new_side: str) -> None:
        if outcome == "Promoted":
            self.version = version
            if self.shifts_traffic:
                self.live = new_side

    def reset(self) -> None:
        """After a wrong end state: the version this lane held back on its hosts, the router
        at rest, every server in rotation (the router's own code writes it)."""
        ports = self.ports[self.live] if self.shifts_traffic else self.all_ports()
        for port in ports:
            self.hosts.deploy(port, self.service, self.version)
        for attempt in range(3):
            try:
                self.router.reset(self.at_rest())
                return
            except Exception:  # a socket moved away by a fault that is being undone
                if attempt == 2:
                    raise
                time.sleep(2)


def build(
    name: str,
    workdir: Path,
    hosts: Hosts,
    ports: list[int],
    address: str,
    prometheus: str,
    stamp: str,
) -> Lane:
    """A lane on ``ports`` (stable list first, the last port is the canary list)."""
    split = {"stable": ports[:-1], "canary": ports[-1:]}
    servers = {side: [f"127.0.0.1:{p}" for p in split[side]] for side in split}
    shifts = STRATEGY[name] in ("canary", "blueGreen")
    weights = Weights(stable=100, canary=0) if shifts else Weights(stable=50, canary=50)
    kind = NginxLane if name in ("canary-nginx", "rolling") else HAProxyLane
    router = kind(workdir / name, name, servers["stable"], servers["canary"], weights)
    queue = f"chaos-{stamp}-{name}"
    worker = Worker(address, queue, workdir / f"worker-{name}.log")
    return Lane(name, router, hosts, split, worker, queue, prometheus)


def host_count(name: str) -> int:
    return 3 if name == "rolling" else 2
