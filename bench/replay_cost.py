"""What a cold worker pays to replay a long canary: the floor under the workflow task timeout.

A worker that has a run cached answers its next workflow task in milliseconds; one that does
not (a replacement after a crash, a cache eviction) replays the run's whole history inside
that task first. The workflow task timeout must stay above that replay on a loaded machine,
or the task times out for ever. Canaries continue as new past 2,000 events
(``CanaryRollout.HISTORY_EVENTS_PER_RUN``), so that is the longest history to replay.

    .venv/bin/python bench/replay_cost.py [--events 4000] [--rounds 5]

It grows a canary's history with background analysis measuring every 50 ms (stub router and
measure activities, a fresh dev server), then times ``Replayer`` on it and prints the cost
per 1,000 events and the projection for 2,000 and 10,000.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from typing import Any

from common import STUB_ROUTER, canary_rollout, exit_now, machine, start_dev_server, summary
from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, Worker

from activities.metrics.activities import MeasureInput, MeasureOutput
from workflows.rollouts.canary import CanaryRollout

TEMPLATE = {
    "name": "bg",
    "metrics": [
        {
            "name": "error-rate",
            "interval": "50ms",
            "successCondition": "result < 0.01",
            "provider": {"prometheus": {"address": "http://127.0.0.1:9", "query": "q"}},
        }
    ],
}


@activity.defn(name="measure")
async def stub_measure(input: MeasureInput) -> MeasureOutput:
    return MeasureOutput(values=[0.001])


async def history_length(handle: WorkflowHandle[Any, Any]) -> int:
    description = await handle.describe()
    return int(description.raw_description.workflow_execution_info.history_length)


async def main(events: int, rounds: int) -> None:
    print(machine())
    env = await start_dev_server()
    async with env:
        tq = f"replay-{uuid.uuid4().hex[:8]}"
        rollout = canary_rollout(
            f"replay-{uuid.uuid4().hex[:6]}",
            [{"setWeight": 20}, {"pause": {}}],
            analysis={"templates": [{"templateName": "bg"}]},
            templates=[TEMPLATE],
        )
        async with Worker(
            env.client,
            task_queue=tq,
            workflows=[CanaryRollout],
            activities=[*STUB_ROUTER, stub_measure],
        ):
            handle = await env.client.start_workflow(
                CanaryRollout.run, rollout, id=rollout.workflow_id, task_queue=tq
            )
            print(f"growing the history to {events} events ...", flush=True)
            while await history_length(handle) < events:  # noqa: ASYNC110 (server state)
                await asyncio.sleep(1)
            await handle.terminate("bench: long enough")
        history = await handle.fetch_history()
    replayer = Replayer(workflows=[CanaryRollout], data_converter=pydantic_data_converter)
    seconds: list[float] = []
    for _ in range(rounds):
        started = time.perf_counter()
        await replayer.replay_workflow(history, raise_on_replay_failure=False)
        seconds.append(time.perf_counter() - started)
    n = len(history.events)
    per_thousand = [s * 1000 / n for s in seconds]
    print(f"history: {n} events")
    print(f"replay: {summary(seconds, 's')}")
    print(f"per 1,000 events: {summary(per_thousand, 's')}")
    print(
        f"projected for 2,000 events (a canary continues as new there): "
        f"{min(per_thousand) * 2:.2f} to {max(per_thousand) * 2:.2f} s; for 10,000: "
        f"{min(per_thousand) * 10:.2f} to {max(per_thousand) * 10:.2f} s "
        f"(load average {os.getloadavg()[0]:.1f})"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.events, args.rounds))
    exit_now(0)
