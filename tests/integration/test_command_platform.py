"""CommandPlatform running real commands: the local host agent (examples/demo/host.py) playing
one VM per 127.0.0.1 port, and shell snippets that fail, hang or print odd output."""

from __future__ import annotations

import os
import signal
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import ActivityEnvironment

from activities.clients import Clients
from activities.errors import (
    PLATFORM_COMMAND_FAILED,
    PLATFORM_COMMAND_TIMED_OUT,
    PLATFORM_VERIFY_FAILED,
)
from activities.platforms import process
from activities.platforms.activities import PlatformActivities
from activities.platforms.base import Target
from activities.platforms.command import CommandPlatform
from activities.platforms.models import CurrentVersionInput, PlatformActionInput
from activities.platforms.spec import CommandPlatformSpec, PlatformSpec
from tests.fixtures.parts import free_port

pytestmark = pytest.mark.integration

PLATFORMS = PlatformActivities(Clients())

HOST_AGENT = Path(__file__).resolve().parents[2] / "examples" / "demo" / "host.py"


def host_spec(state_dir: Path) -> CommandPlatformSpec:
    """The spec a user of the demo writes, with the state kept in the test's temp dir."""
    agent = [sys.executable, str(HOST_AGENT), "--state-dir", str(state_dir)]
    port = ["--port", "{port}"]
    return CommandPlatformSpec(
        deploy=[*agent, "deploy", *port, "--version", "{version}", "--service", "{service}"],
        start=[*agent, "start", *port],
        stop=[*agent, "stop", *port],
        restart=[*agent, "restart", *port],
        current=[*agent, "current", *port],
        timeout_seconds=30,
    )


def shell(deploy: str, current: str | None = None, timeout: float = 10) -> CommandPlatform:
    spec = CommandPlatformSpec(
        deploy=["/bin/sh", "-c", deploy],
        current=None if current is None else ["/bin/sh", "-c", current],
        timeout_seconds=timeout,
    )
    return CommandPlatform(spec, "checkout")


def action_input(
    spec: CommandPlatformSpec, version: str | None = "v1", **fields: str
) -> PlatformActionInput:
    """A deploy of ``version`` to 127.0.0.1:9 unless ``fields`` say otherwise."""
    defaults = {"action": "deploy", "target": "127.0.0.1:9", "service": "checkout", "key": "wf/1"}
    return PlatformActionInput.model_validate(
        {"platform": {"command": spec}, "version": version, **defaults, **fields}
    )


def get(target: Target) -> str:
    with urllib.request.urlopen(f"http://{target}/", timeout=2) as response:
        body: bytes = response.read()
        return body.decode()


def recorded_pid(state_dir: Path, target: Target) -> int:
    return int((state_dir / f"{target.port}.pid").read_text())


def proc_stat(pid: int | str) -> tuple[str, int, list[str]] | None:
    """State, process group and argv of a process; None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[2]), argv


def live(pid: int | str) -> bool:
    """Running and not a zombie (PID 1 in a container may never reap orphans)."""
    stat = proc_stat(pid)
    return stat is not None and stat[0] != "Z"


def group_gone(pgid: int, within: float = 2.0) -> bool:
    """No live process left in group ``pgid`` (SIGKILL lands asynchronously: allow a moment)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        stats = (proc_stat(proc.name) for proc in Path("/proc").glob("[0-9]*"))
        if not any(stat and stat[0] != "Z" and stat[1] == pgid for stat in stats):
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    """The agent's state dir. At teardown every demo service on a port this test deployed to
    is stopped by its PID, recorded or not (a failed test may have lost track of one)."""
    hosts = tmp_path / "hosts"
    yield hosts
    ports = {f"--port {record.stem} " for record in hosts.glob("*.json")}
    for proc in Path("/proc").glob("[0-9]*"):
        command = " ".join((proc_stat(proc.name) or ("", 0, []))[2])
        if "demo_service.py" in command and any(port in command for port in ports):
            os.kill(int(proc.name), signal.SIGTERM)
            deadline = time.monotonic() + 5
            while live(proc.name) and time.monotonic() < deadline:
                time.sleep(0.05)
            if live(proc.name):
                os.kill(int(proc.name), signal.SIGKILL)


@pytest.fixture
def demo_host(state_dir: Path) -> CommandPlatform:
    return CommandPlatform(host_spec(state_dir), "checkout")


def test_deploy_runs_the_version_and_deploying_it_again_changes_nothing(
    demo_host: CommandPlatform, state_dir: Path
):
    target = Target(host="127.0.0.1", port=free_port())
    assert demo_host.current(target) is None

    first = demo_host.deploy(target, "v1")
    pid = recorded_pid(state_dir, target)
    again = demo_host.deploy(target, "v1")

    assert first.changed
    assert any("started checkout v1" in line for line in first.output)
    assert get(target) == "checkout v1\n"
    assert (again.changed, again.output) == (False, ["v1 already running"])
    assert recorded_pid(state_dir, target) == pid


def test_new_version_replaces_the_old_one_and_stop_start_restart_follow(
    demo_host: CommandPlatform, state_dir: Path
):
    target = Target(host="127.0.0.1", port=free_port())
    demo_host.deploy(target, "v1")
    v1_pid = recorded_pid(state_dir, target)

    assert demo_host.deploy(target, "v2").changed
    assert get(target) == "checkout v2\n"
    assert not live(v1_pid)

    stopped = demo_host.stop(target)
    assert stopped.changed
    assert demo_host.current(target) is None
    assert demo_host.stop(target).changed is False

    assert demo_host.start(target).changed
    assert demo_host.current(target) == "v2"
    assert demo_host.start(target).changed is False

    before = recorded_pid(state_dir, target)
    assert demo_host.restart(target).changed
    assert recorded_pid(state_dir, target) != before
    assert get(target) == "checkout v2\n"


def test_activities_drive_the_agent_and_heartbeat(state_dir: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(process, "PROGRESS_INTERVAL_S", 0.05)
    target = f"127.0.0.1:{free_port()}"
    platform = PlatformSpec(command=host_spec(state_dir))
    env = ActivityEnvironment()
    heartbeats: list[object] = []
    env.on_heartbeat = lambda *details: heartbeats.append(details)
    deploy = action_input(platform.command, "v3", target=target, service="payments")

    result = env.run(PLATFORMS.platform_action, deploy)
    current = CurrentVersionInput(platform=platform, target=target, service="payments", key="k")

    assert (result.action, result.target, result.changed) == ("deploy", target, True)
    assert get(Target.parse(target)) == "payments v3\n"
    assert env.run(PLATFORMS.current_version, current) == "v3"
    assert heartbeats
    assert all(len(details) == 1 and isinstance(details[0], str) for details in heartbeats)


def test_failing_command_raises_with_its_output():
    platform = shell("echo starting; echo boom >&2; exit 4")

    with pytest.raises(ApplicationError) as caught:
        platform.deploy(Target.parse("127.0.0.1:9"), "v1")

    error = caught.value
    assert error.type == PLATFORM_COMMAND_FAILED
    assert not error.non_retryable
    assert error.message.startswith("deploy 127.0.0.1:9: sh exited 4:\n")
    assert "boom" in error.message
    assert error.details[0]["exitCode"] == 4
    assert sorted(error.details[0]["output"]) == ["boom", "starting"]


def test_command_past_its_timeout_is_killed_with_its_process_group(tmp_path: Path):
    leader = tmp_path / "leader.pid"
    platform = shell(f"echo $$ > {leader}; echo waiting; sleep 30 & sleep 30", timeout=0.5)
    started = time.monotonic()

    with pytest.raises(ApplicationError) as caught:
        platform.deploy(Target.parse("127.0.0.1:9"), "v1")

    assert time.monotonic() - started < 3
    assert caught.value.type == PLATFORM_COMMAND_TIMED_OUT
    assert "timed out after 0.5s and was killed:\nwaiting" in caught.value.message
    assert group_gone(int(leader.read_text()))


def test_cancelled_activity_kills_its_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(process, "PROGRESS_INTERVAL_S", 0.05)
    leader = tmp_path / "leader.pid"
    spec = CommandPlatformSpec(
        deploy=["/bin/sh", "-c", f"echo $$ > {leader}; echo started; sleep 30"]
    )
    env = ActivityEnvironment()
    heartbeats: list[object] = []

    def cancel_once_started(*details: object) -> None:
        heartbeats.append(details)
        if details == ("started",):  # the command's latest output line
            env.cancel()

    env.on_heartbeat = cancel_once_started

    with pytest.raises(CancelledError):
        env.run(PLATFORMS.platform_action, action_input(spec))

    assert heartbeats[-1] == ("started",)
    assert group_gone(int(leader.read_text()))


@pytest.mark.parametrize(
    ("platform", "message"),
    [
        (
            CommandPlatform(CommandPlatformSpec(deploy=["/nonexistent/deploy.sh"]), "checkout"),
            "deploy 127.0.0.1:9: cannot run /nonexistent/deploy.sh: [Errno 2]",
        ),
        (  # ssh failing in the check before the deploy
            shell("true", current="echo 'ssh: connect: refused' >&2; exit 255"),
            "current 127.0.0.1:9: sh exited 255:\nssh: connect: refused",
        ),
    ],
)
def test_unrunnable_or_failing_commands_are_retryable_failures(
    platform: CommandPlatform, message: str
):
    with pytest.raises(ApplicationError) as caught:
        platform.deploy(Target.parse("127.0.0.1:9"), "v1")

    assert caught.value.type == PLATFORM_COMMAND_FAILED
    assert not caught.value.non_retryable
    assert caught.value.message.startswith(message)


def test_env_reaches_the_command_but_not_the_logs():
    spec = CommandPlatformSpec(
        deploy=["/bin/sh", "-c", 'test "$RELEASE_CHANNEL" = "stable-7f3a"'],
        current=["/bin/sh", "-c", "echo v9"],
        env={"RELEASE_CHANNEL": "stable-7f3a"},
    )

    with capture_logs() as logs, pytest.raises(ApplicationError, match="reports v9"):
        PLATFORMS.platform_action(action_input(spec, "v10", key="wf/deploy"))

    assert "stable-7f3a" not in repr(logs)
    assert logs[-1]["event"] == "platform_action_failed"
    assert {k: logs[-1][k] for k in ("key", "action", "target", "version", "error")} == {
        "key": "wf/deploy",
        "action": "deploy",
        "target": "127.0.0.1:9",
        "version": "v10",
        "error": PLATFORM_VERIFY_FAILED,
    }
