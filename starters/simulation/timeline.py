"""A rehearsal's decision timeline: the workflow's own events (weights, pauses, analysis,
promote or rollback) and every measurement the stand-ins answered, at simulated time since
the rollout started. Measurements of a metric that repeat (same phase, same value) are one
line with a count."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TextIO

from starters.simulation.stand_ins import Call
from workflows.core.durations import format_duration
from workflows.rollouts.models import RolloutResult


@dataclass
class Rehearsal:
    result: RolloutResult
    calls: list[Call]
    wall_seconds: float = 0.0


@dataclass
class Line:
    at: timedelta
    kind: str
    message: str
    repeats: int = 1
    until: timedelta | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def timeline(rehearsal: Rehearsal) -> list[Line]:
    """Events and (collapsed) measurements, in time order."""
    events = rehearsal.result.events
    start = events[0].at if events else None
    lines = [Line(e.at - start if start else timedelta(0), e.kind, e.message) for e in events]
    last: dict[str, Line] = {}
    for call in rehearsal.calls:
        if call.activity != "measure":
            continue
        shown = _measurement(call)
        previous = last.get(call.detail)
        if previous is not None and previous.message == shown:
            previous.repeats += 1
            previous.until = call.at
            continue
        line = Line(call.at, "measure", shown)
        last[call.detail] = line
        lines.append(line)
    return sorted(lines, key=lambda line: line.at)  # stable: events before measurements


def simulated(rehearsal: Rehearsal) -> timedelta:
    events = rehearsal.result.events
    return events[-1].at - events[0].at if events else timedelta(0)


def print_timeline(rehearsal: Rehearsal, spec: str, scenario: str, out: TextIO) -> None:
    result = rehearsal.result
    print(f"rehearsal of {spec} with {scenario}: {result.service} {result.version}", file=out)
    for line in timeline(rehearsal):
        repeat = ""
        if line.repeats > 1:
            repeat = f"  (x{line.repeats}, until +{_seconds(line.until or line.at)})"
        at = "+" + _seconds(line.at)
        print(f"{at:>10}  {line.kind:<9} {line.message}{repeat}", file=out)
    took = _seconds(simulated(rehearsal))
    print(
        f"{result.outcome.value} after {took} of rollout time, rehearsed in "
        f"{rehearsal.wall_seconds:.1f}s: {result.reason}",
        file=out,
    )


def rehearsal_json(rehearsal: Rehearsal) -> dict[str, Any]:
    result = rehearsal.result
    return {
        "outcome": result.outcome.value,
        "reason": result.reason,
        "simulatedSeconds": simulated(rehearsal).total_seconds(),
        "wallSeconds": round(rehearsal.wall_seconds, 3),
        "timeline": [
            {
                "at": line.at.total_seconds(),
                "offset": "+" + _seconds(line.at),
                "kind": line.kind,
                "message": line.message,
                **({"repeats": line.repeats} if line.repeats > 1 else {}),
                **({"until": line.until.total_seconds()} if line.until else {}),
            }
            for line in timeline(rehearsal)
        ],
        "calls": [
            {"at": c.at.total_seconds(), "activity": c.activity, "detail": c.detail}
            for c in rehearsal.calls
        ],
        "result": result.model_dump(mode="json"),
    }


def _seconds(at: timedelta) -> str:
    """``1h2m3s``: whole seconds (what a reader of a two-hour timeline needs)."""
    return format_duration(timedelta(seconds=round(at.total_seconds())))


def _measurement(call: Call) -> str:
    measurement = call.measurement
    if measurement is None:
        return f"{call.detail} (not in the spec's analysis)"
    if measurement.result is not None:
        value = str(measurement.result)
    else:
        value = ", ".join(f"{v:.6g}" for v in measurement.value) or "-"
    phase = measurement.phase.value
    why = f": {measurement.message}" if measurement.message and phase != "Successful" else ""
    return f"{call.detail} = {value} {phase}{why}"
