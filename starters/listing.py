"""What every ``list`` command prints: the rows as JSON (``--json``), or a line per row."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starters.errors import EXIT_OK


def print_rows(
    rows: list[dict[str, Any]],
    *,
    json_output: bool,
    empty: str,
    line: Callable[[dict[str, Any]], str],
    header: str | None = None,
) -> int:
    """``rows`` as one JSON array, or ``header`` and ``line(row)`` for each, or ``empty``
    when there are none; the exit code (0)."""
    if json_output:
        print(json.dumps(rows))
    elif not rows:
        print(empty)
    else:
        if header is not None:
            print(header)
        for row in rows:
            print(line(row))
    return EXIT_OK
