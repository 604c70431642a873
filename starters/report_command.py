"""`deployflow report`'s arguments; the report itself (Temporal, matplotlib) is imported only
when it runs, so other commands do not pay for it."""

from __future__ import annotations

import argparse

from starters.handler import Handler


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "report",
        help="DORA figures: deployment frequency, lead time, change failure rate, restore time",
        epilog="Lead time needs the commit time at start: rollout start --commit-time ISO "
        "(git log -1 --format=%%cI). Bands: the 2023 State of DevOps report's.",
    )
    p.add_argument("--service", help="only this service")
    p.add_argument("--env", help="only this environment (e.g. production)")
    p.add_argument("--since", default="30d", help="period: 30d, 12w, 48h, or a date (2026-01-01)")
    p.add_argument(
        "--failure-window",
        default="24h",
        metavar="DURATION",
        help="an incident or emergency rollback this soon after a promotion fails it (24h)",
    )
    p.add_argument("--format", choices=("text", "json", "html"), default="text")
    p.add_argument("--out", metavar="FILE", help="write the report here (default: stdout)")
    p.set_defaults(func=Handler("starters.report:run"))
