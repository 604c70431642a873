"""A monitor's cadence as Temporal calendars: the calendar math, checked minute by minute.

``fires`` reads a ScheduleSpec the way Temporal does (every field of some calendar
matches, in the spec's time zone); tests/integration/test_monitor_schedules.py checks it
against the real server's next action times.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from temporalio.client import (
    ScheduleActionStartWorkflow,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    ScheduleRange,
    ScheduleSpec,
)

from workflows.monitors.schedules import CATCHUP_WINDOW, ranges, schedule_for, schedule_spec
from workflows.monitors.spec import ServiceMonitor, parse_monitor


def _matches(value: int, field: Sequence[ScheduleRange]) -> bool:
    if not field:  # an empty field (year) means any
        return True
    for r in field:
        end = r.end if r.end >= r.start else r.start
        step = r.step or 1
        if r.start <= value <= end and (value - r.start) % step == 0:
            return True
    return False


def _calendar_matches(calendar: ScheduleCalendarSpec, local: datetime) -> bool:
    day_of_week = (local.weekday() + 1) % 7  # Temporal: 0 is Sunday
    return all(
        _matches(value, field)
        for value, field in (
            (local.second, calendar.second),
            (local.minute, calendar.minute),
            (local.hour, calendar.hour),
            (local.day, calendar.day_of_month),
            (local.month, calendar.month),
            (local.year, calendar.year),
            (day_of_week, calendar.day_of_week),
        )
    )


def fires(spec: ScheduleSpec, when: datetime) -> bool:
    """Whether ``spec`` fires at ``when`` (aware, or naive = wall clock in the spec's zone)."""
    zone = ZoneInfo(spec.time_zone_name or "UTC")
    local = when.replace(tzinfo=zone) if when.tzinfo is None else when.astimezone(zone)
    return any(_calendar_matches(c, local) for c in spec.calendars)


def next_fires(spec: ScheduleSpec, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` firing moments strictly after ``after`` (UTC, whole minutes)."""
    moment = after.astimezone(UTC).replace(second=0, microsecond=0)
    found: list[datetime] = []
    for _ in range(8 * 24 * 60):
        moment += timedelta(minutes=1)
        if fires(spec, moment):
            found.append(moment)
            if len(found) == count:
                break
    return found


def monitor(schedule: dict[str, Any], name: str = "checkout-production") -> ServiceMonitor:
    return parse_monitor(
        [
            {
                "apiVersion": "deployflow/v1",
                "kind": "ServiceMonitor",
                "metadata": {"name": name},
                "spec": {
                    "service": "checkout",
                    "environment": "production",
                    "schedule": schedule,
                    "servers": ["127.0.0.1:18001"],
                    "healthCheck": {"http": {}},
                },
            }
        ]
    )


BERLIN = {
    "timeZone": "Europe/Berlin",
    "businessHours": {"days": ["Mon", "Tue", "Wed", "Thu", "Fri"], "start": "09:00",
                      "end": "18:00", "every": "5m"},
    "offHours": {"every": "15m"},
}  # fmt: skip

# 2025-01-06 is a Monday; wall-clock times in Europe/Berlin.
MONDAY = datetime(2025, 1, 6)
SATURDAY = datetime(2025, 1, 11)


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (MONDAY.replace(hour=10, minute=5), True),
        (MONDAY.replace(hour=10, minute=7), False),
        (MONDAY.replace(hour=9, minute=0), True),
        (MONDAY.replace(hour=8, minute=55), False),  # before business hours: 15m cadence
        (MONDAY.replace(hour=8, minute=45), True),
        (MONDAY.replace(hour=17, minute=55), True),
        (MONDAY.replace(hour=18, minute=0), True),  # end is exclusive, but :00 is on 15m too
        (MONDAY.replace(hour=18, minute=5), False),
        (MONDAY.replace(hour=20, minute=15), True),
        (MONDAY.replace(hour=20, minute=5), False),
        (MONDAY.replace(hour=0, minute=0), True),
        (SATURDAY.replace(hour=10, minute=5), False),
        (SATURDAY.replace(hour=10, minute=15), True),
        (MONDAY.replace(hour=10, minute=5, second=30), False),  # whole minutes only
    ],
)
def test_business_hours_run_every_5m_and_the_rest_every_15m(when: datetime, expected: bool):
    assert fires(schedule_spec(monitor(BERLIN)), when) is expected


def test_the_calendars_are_in_the_monitors_time_zone():
    spec = schedule_spec(monitor(BERLIN))
    assert spec.time_zone_name == "Europe/Berlin"
    # Berlin is UTC+1 in winter and UTC+2 in summer; business hours end at 18:00 there.
    assert fires(spec, datetime(2025, 1, 6, 16, 55, tzinfo=UTC))  # 17:55
    assert not fires(spec, datetime(2025, 1, 6, 17, 5, tzinfo=UTC))  # 18:05
    assert fires(spec, datetime(2025, 7, 7, 15, 55, tzinfo=UTC))  # 17:55
    assert not fires(spec, datetime(2025, 7, 7, 16, 5, tzinfo=UTC))  # 18:05


def test_a_window_off_the_hour_with_an_exclusive_end():
    spec = schedule_spec(
        monitor(
            {
                "businessHours": {
                    "days": ["Wed"],
                    "start": "09:30",
                    "end": "10:10",
                    "every": "10m",
                },
                "offHours": {"every": "30m"},
            }
        )
    )
    wednesday = datetime(2025, 1, 8)
    firing = [m for m in range(8 * 60, 11 * 60) if fires(spec, wednesday + timedelta(minutes=m))]
    assert [f"{m // 60:02}:{m % 60:02}" for m in firing] == [
        "08:00", "08:30", "09:00", "09:30", "09:40", "09:50", "10:00", "10:30",
    ]  # fmt: skip


def test_hourly_cadences_start_at_the_window_start_and_at_midnight_off_hours():
    spec = schedule_spec(
        monitor(
            {
                "businessHours": {"start": "09:30", "end": "17:00", "every": "2h"},
                "offHours": {"every": "6h"},
            }
        )
    )
    tuesday = datetime(2025, 1, 7)
    firing = [m for m in range(24 * 60) if fires(spec, tuesday + timedelta(minutes=m))]
    assert [f"{m // 60:02}:{m % 60:02}" for m in firing] == [
        "00:00", "06:00", "09:30", "11:30", "13:30", "15:30", "18:00",
    ]  # fmt: skip


def test_without_off_hours_nothing_runs_outside_business_hours():
    spec = schedule_spec(monitor({"businessHours": {"every": "30m"}}))
    assert fires(spec, MONDAY.replace(hour=9))
    assert not fires(spec, MONDAY.replace(hour=8))
    assert not any(fires(spec, SATURDAY + timedelta(minutes=m)) for m in range(24 * 60))


def test_without_business_hours_every_day_is_off_hours():
    spec = schedule_spec(monitor({"offHours": {"every": "20m"}}))
    assert len(spec.calendars) == 1
    saturday = [m for m in range(60) if fires(spec, SATURDAY + timedelta(minutes=m))]
    assert saturday == [0, 20, 40]


def test_every_minute_of_a_week_fires_exactly_as_the_spec_says():
    spec = schedule_spec(monitor(BERLIN))
    for m in range(7 * 24 * 60):
        when = MONDAY + timedelta(minutes=m)
        business = when.weekday() < 5 and 9 <= when.hour < 18
        expected = when.minute % (5 if business else 15) == 0
        assert fires(spec, when) is expected, when


def test_next_fires_crosses_the_end_of_business_hours():
    spec = schedule_spec(monitor(BERLIN))
    after = MONDAY.replace(hour=17, minute=50, tzinfo=ZoneInfo("Europe/Berlin"))
    local = [
        t.astimezone(ZoneInfo("Europe/Berlin")).strftime("%H:%M")
        for t in next_fires(spec, after, 4)
    ]
    assert local == ["17:55", "18:00", "18:15", "18:30"]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0, 15, 30, 45], [(0, 45, 15)]),
        ([5], [(5, 5, 1)]),
        ([0, 1, 2, 3, 18, 19, 20], [(0, 3, 1), (18, 20, 1)]),
        ([0, 15, 30, 35, 40], [(0, 30, 15), (35, 40, 5)]),
        ([], []),
    ],
)
def test_ranges_fold_integers_into_arithmetic_progressions(values, expected):
    assert [(r.start, r.end, r.step) for r in ranges(values)] == expected


def test_the_schedule_starts_the_monitor_workflow_and_never_overlaps():
    m = monitor(BERLIN)
    schedule = schedule_for(m, "deployflow")
    action = schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert action.workflow == "ServiceMonitor"
    assert action.args == [m]
    assert action.id == "monitor-checkout-production-run"
    assert action.task_queue == "deployflow"
    assert action.execution_timeout == timedelta(minutes=30)
    assert schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
    assert schedule.policy.catchup_window == CATCHUP_WINDOW == timedelta(minutes=1)
    assert schedule.state.note is not None
    assert (
        "every 5m Mon-Fri 09:00-18:00, every 15m otherwise (Europe/Berlin)" in schedule.state.note
    )
