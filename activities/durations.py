"""Durations as users write them in specs: ``30s``, ``5m``, ``1h30m``, ``250ms``, or seconds.

Every duration is at most a year (``MAX_DURATION``): longer is a typo, and far longer
(``99999999999999999999s``) would overflow ``timedelta`` and Temporal's timers.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Annotated, Any, Final

from pydantic import AfterValidator, BeforeValidator

from activities.model import MAX_SECONDS

MAX_DURATION: Final = timedelta(seconds=MAX_SECONDS)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_LONGEST_TEXT = 40  # "1d23h59m59s999ms" is 16; nothing sensible is longer
_FORMS = "expected a duration like 30s, 5m, 1h or 1h30m"


def parse_duration(value: str | int | float) -> timedelta:
    """Parse ``30s`` / ``5m`` / ``1h`` / ``1h30m`` / ``250ms`` / a number of seconds.

    Raises ``ValueError`` with the accepted forms for anything else, including negatives
    and anything longer than ``MAX_DURATION``.
    """
    if isinstance(value, bool):
        raise ValueError(f"{_FORMS}, got {value!r}")
    if isinstance(value, int | float):
        return timedelta(seconds=check_seconds(value))
    text = value.strip()
    if len(text) > _LONGEST_TEXT:
        raise ValueError(f"{_FORMS}, got {len(text)} characters")
    if text.isdecimal():
        return timedelta(seconds=check_seconds(int(text)))
    pos = 0
    total = 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"{_FORMS}, got {value!r}")
    return timedelta(seconds=check_seconds(total, shown=text))


def check_seconds(seconds: int | float, shown: str | None = None) -> float:
    """``seconds`` if it is a usable duration (finite, 0 … a year), else ``ValueError``
    (``shown`` is how the user wrote it, for the message)."""
    if isinstance(seconds, float) and not math.isfinite(seconds):
        raise ValueError(f"{_FORMS}, got {seconds!r}")
    if shown is None:
        # A 5,000-digit int cannot even be printed (Python's int-to-str limit).
        shown = repr(seconds) if abs(seconds) < 10**15 else "a number that large"
    if seconds < 0:
        raise ValueError(f"duration must not be negative, got {shown}")
    if seconds > MAX_SECONDS:
        raise ValueError(f"duration must be at most a year (365d), got {shown}")
    return float(seconds)


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


def _duration_text(value: Any) -> Any:
    """Accept a number of seconds as well as ``30s``; keep the text the user wrote."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        check_seconds(value)
        return f"{value}s"
    return value


def _check_duration(value: str) -> str:
    parse_duration(value)
    return value


Duration = Annotated[str, BeforeValidator(_duration_text), AfterValidator(_check_duration)]
"""A spec field holding a duration as the user wrote it (``30s``; a number is seconds)."""


def _check_templated(value: str) -> str:
    return value if "{{" in value else _check_duration(value)


TemplatedDuration = Annotated[
    str, BeforeValidator(_duration_text), AfterValidator(_check_templated)
]
"""A duration in an analysis provider spec, where ``{{args.NAME}}`` may stand for it: checked
again once analysis placeholders are filled in (``workflows/analysis/plan.py``)."""
