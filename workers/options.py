"""``deployflow worker``'s own options: where it shows its metrics and health, how long
a shutdown waits for running activities, and whether it is a load balancer's agent. Each
flag has an environment variable (a flag wins). Light: the CLI builds its parser from this
without importing the worker."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from workers.usage import UsageError

METRICS_LISTEN_ENV = "DEPLOYFLOW_METRICS_LISTEN"
HEALTH_LISTEN_ENV = "DEPLOYFLOW_HEALTH_LISTEN"
GRACE_PERIOD_ENV = "DEPLOYFLOW_GRACE_PERIOD"
HOST_ENV = "DEPLOYFLOW_AGENT_HOST"
AGENT_QUEUE_ENV = "DEPLOYFLOW_AGENT_TASK_QUEUE"
DEFAULT_GRACE_S = 15.0
DEFAULT_GRACE = timedelta(seconds=DEFAULT_GRACE_S)
MAX_GRACE_S = 86400.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metrics-listen",
        metavar="HOST:PORT",
        help="serve Prometheus metrics (the SDK's and deployflow's) at http://HOST:PORT/metrics "
        f"(default: {METRICS_LISTEN_ENV}, else off), e.g. 127.0.0.1:9464",
    )
    parser.add_argument(
        "--health-listen",
        metavar="HOST:PORT",
        help=f"serve /healthz and /readyz at HOST:PORT (default: {HEALTH_LISTEN_ENV}, else "
        "off), e.g. 127.0.0.1:9465",
    )
    parser.add_argument(
        "--grace-period",
        metavar="SECONDS",
        help="on SIGTERM/SIGINT, stop polling and let running activities finish for this "
        "long before cancelling them; a second signal exits at once "
        f"(default: {GRACE_PERIOD_ENV}, else {DEFAULT_GRACE_S:g})",
    )
    parser.add_argument(
        "--host",
        metavar="NAME",
        help="run as the agent of load balancer NAME (a router's instances[].name): poll "
        "deployflow-router-NAME for traffic activities only, and apply them on this host "
        f"(default: {HOST_ENV}, else a central worker)",
    )
    parser.add_argument(
        "--task-queue",
        metavar="QUEUE",
        help="with --host: the instance's taskQueue, when the spec names one "
        f"(default: {AGENT_QUEUE_ENV}, else deployflow-router-NAME)",
    )


@dataclass(frozen=True)
class WorkerOptions:
    metrics_listen: tuple[str, int] | None = None
    health_listen: tuple[str, int] | None = None
    grace_period: timedelta = DEFAULT_GRACE
    host: str | None = None
    """The load balancer this process is the agent of; None for a central worker."""
    agent_queue: str | None = None
    """The agent's task queue (``deployflow-router-HOST`` unless the spec names another)."""

    @classmethod
    def from_args(
        cls, args: argparse.Namespace, env: Mapping[str, str] | None = None
    ) -> WorkerOptions:
        """The options from ``args``, else the environment; a malformed one is a
        UsageError naming the flag or the variable it came from."""
        from activities.routing.spec import InstanceName, TaskQueueName
        from workers.listen import parse_listen  # aiohttp: only when the worker starts

        env = os.environ if env is None else env
        metrics = _given(args.metrics_listen, env, METRICS_LISTEN_ENV, "--metrics-listen")
        health = _given(args.health_listen, env, HEALTH_LISTEN_ENV, "--health-listen")
        grace = _given(args.grace_period, env, GRACE_PERIOD_ENV, "--grace-period")
        host = _given(getattr(args, "host", None), env, HOST_ENV, "--host")
        queue = _given(getattr(args, "task_queue", None), env, AGENT_QUEUE_ENV, "--task-queue")
        if queue is not None and host is None:
            raise UsageError(f"{queue[1]} is the agent's task queue: it needs --host NAME")
        return cls(
            metrics_listen=None if metrics is None else parse_listen(*metrics),
            health_listen=None if health is None else parse_listen(*health),
            grace_period=DEFAULT_GRACE if grace is None else parse_grace(*grace),
            host=None if host is None else _checked(InstanceName, *host),
            agent_queue=None if queue is None else _checked(TaskQueueName, *queue),
        )


def _given(
    flag_value: str | None, env: Mapping[str, str], variable: str, flag: str
) -> tuple[str, str] | None:
    """The value and where it came from (the flag, else the variable), or None if unset."""
    if flag_value is not None:
        return flag_value, flag
    value = env.get(variable, "").strip()
    return (value, variable) if value else None


def _checked(kind: Any, text: str, source: str) -> str:
    """``text`` validated as the spec validates an instance's name or task queue."""
    from pydantic import TypeAdapter, ValidationError

    try:
        value: str = TypeAdapter(kind).validate_python(text)
    except ValidationError as exc:
        why = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise UsageError(f"{source}: {why}") from None
    return value


def parse_grace(text: str, source: str) -> timedelta:
    """Seconds, 0 (cancel running activities at once) to a day."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 <= seconds <= MAX_GRACE_S:  # NaN fails too
        raise UsageError(f"{source}: expected seconds (0 to {MAX_GRACE_S:g}), got {text!r}")
    return timedelta(seconds=seconds)


def bind_address(address: tuple[str, int]) -> str:
    """``host:port`` as the SDK's Prometheus server binds it (IPv6 in brackets)."""
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
