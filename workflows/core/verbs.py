"""Operator verbs: what a person sends to a running workflow (``promote``, ``abort``,
``acknowledge``, ``approve`` …).

Each verb is an Update with a validator — a verb that makes no sense now is rejected and
leaves no history — and a Signal of the same name, for clients that cannot wait for an
answer. A signal cannot be rejected: ``signal_accepted`` runs the update's validator, and
an invalid signal is noted in the timeline (``ignored``) and dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from pydantic import Field

from activities.model import Model

T = TypeVar("T")


class OperatorInput(Model):
    """Argument of every operator verb; all fields optional, so ``{}`` is a valid input."""

    reason: str | None = Field(default=None, max_length=1000)
    by: str | None = Field(default=None, max_length=200)


def signal_accepted(
    verb: str, validate: Callable[[T], None], request: T, note: Callable[[str, str], None]
) -> bool:
    """Whether the signal form of ``verb`` may apply ``request``: its update's validator
    passes. If not, ``note("ignored", ...)`` says why on the timeline."""
    try:
        validate(request)
    except ValueError as exc:
        note("ignored", f"signal {verb} ignored: {exc}")
        return False
    return True


def said_by(what: str, by: str | None, reason: str | None) -> str:
    """``promoted by ana: looks good``: what happened, who asked and why, for the timeline."""
    who = f" by {by}" if by else ""
    because = f": {reason}" if reason else ""
    return f"{what}{who}{because}"


def operator_said(what: str, request: OperatorInput) -> str:
    """``said_by`` for an ``OperatorInput``."""
    return said_by(what, request.by, request.reason)
