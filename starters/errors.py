"""Exit codes of the CLI, the error that means "the user asked for something wrong", and
how a run that ended without a result is shown. ``UsageError`` is defined in
``workers/usage.py`` (the worker reads flags and files too) and shown here."""

from __future__ import annotations

import json
from typing import Final

from workers.usage import UsageError

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_INVALID: Final = 2
EXIT_UNREACHABLE: Final = 3
EXIT_INCONCLUSIVE: Final = 4
"""`analysis run`: the analysis would hold the rollout for a human."""


class NotFound(UsageError):
    """What the user named does not exist (or is not running): exit 2, the API's 404."""


class Conflict(UsageError):
    """Refused in the current state (a rollout already running, a verb that does not apply
    now): exit 2, the API's 409."""


def print_failed(workflow_id: str, exc: BaseException, *, json_output: bool) -> int:
    """Print a run that failed, was cancelled, terminated or timed out, with the root cause
    of ``exc`` (its ``WorkflowFailureError``), on stdout; the exit code (1).

    Text: ``rollout-x: failed — activity get_weights: <message> (<type>)``. JSON: the
    outcome, ``reason`` (message and type), ``errorType``, ``where`` and the whole chain.
    """
    # Imported here: activities.errors imports temporalio, and the CLI imports this module
    # at start-up for its exit codes (`deployflow --help` must not pay ~0.2 s for it).
    from activities.errors import root_cause

    root = root_cause(exc)
    # The run's own cancellation, termination or timeout (not an activity's) is its outcome.
    outcome = "Failed" if root.where else _OUTCOMES.get(root.error, "Failed")
    if json_output:
        document = {
            "workflowId": workflow_id,
            "outcome": outcome,
            "reason": str(root),
            "errorType": root.type,
            "where": root.where or None,
            "causes": list(root.chain),
        }
        print(json.dumps(document))
    else:
        print(f"{workflow_id}: {_WORDS[outcome]} — {root.located}")
    return EXIT_FAILED


_OUTCOMES = {
    "CancelledError": "Cancelled",
    "TerminatedError": "Terminated",
    "TimeoutError": "TimedOut",
}
_WORDS = {
    "Failed": "failed",
    "Cancelled": "cancelled",
    "Terminated": "terminated",
    "TimedOut": "timed out",
}

__all__ = [
    "EXIT_FAILED",
    "EXIT_INCONCLUSIVE",
    "EXIT_INVALID",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "Conflict",
    "NotFound",
    "UsageError",
    "print_failed",
]
