"""A worker SIGKILLed while Slack holds the answer to its post: the replacement worker's
retry finds the post by its key and edits it, so the thread still has one root message."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from tests.fixtures.notify import SLACK_TOKEN
from tests.workflows.harness import rollout
from workflows.rollouts.canary import CanaryRollout
from workflows.rollouts.models import RolloutPhase

REPO = Path(__file__).resolve().parents[2]


def child_worker(
    address: str, queue: str, env: dict[str, str], log: Path
) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.workflows.notify_child", address, queue],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def test_a_worker_killed_with_the_root_post_in_flight_posts_no_duplicate(
    temporal_env, slack_server, tmp_path
):
    address = temporal_env.client.service_client.config.target_host
    client = await Client.connect(address, data_converter=pydantic_data_converter)
    queue = f"kill-{uuid.uuid4().hex[:8]}"
    env = {
        "PATH": "/usr/bin:/bin",
        "SLACK_API_URL": slack_server.api_url,
        "SLACK_BOT_TOKEN": SLACK_TOKEN,
    }
    log = tmp_path / "workers.log"
    spec = rollout(
        [{"setWeight": 50}, {"setWeight": 100}], notifications={"slack": {"channel": "#deploys"}}
    )
    held = slack_server.hold("/api/chat.postMessage")  # the thread's root post
    first = child_worker(address, queue, env, log)
    second = None
    try:
        handle = await client.start_workflow(
            CanaryRollout.run, spec, id=spec.workflow_id, task_queue=queue
        )
        assert await asyncio.to_thread(held.reached.wait, 60), log.read_text()
        first.kill()  # SIGKILL, by its PID: the post is made, its answer never arrives
        first.wait(timeout=10)
        held.release()
        second = child_worker(address, queue, env, log)
        result = await asyncio.wait_for(handle.result(), timeout=90)
    finally:
        for worker in (first, second):
            if worker is not None and worker.poll() is None:
                worker.kill()
                worker.wait(timeout=10)

    assert result.outcome is RolloutPhase.PROMOTED
    messages = slack_server.messages("#deploys")
    [root] = [m for m in messages if m["thread_ts"] is None]
    assert "*Promoted*" in root["text"]
    replies = [m["text"] for m in messages if m["thread_ts"] == root["ts"]]
    assert len(replies) == len(set(replies)) == 4  # started, 2 steps completed, promoted
    paths = [r["path"] for r in slack_server.requests()]
    assert paths[:4] == [
        "/api/chat.postMessage",  # the post whose answer was lost with the worker
        "/api/conversations.list",  # the retry finds the channel named in the spec,
        "/api/conversations.history",  # looks for the post by its key...
        "/api/chat.update",  # ...and edits it
    ]
