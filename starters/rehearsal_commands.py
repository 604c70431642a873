"""The arguments of `deployflow analysis run` and `deployflow rollout simulate`: trying
analysis and a whole rollout before they decide anything.

Imports nothing but argparse (every CLI call builds the whole parser); each command names
its function as ``module:function`` and imports it when it runs. Neither needs a Temporal
server (``simulate`` starts its own, with time skipping).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from starters.handler import Handler

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


def add_analysis(subparsers: Subparsers, *, full: bool = True) -> None:
    analysis = subparsers.add_parser("analysis", help="try analysis templates against live data")
    if not full:  # another command is being run: its name and help are enough
        return
    cmds = analysis.add_subparsers(dest="analysis_command", required=True, metavar="COMMAND")
    p = cmds.add_parser(
        "run",
        help="measure a template's metrics now and print the phase Argo would give",
        description="Measure every metric of the templates now (no workflow, no Temporal) and "
        "print each measurement and the phase. Exit code: 0 Successful, 1 Failed, 3 Error, "
        "4 Inconclusive, 2 invalid input.",
    )
    p.add_argument("file", metavar="FILE", help="a rollout spec, or a file of AnalysisTemplates")
    p.add_argument(
        "--template",
        action="append",
        default=[],
        metavar="NAME",
        help="a template to run (repeatable; default: every template in FILE)",
    )
    p.add_argument(
        "--arg", action="append", default=[], metavar="NAME=VALUE", help="an arg (repeatable)"
    )
    p.add_argument(
        "--count",
        type=int,
        default=1,
        metavar="N",
        help="measurements per metric, one interval apart (default 1)",
    )
    p.add_argument(
        "--interval",
        metavar="DURATION",
        help="time between two measurements (default: each metric's interval)",
    )
    for flag, what in (
        ("--service", "{{service}}"),
        ("--environment", "{{environment}}"),
        ("--version", "{{version}}, the canary"),
        ("--stable-version", "{{stableVersion}}, the baseline"),
    ):
        p.add_argument(flag, help=f"{what} (default: the rollout spec's)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=Handler("starters.analysis_run:run"), needs_client=False)


def add_simulate(rollout_commands: Subparsers) -> None:
    p = rollout_commands.add_parser(
        "simulate",
        help="rehearse a spec in the real workflow with scripted metrics, in seconds",
        description="Run FILE's rollout in the real workflow under Temporal time skipping, "
        "with routers and platforms replaced by recording stand-ins and metrics scripted "
        "by SCENARIO. Prints the decision timeline; exit code 0 when it would be promoted, "
        "1 when rolled back or aborted, 2 for invalid input.",
    )
    p.add_argument("file", metavar="FILE", help="the rollout spec")
    p.add_argument(
        "--metrics",
        required=True,
        metavar="SCENARIO",
        help="YAML: each metric's value over time (see docs/analysis.md)",
    )
    p.add_argument("--json", action="store_true", help="the result and timeline as JSON")
    p.set_defaults(func=Handler("starters.simulation.command:run"), needs_client=False)
