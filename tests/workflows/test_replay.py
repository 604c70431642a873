"""Committed histories must replay against the current workflow code (determinism)."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from workers.main import WORKFLOWS

HISTORIES = sorted((Path(__file__).parent.parent / "histories").glob("*.json"))


def test_there_are_histories_to_replay():
    kinds = {
        p.stem.rsplit("-", 1)[0].removesuffix("-rolled").removesuffix("-promoted")
        for p in HISTORIES
    }
    expected = {"canary", "blue-green", "rolling", "recreate", "pipeline", "emergency"}
    assert (
        expected | {"incident-escalated", "monitor-run", "self-healer", "scope-rollback-partly"}
        <= kinds
    )


@pytest.mark.parametrize(
    "history",
    [WorkflowHistory.from_json(p.stem, p.read_text()) for p in HISTORIES],
    ids=[p.stem for p in HISTORIES],
)
async def test_history_replays(history: WorkflowHistory):
    replayer = Replayer(
        workflows=list(WORKFLOWS),
        data_converter=pydantic_data_converter,
    )
    await replayer.replay_workflow(history)


@pytest.mark.xfail(
    strict=True,
    raises=NondeterminismError,
    reason=(
        "temporalio 1.35 replays this history with the abort update before the timer it came "
        "with, while the live worker (a cold start) ran the timer first: NDE at event 41 even "
        "on the code that recorded it (sdk-python#1591). Strict: when the SDK fixes it, this "
        "XPASSes and the history moves to tests/histories/."
    ),
)
async def test_the_abort_after_a_worker_crash_history_replays():
    """The repro of issue 9: a timer fired, the worker died holding the task, the next worker
    got the timer and an abort in one activation, and the run failed with traffic split."""
    path = HISTORIES[0].parent / "sdk-nondeterminism" / "canary-abort-after-crash-failed.json"
    replayer = Replayer(workflows=list(WORKFLOWS), data_converter=pydantic_data_converter)
    await replayer.replay_workflow(WorkflowHistory.from_json(path.stem, path.read_text()))
