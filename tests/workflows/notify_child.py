"""A worker in a child process, for tests that SIGKILL it mid-notification.

    python -m tests.workflows.notify_child ADDRESS TASK_QUEUE

CanaryRollout with stub routing (tests.workflows.harness.Stubs) and the real notify
activities, reading SLACK_API_URL and the token from its environment like a worker.
"""

from __future__ import annotations

import asyncio
import sys

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from activities.notify.rollout import RolloutNotices
from tests.fixtures.harness import worker
from tests.workflows.harness import Stubs
from workflows.rollouts.canary import CanaryRollout


async def main(address: str, task_queue: str) -> None:
    client = await Client.connect(address, data_converter=pydantic_data_converter)
    notices = RolloutNotices()
    activities = [*Stubs().activities(), notices.notify_slack, notices.notify_webhook]
    async with worker(client, [CanaryRollout], activities, task_queue=task_queue):
        print("polling", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
