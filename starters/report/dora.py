"""DORA's four keys (and two more) from what deployflow ran: plain functions over records.

- **Deployment frequency**: promoted rollouts per day over the period.
- **Lead time for changes**: commit (``--commit-time``) → promoted, median.
- **Change failure rate**: rollouts that did not promote (rolled back, aborted, failed,
  timed out), plus promoted ones an incident or an emergency rollback of the same service
  and environment followed within ``failure_window`` (before the next promotion), over
  all of them. Cancelled and terminated runs (superseded, stopped by hand) are not counted.
- **Time to restore**: a failed rollout's first traffic shift → rolled back; a bad
  promotion → its emergency rollback finished; an incident opened → resolved. Median.
- **Time to detect**: first traffic shift → the decision to stop (failed rollouts), or go
  live → the emergency rollback started. Median.
- Success rate and durations by strategy.

Performance bands follow the 2023 Accelerate State of DevOps report's clusters: elite
deploys at least daily, with lead time under a day, change failure rate ≤ 5 % and restore
under an hour; high at least weekly, under a week, ≤ 10 %, under a day; medium at least
monthly, under a month, ≤ 15 %, under a week; low otherwise.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final

DAY: Final = 86400.0
FAILED: Final = ("RolledBack", "Aborted", "Failed", "TimedOut")
NOT_COUNTED: Final = ("Cancelled", "Canceled", "Terminated")
OUTCOMES: Final = ("Promoted", *FAILED)


@dataclass(frozen=True)
class Deployment:
    """A finished rollout run."""

    workflow_id: str
    service: str
    environment: str
    strategy: str
    version: str | None
    started: datetime
    finished: datetime
    outcome: str  # Promoted | RolledBack | Aborted | Failed | TimedOut | Cancelled | Terminated
    commit_time: datetime | None = None
    first_shift: datetime | None = None  # the new version's first traffic (failed runs)
    stopped: datetime | None = None  # the decision to stop (failed runs)


@dataclass(frozen=True)
class Rollback:
    """A finished emergency rollback."""

    service: str
    environment: str
    started: datetime
    finished: datetime


@dataclass(frozen=True)
class Incident:
    service: str | None
    environment: str | None
    opened: datetime
    resolved: datetime | None


def band(key: str, value: float | None) -> str | None:
    """``elite``/``high``/``medium``/``low`` for a figure (``None`` without data)."""
    if value is None:
        return None
    if key == "deploymentFrequency":  # per day: more is better
        limits = (1.0, 1 / 7, 1 / 30)
        return next((b for b, lim in zip(_BANDS, limits, strict=False) if value >= lim), "low")
    limits = {
        "leadTime": (DAY, 7 * DAY, 30 * DAY),
        "changeFailureRate": (0.05, 0.10, 0.15),
        "timeToRestore": (3600.0, DAY, 7 * DAY),
    }[key]
    strict = key != "changeFailureRate"  # "under a day", but "at most 5 %"
    for name, limit in zip(_BANDS, limits, strict=False):
        if value < limit or (not strict and value <= limit):
            return name
    return "low"


_BANDS: Final = ("elite", "high", "medium")


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _p95(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _seconds(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds()


def figures(
    deployments: list[Deployment],
    rollbacks: list[Rollback],
    incidents: list[Incident],
    since: datetime,
    until: datetime,
    failure_window: timedelta = timedelta(hours=24),
) -> dict[str, Any]:
    """The report's document (the JSON ``--format json`` prints, and the HTML embeds)."""
    counted = sorted(
        (d for d in deployments if d.outcome not in NOT_COUNTED), key=lambda d: d.finished
    )
    promoted = [d for d in counted if d.outcome == "Promoted"]
    caused = _caused_failures(promoted, rollbacks, incidents, failure_window)
    failed = [
        d
        for d in counted
        if d.outcome != "Promoted" or d.workflow_id + d.finished.isoformat() in caused
    ]
    days = max(_seconds(until, since) / DAY, 1 / 24)
    lead = [_seconds(d.finished, d.commit_time) for d in promoted if d.commit_time]
    restore, detect = _restores(counted, promoted, rollbacks, incidents)
    per_day = len(promoted) / days
    rate = len(failed) / len(counted) if counted else None
    durations = [_seconds(d.finished, d.started) for d in counted]
    return {
        "period": {"from": since.isoformat(), "to": until.isoformat(), "days": round(days, 3)},
        "figures": {
            "deploymentFrequency": {
                "perDay": round(per_day, 4),
                "promoted": len(promoted),
                "band": band("deploymentFrequency", per_day if counted else None),
            },
            "leadTime": _distribution("leadTime", lead),
            "changeFailureRate": {
                "rate": None if rate is None else round(rate, 4),
                "failures": len(failed),
                "deployments": len(counted),
                "band": band("changeFailureRate", rate),
            },
            "timeToRestore": _distribution("timeToRestore", restore),
            "timeToDetect": _distribution(None, detect),
        },
        "byStrategy": _by_strategy(counted, failed),
        "durations": {"medianSeconds": _median(durations), "p95Seconds": _p95(durations)},
        "notCounted": len(deployments) - len(counted),
        "series": {
            "daily": _daily(counted, failed, since.date(), until.date()),
            "changeFailureRateByWeek": _weekly_rate(counted, failed),
            "leadTimeSeconds": sorted(lead),
            "restoreSeconds": sorted(restore),
        },
    }


def _distribution(key: str | None, values: list[float]) -> dict[str, Any]:
    median = _median(values)
    shown: dict[str, Any] = {
        "medianSeconds": median,
        "p95Seconds": _p95(values),
        "count": len(values),
    }
    return shown | ({"band": band(key, median)} if key else {})


def _caused_failures(
    promoted: list[Deployment],
    rollbacks: list[Rollback],
    incidents: list[Incident],
    window: timedelta,
) -> set[str]:
    """Promotions an emergency rollback or an incident of the same service and environment
    followed within ``window`` (each event blames the latest promotion before it)."""
    caused: set[str] = set()
    events = [(r.service, r.environment, r.started) for r in rollbacks] + [
        (i.service, i.environment, i.opened) for i in incidents
    ]
    for service, environment, at in events:
        before = [
            d
            for d in promoted
            if d.service == service
            and (environment is None or d.environment == environment)
            and d.finished <= at
        ]
        if before and at - before[-1].finished <= window:
            caused.add(before[-1].workflow_id + before[-1].finished.isoformat())
    return caused


def _restores(
    counted: list[Deployment],
    promoted: list[Deployment],
    rollbacks: list[Rollback],
    incidents: list[Incident],
) -> tuple[list[float], list[float]]:
    restore: list[float] = []
    detect: list[float] = []
    for d in counted:
        if d.outcome in FAILED and d.outcome != "Failed":
            fault = d.first_shift or d.started
            restore.append(_seconds(d.finished, fault))
            if d.stopped is not None:
                detect.append(_seconds(d.stopped, fault))
    for r in rollbacks:
        live = [
            d.finished
            for d in promoted
            if (d.service, d.environment) == (r.service, r.environment) and d.finished <= r.started
        ]
        fault = live[-1] if live else r.started
        restore.append(_seconds(r.finished, fault))
        if live:
            detect.append(_seconds(r.started, fault))
    restore += [_seconds(i.resolved, i.opened) for i in incidents if i.resolved is not None]
    return restore, detect


def _by_strategy(counted: list[Deployment], failed: list[Deployment]) -> list[dict[str, Any]]:
    rows = []
    for strategy in sorted({d.strategy for d in counted}):
        runs = [d for d in counted if d.strategy == strategy]
        ok = sum(d.outcome == "Promoted" for d in runs)
        rows.append(
            {
                "strategy": strategy,
                "deployments": len(runs),
                "promoted": ok,
                "successRate": round(ok / len(runs), 4),
                "failures": sum(d in failed for d in runs),
                "medianDurationSeconds": _median([_seconds(d.finished, d.started) for d in runs]),
            }
        )
    return rows


def _daily(
    counted: list[Deployment], failed: list[Deployment], first: date, last: date
) -> list[dict[str, Any]]:
    per_day: dict[date, Counter[str]] = {}
    day = first
    while day <= last:
        per_day[day] = Counter()
        day += timedelta(days=1)
    for d in counted:
        per_day.setdefault(d.finished.date(), Counter())[d.outcome] += 1
    return [
        {"date": day.isoformat(), **{o: per_day[day][o] for o in OUTCOMES}}
        for day in sorted(per_day)
    ]


def _weekly_rate(counted: list[Deployment], failed: list[Deployment]) -> list[dict[str, Any]]:
    weeks: dict[date, list[bool]] = {}
    for d in counted:
        monday = d.finished.date() - timedelta(days=d.finished.weekday())
        weeks.setdefault(monday, []).append(d in failed)
    return [
        {
            "week": week.isoformat(),
            "deployments": len(w),
            "failures": sum(w),
            "rate": round(sum(w) / len(w), 4),
        }
        for week, w in sorted(weeks.items())
    ]
