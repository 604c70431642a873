"""``spec.schedule``: when a ServiceMonitor runs, in its time zone.

Business hours run from ``start`` every ``every`` until ``end`` (exclusive); off-hours
runs are aligned to midnight. Cadences divide an hour (1m … 30m) or a day (1h … 24h)
evenly, so every hour and every day look the same. ``schedules.py`` turns this into a
Temporal Schedule.
"""

from __future__ import annotations

from datetime import time, timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from activities.model import Model
from workflows.core.durations import Duration, parse_duration
from workflows.core.windows import check_time_zone, parse_clock
from workflows.promotion.spec import Clock

Day = Literal["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
WEEKDAYS: list[Day] = ["Mon", "Tue", "Wed", "Thu", "Fri"]
DAY_MINUTES = 24 * 60
MIN_RUN_TIMEOUT = timedelta(seconds=10)


def cadence_minutes(every: str) -> int:
    """Whole minutes between two runs; ``ValueError`` unless they divide an hour or a day."""
    seconds = parse_duration(every).total_seconds()
    minutes, rest = divmod(round(seconds), 60)
    if rest or seconds != round(seconds) or minutes == 0:
        raise ValueError(f"must be whole minutes, got {every!r}")
    if 60 % minutes and (minutes % 60 or DAY_MINUTES % minutes):
        raise ValueError(
            f"must divide an hour (1m, 2m, 5m, 10m, 15m, 20m, 30m …) or a day "
            f"(1h, 2h, 3h, 4h, 6h, 8h, 12h, 24h) evenly, got {every!r}"
        )
    return minutes


def _check_cadence(value: str) -> str:
    cadence_minutes(value)
    return value


Cadence = Annotated[Duration, AfterValidator(_check_cadence)]
TimeZone = Annotated[str, AfterValidator(check_time_zone)]


def minute_of_day(clock: str) -> int:
    """``09:30`` → 570; ``24:00`` → 1440."""
    parsed = parse_clock(clock)
    return DAY_MINUTES if parsed == time.max else parsed.hour * 60 + parsed.minute


class BusinessHours(Model):
    days: list[Day] = Field(default_factory=lambda: list(WEEKDAYS), min_length=1)
    start: Clock = "09:00"
    end: Clock = "18:00"
    every: Cadence

    @model_validator(mode="after")
    def _ordered(self) -> BusinessHours:
        if minute_of_day(self.end) <= minute_of_day(self.start):
            raise ValueError(f"end {self.end} must be after start {self.start} (same day)")
        repeated = sorted({d for d in self.days if self.days.count(d) > 1})
        if repeated:
            raise ValueError(f"days: {', '.join(repeated)} listed twice")
        return self


class OffHours(Model):
    every: Cadence


class MonitorSchedule(Model):
    """When runs start. Without ``offHours`` nothing runs outside business hours; without
    ``businessHours`` every hour of every day is off-hours."""

    time_zone: TimeZone = "UTC"
    business_hours: BusinessHours | None = None
    off_hours: OffHours | None = None
    run_timeout: Duration = "30m"

    @model_validator(mode="after")
    def _some_cadence(self) -> MonitorSchedule:
        if self.business_hours is None and self.off_hours is None:
            raise ValueError("set businessHours, offHours or both")
        if parse_duration(self.run_timeout) < MIN_RUN_TIMEOUT:
            raise ValueError(f"runTimeout: at least 10s, got {self.run_timeout}")
        return self

    def describe(self) -> str:
        """``every 5m Mon-Fri 09:00-18:00, every 15m otherwise (Europe/Berlin)``."""
        parts = []
        business = self.business_hours
        if business is not None:
            days = ",".join(business.days)
            if business.days == WEEKDAYS:
                days = "Mon-Fri"
            parts.append(f"every {business.every} {days} {business.start}-{business.end}")
        if self.off_hours is not None:
            tail = " otherwise" if business is not None else ""
            parts.append(f"every {self.off_hours.every}{tail}")
        else:
            parts.append("nothing otherwise")
        return f"{', '.join(parts)} ({self.time_zone})"
