"""Committed histories must replay against the current workflow code (determinism)."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.emergency import EmergencyRollback
from workflows.pipeline import PromotionPipeline
from workflows.registry import BY_STRATEGY

HISTORIES = sorted((Path(__file__).parent.parent / "histories").glob("*.json"))


def test_there_are_histories_to_replay():
    kinds = {
        p.stem.rsplit("-", 1)[0].removesuffix("-rolled").removesuffix("-promoted")
        for p in HISTORIES
    }
    assert {"canary", "blue-green", "rolling", "recreate", "pipeline", "emergency"} <= kinds


@pytest.mark.parametrize(
    "history",
    [WorkflowHistory.from_json(p.stem, p.read_text()) for p in HISTORIES],
    ids=[p.stem for p in HISTORIES],
)
async def test_history_replays(history: WorkflowHistory):
    replayer = Replayer(
        workflows=[*BY_STRATEGY.values(), PromotionPipeline, EmergencyRollback],
        data_converter=pydantic_data_converter,
    )
    await replayer.replay_workflow(history)
