"""Durations as users write them in specs: ``30s``, ``5m``, ``1h30m``, ``250ms``, or seconds."""

from __future__ import annotations

import re
from datetime import timedelta

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_duration(value: str | int | float) -> timedelta:
    """Parse ``30s`` / ``5m`` / ``1h`` / ``1h30m`` / ``250ms`` / a number of seconds.

    Raises ``ValueError`` with the accepted forms for anything else, including negatives.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 30s, 5m or 1h, got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"duration must not be negative, got {value}")
        return timedelta(seconds=value)
    text = value.strip()
    if text.isdigit():
        return timedelta(seconds=int(text))
    pos = 0
    total = 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"expected a duration like 30s, 5m, 1h or 1h30m, got {value!r}")
    return timedelta(seconds=total)


def format_duration(value: timedelta) -> str:
    """Render a timedelta the way specs write it (``1h30m``, ``45s``, ``250ms``)."""
    millis = round(value.total_seconds() * 1000)
    if millis == 0:
        return "0s"
    parts: list[str] = []
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, millis = divmod(millis, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
