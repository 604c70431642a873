"""One line for an exception raised into workflow code: its root cause, for timelines.

Temporal wraps failures (``ActivityError`` → ``ApplicationError``, ``ChildWorkflowError`` →
``ActivityError`` → …); the useful text is at the bottom of the chain. Exceptions that are
not Temporal failures are bugs, shown with their Python type.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError, CancelledError, FailureError

FATAL: tuple[type[BaseException], ...] = (
    workflow.NondeterminismError,
    workflow.ReadOnlyContextError,
)
"""Raised by the SDK about the workflow code itself: never caught to roll back (the
workflow task fails and is retried once the code is fixed)."""


def root_cause(exc: BaseException) -> str:
    """``message (Type)`` of the innermost failure: what a person needs to act on."""
    while isinstance(exc, FailureError) and exc.cause is not None:
        exc = exc.cause
    if isinstance(exc, ApplicationError):
        return f"{exc.message} ({exc.type})" if exc.type else exc.message
    if isinstance(exc, CancelledError):
        return f"cancelled: {exc.message}" if exc.message else "cancelled"
    if isinstance(exc, FailureError):
        return exc.message or type(exc).__name__
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
