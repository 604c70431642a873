"""Command platform: every action is a templated argv run on the worker (ssh to a VM, a script).

    platform:
      command:
        deploy:  [ssh, "{host}", sudo, /opt/app/deploy.sh, "{version}"]
        current: [ssh, "{host}", cat, /opt/app/current-version]
        restart: [ssh, "{host}", sudo, systemctl, restart, "{service}"]

Placeholders are ``{host}``, ``{port}``, ``{service}`` and, in ``deploy`` only, ``{version}``;
``{{`` and ``}}`` are literal braces. Each is one argv element: nothing goes through a shell.

``current`` prints the version running on stdout and exits 0 (the last non-empty line counts,
so a login banner does not); empty output or exit 3 (LSB's "program is not running") means
nothing runs; any other exit is a failure. With ``current`` configured every action is
checked before and after: ``deploy`` of the running version, ``start`` of a running target
and ``stop`` of a stopped one are no-ops (``changed=False``), and an action whose command
succeeded but left the target in another state raises ``PlatformVerifyFailed``. Without
``current`` every action runs its command and reports ``changed=True``.

Commands run in their own process group (see :mod:`activities.platforms.process`); one
that outlives ``timeoutSeconds`` is killed with its group and raises
``PlatformCommandTimedOut``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from string import Formatter
from typing import Annotated, Final

import structlog
from pydantic import AfterValidator, Field
from temporalio.exceptions import ApplicationError

from activities.errors import (
    INVALID_SPEC,
    PLACEHOLDER_MISSING,
    PLATFORM_COMMAND_FAILED,
    PLATFORM_COMMAND_TIMED_OUT,
    PLATFORM_VERIFY_FAILED,
    failure,
)
from activities.model import Model, PositiveSeconds
from activities.platforms.base import Action, ActionResult, Target
from activities.platforms.process import CommandRun, run_command

log = structlog.get_logger()

# Not in activities/errors.py yet. All retryable: an unreachable host or a slow disk heals.

PLACEHOLDERS: Final = ("host", "port", "version", "service")
NOT_RUNNING_EXIT: Final = 3


def placeholders(arg: str) -> list[str]:
    """Placeholder names in one argv element; ``ValueError`` for anything but a known name."""
    try:
        parsed = list(Formatter().parse(arg))
    except ValueError as e:
        raise ValueError(f"{e} (write {{{{ or }}}} for a literal brace)") from None
    names = []
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in PLACEHOLDERS:
            raise ValueError(f"unknown placeholder {{{name}}} (known: {', '.join(PLACEHOLDERS)})")
        if spec or conversion:
            raise ValueError(f"{{{name}}} takes no conversion or format spec")
        names.append(name)
    return names


def render(argv: Sequence[str], values: Mapping[str, str | None], field: str) -> list[str]:
    """``argv`` with placeholders filled in; ``PlaceholderMissing`` when one has no value."""
    rendered = []
    for index, arg in enumerate(argv):
        parts = []
        for literal, name, _spec, _conversion in Formatter().parse(arg):
            parts.append(literal)
            if name is not None:
                value = values.get(name)
                if value is None:
                    raise failure(PLACEHOLDER_MISSING, f"{field}[{index}]: {{{name}}} has no value")
                parts.append(value)
        rendered.append("".join(parts))
    return rendered


def _any_placeholder(arg: str) -> str:
    placeholders(arg)
    return arg


def _no_version(arg: str) -> str:
    if "version" in placeholders(arg):
        raise ValueError("{version} is only known to deploy")
    return arg


# Validated per element, so an error names it: ``stop[3]: {version} is only known to deploy``.
DeployArgv = Annotated[list[Annotated[str, AfterValidator(_any_placeholder)]], Field(min_length=1)]
Argv = Annotated[list[Annotated[str, AfterValidator(_no_version)]], Field(min_length=1)]


class CommandPlatformSpec(Model):
    """Argv templates per action; only ``deploy`` is required. ``env`` must hold no secrets:
    it is part of the workflow's input and history (its values are never logged)."""

    deploy: DeployArgv
    start: Argv | None = None
    stop: Argv | None = None
    restart: Argv | None = None
    current: Argv | None = None
    timeout_seconds: PositiveSeconds = 300.0
    env: dict[str, str] = Field(default_factory=dict)
    workdir: str | None = None


class CommandPlatform:
    """Platform over the commands of a :class:`CommandPlatformSpec` for one service.

    ``progress`` receives the latest output line every second while a command
    runs, so the activity can heartbeat."""

    def __init__(
        self,
        spec: CommandPlatformSpec,
        service: str,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.spec = spec
        self.service = service
        self.progress = progress

    def deploy(self, target: Target, version: str) -> ActionResult:
        """Run ``version`` on ``target``; a no-op if ``current`` already reports it."""
        return self._act("deploy", target, lambda now: now == version, version)

    def start(self, target: Target) -> ActionResult:
        return self._act("start", target, lambda now: now is not None)

    def stop(self, target: Target) -> ActionResult:
        return self._act("stop", target, lambda now: now is None)

    def restart(self, target: Target) -> ActionResult:
        """Always runs the command; afterwards something must run."""
        return self._act("restart", target, lambda now: now is not None, check_first=False)

    def current(self, target: Target) -> str | None:
        """The version ``current`` prints, or None when it reports that nothing runs."""
        if self.spec.current is None:
            raise failure(INVALID_SPEC, "command platform has no 'current' command")
        run = self._run("current", self.spec.current, target, allowed=(0, NOT_RUNNING_EXIT))
        lines = [line.strip() for line in run.stdout.splitlines() if line.strip()]
        return lines[-1] if lines and run.returncode == 0 else None

    def _act(
        self,
        action: Action,
        target: Target,
        done: Callable[[str | None], bool],
        version: str | None = None,
        check_first: bool = True,
    ) -> ActionResult:
        """Skip if ``current`` says ``done`` already, run the command, check ``done`` after."""
        started = time.monotonic()
        command: list[str] | None = getattr(self.spec, action)
        if command is None:
            raise failure(INVALID_SPEC, f"command platform has no {action!r} command")
        verify = self.spec.current is not None
        if verify and check_first:
            now = self.current(target)
            if done(now):
                already = f"{now} already running" if now else "nothing running"
                return _result(action, target, False, [already], started)
        run = self._run(action, command, target, version)
        if verify:
            now = self.current(target)
            if not done(now):
                head = f"{action} {target}: the command succeeded but 'current' reports"
                raise _error(PLATFORM_VERIFY_FAILED, f"{head} {now or 'nothing running'}", run)
        return _result(action, target, True, run.output, started)

    def _run(
        self,
        action: str,
        template: Sequence[str],
        target: Target,
        version: str | None = None,
        allowed: tuple[int, ...] = (0,),
    ) -> CommandRun:
        values = {"host": target.host, "port": str(target.port), "service": self.service}
        argv = render(template, {**values, "version": version}, action)
        program = os.path.basename(argv[0])
        try:
            run = run_command(
                argv,
                self.spec.timeout_seconds,
                env={**os.environ, **self.spec.env},
                cwd=self.spec.workdir,
                progress=self.progress,
            )
        except OSError as e:
            raise _error(
                PLATFORM_COMMAND_FAILED, f"{action} {target}: cannot run {argv[0]}: {e}"
            ) from e
        log.info(
            "platform_command",
            action=action,
            target=str(target),
            program=program,
            returncode=run.returncode,
            timed_out=run.timed_out,
            duration_ms=run.duration_ms,
        )
        if run.timed_out:
            limit = f"{self.spec.timeout_seconds:g}s"
            head = f"{action} {target}: {program} timed out after {limit} and was killed"
            raise _error(PLATFORM_COMMAND_TIMED_OUT, head, run)
        if run.returncode not in allowed:
            head = f"{action} {target}: {program} exited {run.returncode}"
            raise _error(PLATFORM_COMMAND_FAILED, head, run)
        return run


def _result(
    action: Action, target: Target, changed: bool, output: list[str], started: float
) -> ActionResult:
    duration_ms = round((time.monotonic() - started) * 1000, 1)
    return ActionResult(
        action=action, target=str(target), changed=changed, output=output, duration_ms=duration_ms
    )


def _error(error_type: str, head: str, run: CommandRun | None = None) -> ApplicationError:
    """A retryable failure; its message ends with the last output lines and its details
    carry the whole tail (``{"exitCode", "timedOut", "output"}``) for the workflow."""
    if run is None:
        return ApplicationError(head, type=error_type, non_retryable=False)
    last = "\n".join(run.output[-5:])
    message = (f"{head}:\n{last}" if last else head)[:2000]
    details = {"exitCode": run.returncode, "timedOut": run.timed_out, "output": run.output}
    return ApplicationError(message, details, type=error_type, non_retryable=False)
