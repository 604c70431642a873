"""Exit codes of the CLI, and the error that means "the user asked for something wrong"."""

from __future__ import annotations

from typing import Final

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_INVALID: Final = 2
EXIT_UNREACHABLE: Final = 3
EXIT_INCONCLUSIVE: Final = 4
"""`analysis run`: the analysis would hold the rollout for a human."""


class UsageError(Exception):
    """Invalid input: printed as one line, exit code 2."""


def cause_message(exc: BaseException) -> str:
    """The message of a Temporal failure's cause (an ApplicationError's text), else its str."""
    cause = getattr(exc, "cause", None)
    return str(getattr(cause, "message", None) or cause or exc)
