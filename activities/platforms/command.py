"""Command platform: every action is a templated argv run on the worker (ssh to a VM, a script).

The spec (:mod:`activities.platforms.spec`) names an argv per action:

    platform:
      command:
        deploy:  [ssh, "{host}", sudo, /opt/app/deploy.sh, "{version}"]
        current: [ssh, "{host}", cat, /opt/app/current-version]

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
from collections.abc import Callable, Sequence
from typing import Final

import structlog

from activities.argv import render
from activities.errors import (
    INVALID_SPEC,
    PLATFORM_COMMAND_FAILED,
    PLATFORM_COMMAND_TIMED_OUT,
    PLATFORM_VERIFY_FAILED,
    failure,
)
from activities.log_fields import ms_since
from activities.platforms.base import Action, ActionResult, Target
from activities.platforms.process import CommandRun, RunCommand, command_failure, run_command
from activities.platforms.spec import CommandPlatformSpec

log = structlog.get_logger()

NOT_RUNNING_EXIT: Final = 3


class CommandPlatform:
    """Platform over the commands of a :class:`CommandPlatformSpec` for one service.

    ``progress`` receives the latest output line every second while a command
    runs, so the activity can heartbeat; ``run`` runs a command (tests pass a pretend
    host)."""

    def __init__(
        self,
        spec: CommandPlatformSpec,
        service: str,
        progress: Callable[[str], None] | None = None,
        run: RunCommand = run_command,
    ) -> None:
        self.spec = spec
        self.service = service
        self.progress = progress
        self.run = run

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
                raise command_failure(
                    PLATFORM_VERIFY_FAILED, f"{head} {now or 'nothing running'}", run
                )
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
            run = self.run(
                argv,
                self.spec.timeout_seconds,
                env={**os.environ, **self.spec.env},
                cwd=self.spec.workdir,
                progress=self.progress,
            )
        except OSError as e:
            raise command_failure(
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
            raise command_failure(PLATFORM_COMMAND_TIMED_OUT, head, run)
        if run.returncode not in allowed:
            head = f"{action} {target}: {program} exited {run.returncode}"
            raise command_failure(PLATFORM_COMMAND_FAILED, head, run)
        return run


def _result(
    action: Action, target: Target, changed: bool, output: list[str], started: float
) -> ActionResult:
    duration_ms = ms_since(started)
    return ActionResult(
        action=action, target=str(target), changed=changed, output=output, duration_ms=duration_ms
    )
