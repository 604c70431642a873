"""Errors that workflow code must never catch to roll back.

The rollout machinery (``workflows/rollouts/stopping.py``) rolls back on any exception from
its steps, a bug included; these are the SDK telling us about the workflow code itself. Caught,
they would issue more commands into a run that cannot be trusted: the workflow task fails
instead and is retried once the code is fixed. (The text for people is
``activities.errors.root_cause``.)
"""

from __future__ import annotations

from temporalio import workflow

FATAL: tuple[type[BaseException], ...] = (
    workflow.NondeterminismError,
    workflow.ReadOnlyContextError,
)
