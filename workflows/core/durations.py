"""Durations as users write them in specs (``30s``, ``5m``, ``1h30m``): the parser lives in
``activities/durations.py`` so that provider specs (a range query's ``step``) can use it too."""

from __future__ import annotations

from activities.durations import (
    MAX_DURATION,
    Duration,
    check_seconds,
    format_duration,
    parse_duration,
)

__all__ = ["MAX_DURATION", "Duration", "check_seconds", "format_duration", "parse_duration"]
