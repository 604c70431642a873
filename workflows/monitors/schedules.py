"""A ServiceMonitor's cadence as a Temporal Schedule. Pure: no client, no I/O.

A schedule fires at every moment any of its calendars matches, in ``time_zone_name``, so
business hours follow daylight saving time (a skipped local hour has no runs, a repeated
one may have them twice). The week is built minute by minute from the spec and then
folded into a few calendars: one per group of days with the same day, and within it one
per group of hours with the same firing minutes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from temporalio.client import (
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from workflows.core.durations import parse_duration
from workflows.core.search_attributes import DEPLOY_ENVIRONMENT, DEPLOY_SERVICE
from workflows.core.timeouts import WORKFLOW_TASK_TIMEOUT
from workflows.monitors.cadence import DAY_MINUTES, MonitorSchedule, cadence_minutes, minute_of_day
from workflows.monitors.spec import ServiceMonitor, describe

MONITOR_WORKFLOW = "ServiceMonitor"
# A monitor that missed its time (server down) runs once when it can, never a burst.
CATCHUP_WINDOW = timedelta(minutes=1)
# Temporal numbers days from Sunday; the spec's days are in DAYS (Monday-first) order.
TEMPORAL_DAY = {"Sun": 0, "Mon": 1, "Tue": 2, "Wed": 3, "Thu": 4, "Fri": 5, "Sat": 6}

DayProfile = tuple[frozenset[int], ...]  # per hour of the day, the minutes that fire


def day_profile(schedule: MonitorSchedule, business_day: bool) -> DayProfile:
    """Which minutes of each hour fire on a business day, or on any other day.

    Business hours fire from ``start`` every ``every`` while before ``end``; the rest of
    the time fires on the off-hours cadence counted from midnight, if there is one.
    """
    business = schedule.business_hours if business_day else None
    if business is not None:
        start, end = minute_of_day(business.start), minute_of_day(business.end)
        business_every = cadence_minutes(business.every)
    off_every = cadence_minutes(schedule.off_hours.every) if schedule.off_hours else None
    fires: list[set[int]] = [set() for _ in range(24)]
    for minute in range(DAY_MINUTES):
        if business is not None and start <= minute < end:
            due = (minute - start) % business_every == 0
        else:
            due = off_every is not None and minute % off_every == 0
        if due:
            fires[minute // 60].add(minute % 60)
    return tuple(frozenset(m) for m in fires)


def ranges(values: Sequence[int]) -> list[ScheduleRange]:
    """Sorted distinct integers as few arithmetic ranges (``0,15,30,45`` → ``0-45/15``)."""
    result: list[ScheduleRange] = []
    index = 0
    while index < len(values):
        first = values[index]
        if index + 1 == len(values):
            result.append(ScheduleRange(first, first, 1))
            break
        step = values[index + 1] - first
        last = index + 1
        while last + 1 < len(values) and values[last + 1] - values[last] == step:
            last += 1
        result.append(ScheduleRange(first, values[last], step))
        index = last + 1
    return result


def _calendars(days: list[int], profile: DayProfile) -> list[ScheduleCalendarSpec]:
    """One calendar per set of firing minutes on ``days`` (Temporal's numbering)."""
    hours_by_minutes: dict[frozenset[int], list[int]] = {}
    for hour, minutes in enumerate(profile):
        if minutes:
            hours_by_minutes.setdefault(minutes, []).append(hour)
    return [
        ScheduleCalendarSpec(
            second=[ScheduleRange(0)],
            minute=ranges(sorted(minutes)),
            hour=ranges(hours),
            day_of_week=ranges(days),
        )
        for minutes, hours in hours_by_minutes.items()
    ]


def schedule_spec(monitor: ServiceMonitor) -> ScheduleSpec:
    """When the monitor runs, as calendars in its time zone."""
    schedule = monitor.spec.schedule
    business_days = set(schedule.business_hours.days) if schedule.business_hours else set()
    groups = [
        (sorted(TEMPORAL_DAY[d] for d in business_days), True),
        (sorted(n for d, n in TEMPORAL_DAY.items() if d not in business_days), False),
    ]
    calendars = [
        calendar
        for days, business in groups
        if days
        for calendar in _calendars(days, day_profile(schedule, business))
    ]
    return ScheduleSpec(calendars=calendars, time_zone_name=schedule.time_zone)


def schedule_for(monitor: ServiceMonitor, task_queue: str) -> Schedule:
    """The whole schedule: start ``ServiceMonitor(monitor)`` on the cadence, never two at
    once (a run still going when the next is due makes it skip), no catch-up bursts."""
    spec = monitor.spec
    return Schedule(
        action=ScheduleActionStartWorkflow(
            MONITOR_WORKFLOW,
            monitor,
            # Temporal appends the scheduled time: monitor-checkout-production-run-2025-...
            id=f"{monitor.schedule_id}-run",
            task_queue=task_queue,
            task_timeout=WORKFLOW_TASK_TIMEOUT,
            execution_timeout=parse_duration(spec.schedule.run_timeout),
            typed_search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(DEPLOY_SERVICE, spec.service),
                    SearchAttributePair(DEPLOY_ENVIRONMENT, spec.environment),
                ]
            ),
            static_summary=f"monitor {spec.service} in {spec.environment}",
        ),
        spec=schedule_spec(monitor),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=CATCHUP_WINDOW),
        state=ScheduleState(note=f"monitor {monitor.name}: {describe(monitor)}"),
    )
