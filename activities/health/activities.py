"""Temporal activities that vouch for a new version before traffic moves to it.

Sync ``def``: the worker runs them on its thread pool. An unhealthy target or a failing
smoke test is a *result* (``healthy=False``, ``passed=False``) for the workflow to act on,
never an exception; only a malformed target raises (``InvalidSpec``, non-retryable).

``check_health`` heartbeats after every probe and at least every second while it waits,
so a ``heartbeat_timeout`` of ``3 * timeoutSeconds + 2 s`` is enough (an HTTP probe gives
the connect and each read the full timeout), and a cancellation, which Temporal delivers
on a heartbeat, interrupts a wait at once. Without ``maxProbes`` a flapping target keeps it
probing until the ``start_to_close_timeout``.
"""

from __future__ import annotations

import time
from collections import deque

import structlog
from pydantic import ConfigDict, Field, field_validator
from temporalio import activity
from temporalio.exceptions import CancelledError

from activities.errors import INVALID_SPEC, failure
from activities.health.probes import address_for, probe
from activities.health.smoke import SmokeResult, parse_base_url, run_smoke_test, shown_path
from activities.health.spec import HealthCheck, SmokeTest
from activities.health.thresholds import Decision, ProbeTally
from activities.heartbeat import keep_alive
from activities.log_fields import ms_since
from activities.model import Model

log = structlog.get_logger()

RECENT_OUTCOMES = 10
HEARTBEAT_EVERY = 1.0  # seconds, while waiting between probes


class CheckHealthInput(Model):
    """``target`` is ``host:port``; ``key`` is the workflow's business key, for logs.
    ``maxProbes`` bounds the probing: undecided after that many is unhealthy."""

    check: HealthCheck
    target: str
    key: str
    max_probes: int | None = Field(default=None, ge=1)


class HealthProgress(Model):
    """The heartbeat details: how far the check has got (shown in the Temporal UI)."""

    target: str
    probes: int
    consecutive_successes: int
    consecutive_failures: int
    last_message: str | None


class HealthReport(Model):
    """``message`` says what decided; ``outcomes`` are the last few probes' messages."""

    target: str
    healthy: bool
    probes: int
    message: str | None = None
    outcomes: list[str] = Field(default_factory=list)


class SmokeTestInput(Model):
    """``baseUrl`` is the new version's own address, e.g. ``http://10.0.0.5:8002``."""

    # Test headers may be tokens: validation errors must not echo the input.
    model_config = ConfigDict(hide_input_in_errors=True)

    tests: list[SmokeTest]
    base_url: str
    key: str

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parse_base_url(value)
        return value.strip()


class SmokeReport(Model):
    """``passed`` when every test passed (also when there are none)."""

    passed: bool
    results: list[SmokeResult]


def _heartbeat(progress: HealthProgress | str) -> None:
    if activity.in_activity():
        activity.heartbeat(progress)


def _wait(seconds: float, progress: HealthProgress) -> None:
    """Sleep ``seconds``, heartbeating; in an activity a cancellation ends it at once."""
    if not activity.in_activity():
        time.sleep(max(seconds, 0))
        return
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        activity.wait_for_cancelled_sync(min(remaining, HEARTBEAT_EVERY))
        if activity.is_cancelled():
            # The worker also raises this in the thread; raising it here covers
            # activities run without that thread-raising (e.g. a custom executor).
            raise CancelledError("health check cancelled")
        activity.heartbeat(progress)


def _progress(target: str, tally: ProbeTally) -> HealthProgress:
    return HealthProgress(
        target=target,
        probes=tally.probes,
        consecutive_successes=tally.consecutive_successes,
        consecutive_failures=tally.consecutive_failures,
        last_message=tally.last_message,
    )


@activity.defn(name="check_health")
def check_health(input: CheckHealthInput) -> HealthReport:
    """Wait ``initialDelaySeconds``, then probe every ``periodSeconds`` until the thresholds
    decide (or ``maxProbes`` is reached); report healthy or not."""
    started = time.monotonic()
    check = input.check
    try:
        host, port = address_for(check, input.target)
    except ValueError as e:
        raise failure(INVALID_SPEC, str(e)) from e
    fields = {"key": input.key, "target": input.target, "probe": check.kind}
    tally = ProbeTally.for_check(check)
    recent: deque[str] = deque(maxlen=RECENT_OUTCOMES)
    _wait(check.initial_delay_seconds, _progress(input.target, tally))
    while True:
        probe_started = time.monotonic()
        outcome = probe(check, host, port)
        tally = tally.observe(outcome)
        recent.append(outcome.message)
        log.info(
            "health_probe",
            outcome="success" if outcome.success else "failure",
            message=outcome.message,
            probes=tally.probes,
            duration_ms=ms_since(probe_started),
            **fields,
        )
        progress = _progress(input.target, tally)
        _heartbeat(progress)
        if tally.decision is not Decision.PROBING or tally.probes == input.max_probes:
            break
        # Like the kubelet: periodSeconds is from the start of one probe to the next.
        _wait(check.period_seconds - (time.monotonic() - probe_started), progress)
    healthy = tally.decision is Decision.HEALTHY
    log.info(
        "check_health",
        outcome="healthy" if healthy else "unhealthy",
        probes=tally.probes,
        message=tally.summary(),
        duration_ms=ms_since(started),
        **fields,
    )
    return HealthReport(
        target=input.target,
        healthy=healthy,
        probes=tally.probes,
        message=tally.summary(),
        outcomes=list(recent),
    )


@activity.defn(name="run_smoke_tests")
def run_smoke_tests(input: SmokeTestInput) -> SmokeReport:
    """Run every smoke test once, in order, and report each; passed when all passed."""
    started = time.monotonic()
    base = parse_base_url(input.base_url)
    results: list[SmokeResult] = []
    for test in input.tests:
        test_started = time.monotonic()
        with keep_alive(f"{len(results)}/{len(input.tests)} smoke tests run, now {test.name}"):
            result = run_smoke_test(test, base)
        results.append(result)
        # Header names and values are never logged: values may be tokens.
        log.info(
            "smoke_test",
            key=input.key,
            name=test.name,
            method=test.method,
            path=shown_path(test.path),
            outcome="passed" if result.passed else "failed",
            status=result.status,
            message=result.message,
            duration_ms=ms_since(test_started),
        )
        _heartbeat(f"{len(results)}/{len(input.tests)} smoke tests run")
    passed = all(r.passed for r in results)
    log.info(
        "run_smoke_tests",
        key=input.key,
        base_url=input.base_url,
        outcome="passed" if passed else "failed",
        failed=[r.name for r in results if not r.passed],
        duration_ms=ms_since(started),
    )
    return SmokeReport(passed=passed, results=results)
