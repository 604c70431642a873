"""Command-platform specs (templating, validation), the platform one-of, and the platform's
decisions (skip, run, verify) over a fake command runner: no process is started here."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from temporalio.exceptions import ApplicationError

from activities.argv import render
from activities.clients import Clients
from activities.errors import INVALID_SPEC, PLACEHOLDER_MISSING
from activities.platforms.activities import PlatformActivities
from activities.platforms.base import Target
from activities.platforms.command import PLATFORM_VERIFY_FAILED, CommandPlatform
from activities.platforms.factory import platform_for
from activities.platforms.models import PlatformActionInput
from activities.platforms.process import CommandRun
from activities.platforms.spec import CommandPlatformSpec, PlatformSpec
from workflows.core.spec import validation_problems

PLATFORMS = PlatformActivities(Clients())

SSH_DEPLOY = ["ssh", "{host}", "sudo", "/opt/app/deploy.sh", "{version}"]
VALUES = {"host": "10.0.0.5", "port": "8080", "version": "v2.4.1", "service": "checkout"}


def problems(**spec: Any) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        CommandPlatformSpec.model_validate(spec)
    return validation_problems(caught.value)


def test_every_placeholder_is_filled_in_place():
    argv = ["deploy", "--url=http://{host}:{port}/", "{service}@{version}", "{host}"]

    assert render(argv, VALUES, "deploy") == [
        "deploy",
        "--url=http://10.0.0.5:8080/",
        "checkout@v2.4.1",
        "10.0.0.5",
    ]


def test_doubled_braces_are_literal_braces():
    argv = ["sh", "-c", "echo {{ok}} {version} }}{{"]

    assert render(argv, VALUES, "deploy") == ["sh", "-c", "echo {ok} v2.4.1 }{"]
    CommandPlatformSpec(deploy=argv)  # and the spec accepts them


def test_rendering_leaves_values_as_single_arguments():
    values = {**VALUES, "version": "v1; rm -rf / {host}"}

    assert render(SSH_DEPLOY, values, "deploy")[-1] == "v1; rm -rf / {host}"


def test_unknown_placeholder_names_the_field_and_index():
    assert problems(deploy=["ssh", "{host}", "sudo", "{hots}"]) == [
        "deploy[3]: unknown placeholder {hots} (known: host, port, version, service)"
    ]
    assert problems(deploy=["true"], current=["cat", "/srv/{servce}/VERSION"]) == [
        "current[1]: unknown placeholder {servce} (known: host, port, version, service)"
    ]


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ("{}", "deploy[1]: unknown placeholder {} (known: host, port, version, service)"),
        ("{0}", "deploy[1]: unknown placeholder {0} (known: host, port, version, service)"),
        (
            "{version.__class__}",
            "deploy[1]: unknown placeholder {version.__class__} (known: host, port, version, service)",
        ),
        ("{port:05}", "deploy[1]: {port} takes no conversion or format spec"),
        ("{host!r}", "deploy[1]: {host} takes no conversion or format spec"),
        (
            "{host",
            "deploy[1]: expected '}' before end of string (write {{ or }} for a literal brace)",
        ),
        (
            "a}b",
            "deploy[1]: Single '}' encountered in format string (write {{ or }} for a literal brace)",
        ),
    ],
)
def test_only_plain_known_placeholders_are_accepted(arg: str, message: str):
    assert problems(deploy=["run", arg]) == [message]


def test_version_is_only_a_placeholder_of_deploy():
    assert problems(deploy=SSH_DEPLOY, stop=["ssh", "{host}", "stop", "{version}"]) == [
        "stop[3]: {version} is only known to deploy"
    ]


def test_deploy_without_a_version_is_a_non_retryable_placeholder_error():
    with pytest.raises(ApplicationError) as caught:
        render(SSH_DEPLOY, {**VALUES, "version": None}, "deploy")

    assert caught.value.type == PLACEHOLDER_MISSING
    assert caught.value.non_retryable
    assert caught.value.message == "deploy[4]: {version} has no value"


@pytest.mark.parametrize(
    ("action", "target", "version", "message"),
    [
        ("deploy", "127.0.0.1:18001", None, "deploy needs a version"),
        ("stop", "-oProxyCommand=x:22", None, "target: '-oProxyCommand=x:22' is not host:port"),
    ],
)
def test_activity_rejects_bad_input_before_running_anything(
    action: str, target: str, version: str | None, message: str
):
    spec = {"command": {"deploy": ["false"]}}
    fields = {"action": action, "target": target, "version": version, "service": "s", "key": "k"}
    with pytest.raises(ApplicationError) as caught:
        PLATFORMS.platform_action(PlatformActionInput.model_validate({"platform": spec, **fields}))

    assert (caught.value.type, caught.value.message) == (INVALID_SPEC, message)
    assert caught.value.non_retryable


def test_commands_must_not_be_empty_and_timeout_must_be_positive():
    assert problems(deploy=[], timeoutSeconds=0) == [
        "deploy: List should have at least 1 item after validation, not 0",
        "timeoutSeconds: Input should be greater than 0",
    ]


def test_spec_reads_camel_case_and_rejects_unknown_fields():
    spec = CommandPlatformSpec.model_validate(
        {"deploy": SSH_DEPLOY, "timeoutSeconds": 60, "env": {"DEPLOY_ENV": "prod"}}
    )

    assert spec.timeout_seconds == 60
    assert spec.model_dump()["timeoutSeconds"] == 60
    assert problems(deploy=SSH_DEPLOY, timeout=60) == ["timeout: Extra inputs are not permitted"]


def test_platform_is_exactly_one_kind():
    spec = PlatformSpec.model_validate({"command": {"deploy": SSH_DEPLOY}})

    assert spec.kind == "command"
    assert isinstance(platform_for(spec, "checkout", Clients()), CommandPlatform)
    with pytest.raises(
        ValidationError, match="platform: set exactly one of command, kubernetes; got none"
    ):
        PlatformSpec()
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        PlatformSpec.model_validate({"nomad": {"job": "checkout"}})


def test_action_input_round_trips_as_json():
    platform = {"command": {"deploy": SSH_DEPLOY, "timeoutSeconds": 5}}
    fields = {"action": "deploy", "target": "10.0.0.5:8080", "version": "v2", "key": "wf/1"}
    input = PlatformActionInput.model_validate({"platform": platform, "service": "c", **fields})

    assert PlatformActionInput.model_validate_json(input.model_dump_json()) == input
    with pytest.raises(ValidationError, match="action"):
        PlatformActionInput.model_validate({**input.model_dump(), "action": "scale"})


@pytest.mark.parametrize(
    ("address", "host", "port"),
    [
        ("127.0.0.1:18001", "127.0.0.1", 18001),
        ("vm-3.example.com:80", "vm-3.example.com", 80),
        ("[::1]:8080", "[::1]", 8080),
    ],
)
def test_target_parses_host_and_port(address: str, host: str, port: int):
    target = Target.parse(address)

    assert (target.host, target.port) == (host, port)
    assert str(target) == address


@pytest.mark.parametrize(
    "address", ["vm-3", "vm-3:", ":80", "vm-3:0", "vm-3:70000", "-oProxyCommand=x:22", "a b:80"]
)
def test_target_rejects_what_is_not_host_port(address: str):
    with pytest.raises(ValueError, match=r"host:port|port must be"):
        Target.parse(address)


class FakeHost:
    """Stands in for ``run_command`` (``CommandPlatform(run=...)``): commands named deploy/start/stop/restart/current act on
    one pretend host. ``sticks=False`` makes deploys exit 0 yet change nothing."""

    def __init__(self, running: str | None = None, sticks: bool = True) -> None:
        self.running = running
        self.sticks = sticks
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str], timeout_s: float, **_: Any) -> CommandRun:
        self.calls.append(argv)
        verb = argv[0]
        if verb == "deploy" and self.sticks:
            self.running = argv[1]
        elif verb == "stop":
            self.running = None
        elif verb in ("start", "restart"):
            self.running = self.running or "v0"
        if verb == "current" and self.running is None:
            return CommandRun(3, [], "", False, 1.0)
        stdout = f"{self.running}\n" if verb == "current" else ""
        return CommandRun(0, [f"{verb} done"], stdout, False, 1.0)

    @property
    def verbs(self) -> list[str]:
        return [argv[0] for argv in self.calls]


HOST = Target.parse("10.0.0.5:8080")
VERBS = {verb: [verb] for verb in ("start", "stop", "restart", "current")}


def fake_platform(host: FakeHost, **spec: Any) -> CommandPlatform:
    return CommandPlatform(
        CommandPlatformSpec(deploy=["deploy", "{version}"], **spec), "checkout", run=host
    )


def test_deploy_skips_a_running_version_and_checks_a_new_one():
    host = FakeHost(running="v1")
    platform = fake_platform(host, **VERBS)

    same = platform.deploy(HOST, "v1")
    new = platform.deploy(HOST, "v2")

    assert (same.changed, same.output) == (False, ["v1 already running"])
    assert (new.changed, new.output) == (True, ["deploy done"])
    assert host.verbs == ["current", "current", "deploy", "current"]


def test_deploy_that_current_does_not_confirm_is_a_retryable_verify_failure():
    platform = fake_platform(FakeHost(running="v1", sticks=False), **VERBS)

    with pytest.raises(ApplicationError) as caught:
        platform.deploy(HOST, "v2")

    assert caught.value.type == PLATFORM_VERIFY_FAILED
    assert not caught.value.non_retryable
    assert caught.value.message == (
        "deploy 10.0.0.5:8080: the command succeeded but 'current' reports v1:\ndeploy done"
    )


def test_start_and_stop_change_only_what_differs():
    host = FakeHost(running=None)
    platform = fake_platform(host, **VERBS)

    assert [platform.stop(HOST).changed, platform.start(HOST).changed] == [False, True]
    assert [platform.start(HOST).changed, platform.stop(HOST).changed] == [False, True]
    assert platform.restart(HOST).changed  # always runs; then something must run
    assert host.verbs.count("restart") == 1


def test_without_current_every_action_runs_and_reports_a_change():
    host = FakeHost(running="v1")
    platform = fake_platform(host, stop=["stop"])

    assert platform.deploy(HOST, "v1").changed
    assert platform.stop(HOST).changed
    assert host.verbs == ["deploy", "stop"]
    with pytest.raises(ApplicationError, match="command platform has no 'start' command") as caught:
        platform.start(HOST)
    assert caught.value.type == INVALID_SPEC


@pytest.mark.parametrize(
    ("returncode", "stdout", "expected"),
    [
        (0, "v7\n", "v7"),
        (0, "Welcome to vm-3\n\n  v7  \n\n", "v7"),  # the last non-empty line counts
        (0, "", None),  # empty output: nothing runs
        (3, "checkout is stopped\n", None),  # LSB "program is not running"
    ],
)
def test_current_reads_the_last_stdout_line_or_none(
    returncode: int, stdout: str, expected: str | None
):
    platform = CommandPlatform(
        CommandPlatformSpec(deploy=["true"], current=["current"]),
        "x",
        run=lambda *a, **k: CommandRun(returncode, [], stdout, False, 1.0),
    )

    assert platform.current(HOST) == expected
