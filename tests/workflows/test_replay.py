"""Committed histories must replay against the current workflow code (determinism)."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workers.main import WORKFLOWS

HISTORIES = sorted((Path(__file__).parent.parent / "histories").glob("*.json"))


def test_there_are_histories_to_replay():
    kinds = {
        p.stem.rsplit("-", 1)[0].removesuffix("-rolled").removesuffix("-promoted")
        for p in HISTORIES
    }
    expected = {"canary", "blue-green", "rolling", "recreate", "pipeline", "emergency"}
    assert expected | {"incident-escalated", "monitor-run", "self-healer"} <= kinds


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
