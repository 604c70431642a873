"""``deployflow worker`` on SIGTERM, as a real process with a real command-platform deploy
running in it: the deploy finishes within the grace period and the worker exits 0; past
the grace period the deploy is cancelled (its command killed) and retried by another
worker; a second signal exits at once and kills the deploy's command.

The deploy command waits for a file the test creates, so the test decides when it ends.
A workflow on another queue (``activity_caller``) schedules ``platform_action`` on the
workers' queue, the way a rollout does, with a heartbeat timeout and retries.
"""

from __future__ import annotations

import os
import signal
import sys
import uuid
from pathlib import Path

import pytest

from tests.fixtures.harness import poll
from tests.fixtures.worker import ActivityCaller, StartWorker

pytestmark = pytest.mark.integration

DEPLOY = """
import os, pathlib, sys, time
state = pathlib.Path(sys.argv[1])
attempt = len(list(state.glob("started.*")))
(state / f"started.{attempt}").write_text(f"{os.getppid()} {os.getpid()}")
while not (state / "release").exists():  # the test's go-ahead
    time.sleep(0.05)
(state / f"finished.{attempt}").write_text("")
print("deployed")
"""


class Deploy:
    """The deploy's state directory and the ``platform_action`` input that runs it."""

    def __init__(self, tmp_path: Path) -> None:
        self.state = tmp_path / "deploy"
        self.state.mkdir()
        self.script = tmp_path / "deploy.py"
        self.script.write_text(DEPLOY)
        self.queue = f"shutdown-{uuid.uuid4().hex[:8]}"

    def input(self) -> dict[str, object]:
        argv = [sys.executable, str(self.script), str(self.state)]
        return {
            "platform": {"command": {"deploy": argv, "timeoutSeconds": 100}},
            "action": "deploy",
            "target": "127.0.0.1:18999",
            "version": "v2",
            "service": "checkout",
            "key": f"shutdown/{self.queue}",
        }

    def started(self, attempt: int) -> tuple[int, int] | None:
        """(worker PID, command PID) of the deploy's ``attempt`` (0-based), once it runs."""
        path = self.state / f"started.{attempt}"
        if not path.exists() or not path.read_text():
            return None
        worker, command = path.read_text().split()
        return int(worker), int(command)

    def finished(self, attempt: int) -> bool:
        return (self.state / f"finished.{attempt}").exists()

    def release(self) -> None:
        (self.state / "release").touch()


@pytest.fixture
def deploy(tmp_path):
    return Deploy(tmp_path)


async def start_deploy(deploy: Deploy, caller: ActivityCaller):
    return await caller.start(deploy.queue, "platform_action", deploy.input())


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_sigterm_lets_the_running_deploy_finish_within_the_grace_period(
    deploy, worker_process: StartWorker, activity_caller
):
    worker = worker_process(deploy.queue, grace_period=60)
    handle = await start_deploy(deploy, activity_caller)
    await poll(lambda: deploy.started(0) is not None, "the deploy running", 30)
    assert deploy.started(0)[0] == worker.process.pid

    worker.process.send_signal(signal.SIGTERM)
    await poll(lambda: worker.health("/readyz")[0] == 503, "readiness off", 10)
    assert worker.health("/readyz")[1]["reason"] == "shutting down: no longer polling"
    assert worker.process.poll() is None, "the worker must wait for its running deploy"

    deploy.release()
    assert worker.wait_exit(30) == 0, worker.output()
    result = await handle.result()
    assert (result["changed"], result["output"]) == (True, ["deployed"])
    assert deploy.finished(0)
    assert deploy.started(1) is None, "finished in its first attempt: no retry"


async def test_past_the_grace_period_the_deploy_is_cancelled_and_retried_by_another_worker(
    deploy, worker_process: StartWorker, activity_caller
):
    first = worker_process(deploy.queue, grace_period=1)
    handle = await start_deploy(deploy, activity_caller)
    await poll(lambda: deploy.started(0) is not None, "the deploy running", 30)
    _, command = deploy.started(0)

    first.process.send_signal(signal.SIGTERM)
    assert first.wait_exit(30) == 0, first.output()
    assert not deploy.finished(0)
    await poll(lambda: not alive(command), "the cancelled deploy's command killed", 10)

    second = worker_process(deploy.queue)
    await poll(lambda: deploy.started(1) is not None, "the deploy retried", 30)
    assert deploy.started(1)[0] == second.process.pid
    deploy.release()
    result = await handle.result()
    assert result["output"] == ["deployed"]
    assert deploy.finished(1)


async def test_a_second_signal_exits_at_once_without_waiting_for_the_deploy(
    deploy, worker_process: StartWorker, activity_caller
):
    worker = worker_process(deploy.queue, grace_period=60)
    await start_deploy(deploy, activity_caller)
    await poll(lambda: deploy.started(0) is not None, "the deploy running", 30)

    worker.process.send_signal(signal.SIGTERM)
    await poll(lambda: worker.health("/readyz")[0] == 503, "readiness off", 10)
    _, command = deploy.started(0)
    worker.process.send_signal(signal.SIGTERM)
    assert worker.wait_exit(10) == 128 + signal.SIGTERM
    assert '"commands_killed": 1' in worker.output()
    await poll(lambda: not alive(command), "the deploy's command killed with the worker", 5)
    assert not deploy.finished(0)
