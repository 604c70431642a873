"""The arguments of `deployflow rollout|pipeline|rollback|history|incident|monitor|router|ui-views`.

Every CLI call builds the whole parser, so this module imports nothing but argparse: each
command names its function as ``module:function`` (a ``Handler``), imported only when that
command runs. A command that reads a spec imports the spec vocabulary; one that only talks
to Temporal imports the SDK's client and no more.

A group of subcommands (``rollout``, ``pipeline``, ``incident``, ``monitor``, ``router``)
is built in full (``full=True``) when it is the command being run or the parser is wanted
whole: otherwise the top-level parser needs only its name and help (all of them: ~5 ms).

Defaults the dispatcher reads (``starters/cli.py``): ``needs_client=False`` (runs without
Temporal), ``prepare`` (validates input before connecting), ``plain_payloads=True``
(payloads are read and sent as plain JSON: no pydantic, no model modules) and
``identity_from`` (the argument that names the client identity).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from starters import rehearsal_commands
from starters.handler import Handler

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

ROLLOUT_VERBS = (
    ("promote", "finish the current pause and go on (--full: straight to 100 %%)"),
    ("pause", "hold before the next step"),
    ("resume", "continue a paused rollout"),
    ("abort", "stop and send all traffic back to stable"),
)
INCIDENT_VERBS = (
    ("acknowledge", "I am on it: stop escalating (PagerDuty is acknowledged too)"),
    ("resolve", "resolve now: pages resolved, Slack thread updated"),
    ("escalate", "page the next escalation level now"),
    ("approve", "decide the pending approval step (--reject to refuse)"),
)


def _add_lint(cmds: Subparsers, text: str, module: str) -> argparse.ArgumentParser:
    """``lint FILE [--json]``: validate a spec file, no Temporal needed."""
    p = cmds.add_parser("lint", help=text)
    p.add_argument("file", metavar="FILE")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=Handler(f"{module}:lint"), needs_client=False)
    return p


def _add_templates(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--templates",
        metavar="PATH",
        action="append",
        default=[],
        help="AnalysisTemplates kept apart from FILE: a YAML file, or a directory of them "
        "(repeatable)",
    )


def add_rollout(subparsers: Subparsers, *, full: bool = True) -> None:
    rollout = subparsers.add_parser("rollout", help="start, watch and steer rollouts")
    if not full:
        return
    cmds = rollout.add_subparsers(dest="rollout_command", required=True, metavar="COMMAND")

    lint = _add_lint(cmds, "validate a spec without starting anything", "starters.rollout_start")
    _add_templates(lint)

    p = cmds.add_parser("start", help="start a rollout from a spec file")
    p.add_argument("file", metavar="FILE")
    _add_templates(p)
    p.add_argument("--wait", action="store_true", help="stream progress; exit code = outcome")
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    p.add_argument(
        "--commit-time",
        metavar="ISO",
        help="when the change was committed (git log -1 --format=%%cI): the DORA report's "
        "lead time for changes",
    )
    p.set_defaults(
        func=Handler("starters.rollout_start:start"),
        prepare=Handler("starters.rollout_start:prepare_start"),
    )

    rehearsal_commands.add_simulate(cmds)

    p = cmds.add_parser("status", help="phase, step, weights, analysis and timeline")
    _rollout_name(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=Handler("starters.rollouts:status"), plain_payloads=True)

    p = cmds.add_parser("list", help="running rollouts (--all: finished ones too)")
    p.add_argument("--all", action="store_true")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=Handler("starters.rollouts:list_rollouts"), plain_payloads=True)

    for name, text in ROLLOUT_VERBS:
        p = cmds.add_parser(name, help=text)
        _rollout_name(p)
        if name == "promote":
            p.add_argument("--full", action="store_true", help="skip all remaining steps")
        if name in ("abort", "pause"):
            p.add_argument("--reason", help="recorded in the timeline and history")
        p.set_defaults(func=Handler("starters.rollouts:verb"), verb=name, plain_payloads=True)


def _rollout_name(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="the service (or the workflow id)")
    parser.add_argument("--env", help="environment (needed when several are running)")


def add_pipeline(subparsers: Subparsers, *, full: bool = True) -> None:
    pipeline = subparsers.add_parser("pipeline", help="promote a version across environments")
    if not full:
        return
    cmds = pipeline.add_subparsers(dest="pipeline_command", required=True, metavar="COMMAND")

    _add_lint(cmds, "validate a pipeline spec", "starters.pipeline_start")

    p = cmds.add_parser("start", help="start a pipeline, or submit a newer version to it")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--version", help="the version to promote (default: spec.version)")
    p.add_argument("--wait", action="store_true", help="wait for the outcome; exit code = it")
    p.add_argument("--json", action="store_true")
    p.add_argument("--by", help="who submits (recorded)")
    p.set_defaults(
        func=Handler("starters.pipeline_start:start"),
        prepare=Handler("starters.pipeline_start:prepare_start"),
    )

    p = cmds.add_parser("status", help="stages, gates, approvals, queue")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=Handler("starters.pipelines:status"), plain_payloads=True)

    for decision in ("approve", "reject"):
        p = cmds.add_parser(decision, help=f"{decision} the open approval gate")
        p.add_argument("name", metavar="NAME")
        p.add_argument("--as", dest="approver", required=True, help="the approver's name")
        p.add_argument("--comment", help="recorded with the decision")
        p.add_argument("--stage", help="the environment whose gate this is (default: the open one)")
        p.set_defaults(
            func=Handler("starters.pipelines:decide"),
            decision=decision,
            identity_from="approver",
            plain_payloads=True,
        )


def add_rollback(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "rollback",
        help="emergency rollback of a service (or of a group: --scope) to its last good version",
    )
    p.add_argument("service", metavar="SERVICE", nargs="?", help="the service (or use --scope)")
    p.add_argument("--env", required=True, help="the environment")
    p.add_argument(
        "--scope",
        metavar="GROUP",
        help="every service whose spec.groups lists GROUP (all: every service), in parallel",
    )
    p.add_argument(
        "--canary-only",
        action="store_true",
        help="with --scope: only stop running rollouts; promoted versions stay",
    )
    p.add_argument("--to", metavar="VERSION", help="go back to this version")
    p.add_argument("--reason", help="recorded in history")
    p.add_argument(
        "--wait", action="store_true", help="with --scope: stream progress; exit code = outcome"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(
        func=Handler("starters.scope_rollback:command"),
        prepare=Handler("starters.scope_rollback:prepare"),
    )


def add_history(subparsers: Subparsers) -> None:
    p = subparsers.add_parser("history", help="finished rollouts and rollbacks, newest first")
    p.add_argument("service", metavar="SERVICE")
    p.add_argument("--env", help="only this environment")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=Handler("starters.history:history"), plain_payloads=True)


def add_incident(subparsers: Subparsers, *, full: bool = True) -> None:
    incident = subparsers.add_parser("incident", help="see and steer incident runbooks")
    if not full:
        return
    cmds = incident.add_subparsers(dest="incident_command", required=True, metavar="COMMAND")

    p = cmds.add_parser("list", help="open incidents (--all: resolved ones too)")
    p.add_argument("--all", action="store_true")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=Handler("starters.incidents:list_incidents"), plain_payloads=True)

    p = cmds.add_parser("status", help="phase, pages, timeline, time to ack and resolve")
    p.add_argument("name", metavar="NAME", help="incident id, id prefix, or service")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=Handler("starters.incidents:status"), plain_payloads=True)

    for name, text in INCIDENT_VERBS:
        aliases = ["ack"] if name == "acknowledge" else []
        p = cmds.add_parser(name, help=text, aliases=aliases)
        p.add_argument("name", metavar="NAME", help="incident id, id prefix, or service")
        p.add_argument("--reason", help="recorded in the timeline and history")
        if name == "approve":
            p.add_argument("--reject", action="store_true", help="refuse: the step is skipped")
        p.set_defaults(func=Handler("starters.incidents:verb"), verb=name, plain_payloads=True)


def add_monitor(subparsers: Subparsers, *, full: bool = True) -> None:
    monitor = subparsers.add_parser("monitor", help="scheduled health, SLO and memory monitors")
    if not full:
        return
    cmds = monitor.add_subparsers(dest="monitor_command", required=True, metavar="COMMAND")

    _add_lint(
        cmds, "validate a monitor file (ServiceMonitor + Runbooks)", "starters.monitor_schedule"
    )

    p = cmds.add_parser("schedule", help="create the monitor's schedule, or update it")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--json", action="store_true")
    p.set_defaults(
        func=Handler("starters.monitor_schedule:schedule"),
        prepare=Handler("starters.monitor_schedule:prepare_schedule"),
    )

    p = cmds.add_parser("list", help="monitors: paused or not, next run, last result")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=Handler("starters.monitors:list_monitors"), plain_payloads=True)

    p = cmds.add_parser("status", help="last run's findings; the self-healer's restart budget")
    p.add_argument("name", metavar="NAME", help="metadata name or schedule id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=Handler("starters.monitors:status"), plain_payloads=True)

    for verb, text in (
        ("pause", "stop scheduling runs (a run going on finishes)"),
        ("unpause", "schedule runs again"),
        ("trigger", "run the monitor now"),
        ("delete", "delete the monitor's schedule"),
    ):
        p = cmds.add_parser(verb, help=text)
        p.add_argument("name", metavar="NAME", help="metadata name or schedule id")
        if verb in ("pause", "unpause"):
            p.add_argument("--note", help="why (shown on the schedule)")
        p.set_defaults(func=Handler(f"starters.monitors:{verb}"), plain_payloads=True)


def add_router(subparsers: Subparsers, *, full: bool = True) -> None:
    router = subparsers.add_parser("router", help="take over or write a VM router's file")
    if not full:
        return
    cmds = router.add_subparsers(dest="router_command", required=True, metavar="COMMAND")
    for action, text in (
        ("adopt", "take over a hand-written NGINX upstream / HAProxy backend file"),
        ("init", "write a fresh router file at stable 100 %% where there is none"),
    ):
        p = cmds.add_parser(action, help=text)
        p.add_argument("file", metavar="FILE", help="the rollout spec naming the router")
        p.add_argument("--apply", action="store_true", help="write it (default: only show)")
        p.add_argument(
            "--host",
            metavar="NAME",
            help="for a router with instances: this load balancer's name (its files, commands)",
        )
        p.add_argument("--json", action="store_true", help="machine-readable output")
        p.set_defaults(func=Handler("starters.routers:run"), action=action, needs_client=False)


def add_ui_views(subparsers: Subparsers) -> None:
    p = subparsers.add_parser("ui-views", help="Temporal UI views that tell rollout outcomes apart")
    p.add_argument("--service", help="only this service")
    p.add_argument("--env", help="only this environment")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=Handler("starters.ui_views:ui_views"), needs_client=False)
