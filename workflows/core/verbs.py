"""Operator verbs: what a person sends to a running workflow (``promote``, ``abort``,
``acknowledge`` …), as an Update with a validator and as a Signal of the same name."""

from __future__ import annotations

from pydantic import Field

from activities.model import Model


class OperatorInput(Model):
    """Argument of every operator verb; all fields optional, so ``{}`` is a valid input."""

    reason: str | None = Field(default=None, max_length=1000)
    by: str | None = Field(default=None, max_length=200)
