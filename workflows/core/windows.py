"""Deployment windows: when a stage may start. Pure functions over aware datetimes.

A window allows some weekdays between two wall-clock times in a time zone; freezes are
absolute intervals during which nothing starts. ``next_opening`` answers "may I start at
``now``, and if not, when?" — the pipeline sleeps until then (a durable timer).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_HORIZON = timedelta(days=366)
# IANA names: America/Argentina/Buenos_Aires, Etc/GMT+5, UTC. The longest is 32 characters.
_ZONE_NAME = re.compile(r"[A-Za-z0-9_+-]{1,32}(?:/[A-Za-z0-9_+-]{1,32}){0,2}")


def check_time_zone(zone: str) -> str:
    """``zone`` if it names an IANA time zone (``Europe/Berlin``), else ``ValueError``.

    The name is checked before ``ZoneInfo`` sees it: ZoneInfo opens the file of that name,
    so a 5,000-character name is an ``OSError``, ``Europe`` a directory, ``zone.tab`` no zone.
    """
    shown = repr(zone) if len(zone) <= 64 else f"{zone[:20]!r}… ({len(zone)} characters)"
    message = f"unknown time zone {shown} (use an IANA name like Europe/Berlin)"
    if not _ZONE_NAME.fullmatch(zone):
        raise ValueError(message)
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(message) from None
    return zone


def parse_clock(text: str) -> time:
    """``09:00`` → 09:00; ``24:00`` is accepted as the end of the day."""
    hours, _, minutes = text.partition(":")
    if not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise ValueError(f"expected HH:MM, got {text!r}")
    h, m = int(hours), int(minutes)
    if (h, m) == (24, 0):
        return time.max
    if not (0 <= h < 24 and 0 <= m < 60):
        raise ValueError(f"expected HH:MM between 00:00 and 24:00, got {text!r}")
    return time(h, m)


def in_allowed(now: datetime, days: list[str], start: time, end: time, zone: str) -> bool:
    """Whether ``now`` falls inside the weekly window (end exclusive; may wrap midnight)."""
    local = now.astimezone(ZoneInfo(zone))
    clock = local.time()
    if start <= end:
        return DAYS[local.weekday()] in days and start <= clock < end
    # Overnight window (22:00-06:00): the part after midnight belongs to the previous day.
    if clock >= start:
        return DAYS[local.weekday()] in days
    yesterday = DAYS[(local.weekday() - 1) % 7]
    return clock < end and yesterday in days


def next_opening(
    now: datetime,
    allowed: list[tuple[list[str], time, time, str]],
    freezes: list[tuple[datetime, datetime]],
) -> datetime | None:
    """``now`` if a stage may start now, else the earliest later moment it may; ``None``
    if nothing opens within a year (a window that can never open)."""
    candidate = now.astimezone(UTC)
    limit = candidate + _HORIZON
    while candidate <= limit:
        frozen = next((end for start, end in freezes if start <= candidate < end), None)
        if frozen is not None:
            candidate = frozen
            continue
        if not allowed or any(in_allowed(candidate, *w) for w in allowed):
            return candidate
        candidate = _next_window_start(candidate, allowed)
    return None


def _next_window_start(
    after: datetime, allowed: list[tuple[list[str], time, time, str]]
) -> datetime:
    """The next moment (strictly after ``after``) some allowed window begins."""
    starts = []
    for days, start, _end, zone in allowed:
        local = after.astimezone(ZoneInfo(zone))
        for offset in range(8):
            day = (local + timedelta(days=offset)).date()
            moment = datetime.combine(day, start, ZoneInfo(zone))
            if moment > after and DAYS[moment.weekday()] in days:
                starts.append(moment.astimezone(UTC))
                break
    return min(starts) if starts else after + _HORIZON + timedelta(seconds=1)
