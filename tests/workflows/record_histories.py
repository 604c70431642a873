"""Record the CanaryRollout histories that test_replay.py replays.

    .venv/bin/python -m tests.workflows.record_histories

Run it only when adding a history for a new workflow version; committed histories are the
old versions that the current code must still replay (changes go behind
``workflow.patched``).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from tests.workflows.harness import Stubs, canary_worker, rollout, start, wait_for_status
from workflows.canary import CanaryRollout
from workflows.rollout_models import OperatorInput
from workflows.search_attributes import ALL

HISTORIES = Path(__file__).parent.parent / "histories"
ANALYSIS = {"analysis": {"templates": [{"templateName": "error-rate"}]}}


async def main() -> None:
    env = await WorkflowEnvironment.start_time_skipping_v2(
        dev_server_existing_path=str(Path(sys.executable).parent / "temporal"),
        dev_server_extra_args=[
            "--dynamic-config-value",
            "frontend.WorkflowTimeSkippingEnabled=true",
        ],
        search_attributes=list(ALL),
        data_converter=pydantic_data_converter,
    )
    async with env:
        promoted = rollout(
            [
                {"setWeight": 5},
                {"pause": {"duration": "30m"}},
                ANALYSIS,
                {"setWeight": 50},
                {"pause": {}},
                {"setWeight": 100},
            ],
            canary={"analysis": {"templates": [{"templateName": "error-rate"}], "startingStep": 1}},
        )
        stubs = Stubs(measure_values=lambda n: [0.001])
        async with canary_worker(env, stubs) as tq:
            handle = await start(env, tq, promoted)
            await wait_for_status(handle, lambda s: s.current_step == 4)
            await handle.execute_update(CanaryRollout.promote, OperatorInput(by="alice"))
            await handle.result()
            history = await handle.fetch_history()
            (HISTORIES / "canary-promoted.json").write_text(history.to_json())

        failing = rollout([{"setWeight": 20}, ANALYSIS, {"setWeight": 100}])
        stubs = Stubs(measure_values=lambda n: [0.5])
        async with canary_worker(env, stubs) as tq:
            handle = await start(env, tq, failing)
            await handle.result()
            history = await handle.fetch_history()
            (HISTORIES / "canary-rolled-back.json").write_text(history.to_json())


if __name__ == "__main__":
    asyncio.run(main())
