"""What a start records beside the spec, as the run's Temporal memo: who started it, and
the commit time the CLI or CI passes (``--commit-time``), from which the DORA report reads
the lead time for changes. A memo is not part of the workflow's commands (adding one
changes no history a worker replays) and goes through the payload codec like the input.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from starters.errors import UsageError

COMMIT_TIME: Final = "commitTime"
STARTED_BY: Final = "startedBy"


def parse_commit_time(text: str, field: str = "--commit-time") -> datetime:
    """An ISO 8601 time with a zone (``git log -1 --format=%cI``), not in the future."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"{field}: not an ISO 8601 time (e.g. 2026-05-04T10:15:00+02:00): {text[:60]!r}"
        ) from None
    if value.tzinfo is None:
        raise UsageError(f"{field}: needs a time zone (…Z or …+02:00): {text[:60]!r}")
    if value > datetime.now(UTC):
        raise UsageError(f"{field}: {value.isoformat()} is in the future")
    return value.astimezone(UTC)


def start_memo(by: str, commit_time: datetime | None) -> dict[str, Any]:
    memo: dict[str, Any] = {STARTED_BY: by}
    if commit_time is not None:
        memo[COMMIT_TIME] = commit_time.isoformat()
    return memo


def commit_time_of(memo: Mapping[str, Any]) -> datetime | None:
    """The commit time a run's memo holds, if it holds a readable one."""
    text = memo.get(COMMIT_TIME)
    if not isinstance(text, str):
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
