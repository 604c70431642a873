"""How the CLI and the API answer an operator verb the server refuses (send_verb)."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.service import RPCError, RPCStatusCode

from starters.errors import Conflict, NotFound
from starters.rollouts import send_verb


class Refused:
    """A workflow handle whose every update fails with ``error``."""

    id = "rollout-checkout-production"

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def execute_update(self, *args: Any, **kwargs: Any) -> str:
        raise self.error


def not_found(message: str) -> RPCError:
    return RPCError(message, RPCStatusCode.NOT_FOUND, b"")


async def test_a_verb_that_reaches_a_run_as_it_closes_is_a_conflict():
    """The race after an abort: the server admitted promote, then the run closed."""
    closing = Refused(not_found("workflow update was aborted by closing workflow"))

    with pytest.raises(Conflict) as caught:
        await send_verb(closing, "promote", {"by": "bob"})

    assert str(caught.value) == "promote rejected: rollout-checkout-production closed as it arrived"


async def test_a_verb_to_a_closed_run_is_not_found():
    closed = Refused(not_found("workflow execution already completed"))

    with pytest.raises(NotFound, match=r"^rollout-checkout-production: not running \(workflow"):
        await send_verb(closed, "promote", {"by": "bob"})


async def test_any_other_refusal_is_not_read_as_an_answer():
    unavailable = Refused(RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b""))

    with pytest.raises(RPCError):
        await send_verb(unavailable, "promote", {"by": "bob"})
