"""`deployflow report`: DORA and delivery figures from Temporal, as text, JSON or HTML."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client

from starters.errors import EXIT_OK, UsageError
from starters.report import collect
from starters.report.dora import figures
from workers.config import TemporalConfig

_SPAN = re.compile(r"^(\d{1,5})([hdw])$")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


def parse_span(text: str, field: str, now: datetime) -> datetime:
    """``30d``/``12w``/``48h`` before ``now``, or a date (``2026-01-01``): the start."""
    match = _SPAN.match(text.strip())
    if match:
        return now - int(match.group(1)) * _UNITS[match.group(2)]
    try:
        start = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"{field}: expected 30d, 12w, 48h or a date, got {text[:40]!r}") from None
    start = start if start.tzinfo else start.replace(tzinfo=UTC)
    if start >= now:
        raise UsageError(f"{field}: {text} is not in the past")
    return start


async def build(
    client: Client,
    since: datetime,
    until: datetime,
    service: str | None = None,
    env: str | None = None,
    failure_window: timedelta = timedelta(hours=24),
    page_size: int = collect.PAGE_SIZE,
) -> dict[str, Any]:
    """The report's document for runs closed between ``since`` and ``until``."""
    deployments = await collect.deployments(client, since, service, env, page_size)
    rollbacks = await collect.rollbacks(client, since, service, env, page_size)
    incidents = await collect.incidents(client, since, service, env, page_size)
    document = figures(deployments, rollbacks, incidents, since, until, failure_window)
    return {"filters": {"service": service, "environment": env}, **document}


async def run(args: argparse.Namespace, config: TemporalConfig, client: Client) -> int:
    now = datetime.now(UTC)
    since = parse_span(args.since, "--since", now)
    window = now - parse_span(args.failure_window, "--failure-window", now)
    document = await build(client, since, now, args.service, args.env, window)
    if args.format == "json":
        text = json.dumps(document, indent=2) + "\n"
    elif args.format == "html":
        from starters.report import html

        title = " ".join(x for x in (args.service, args.env) if x)
        text = html.render(document, title)
    else:
        text = as_text(document)
    if args.out:
        try:
            await asyncio.to_thread(Path(args.out).write_text, text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--out {args.out}: {exc.strerror}") from None
        print(f"report written to {args.out}")
    else:
        print(text, end="")
    return EXIT_OK


def as_text(document: dict[str, Any]) -> str:
    from starters.report.html import duration

    f = document["figures"]
    cfr = f["changeFailureRate"]
    rate = "-" if cfr["rate"] is None else f"{cfr['rate']:.1%}"
    period = document["period"]
    df, lead, restore, detect = (
        f[k] for k in ("deploymentFrequency", "leadTime", "timeToRestore", "timeToDetect")
    )
    lines = [
        f"{period['from'][:10]} .. {period['to'][:10]} ({period['days']:g} days)",
        _line("deployment frequency", f"{df['perDay']:g}/day ({df['promoted']} promoted)",
              df["band"]),
        _line("lead time (median)",
              f"{duration(lead['medianSeconds'])} ({lead['count']} with a commit time)",
              lead["band"]),
        _line("change failure rate", f"{rate} ({cfr['failures']} of {cfr['deployments']})",
              cfr["band"]),
        _line("time to restore", f"{duration(restore['medianSeconds'])} ({restore['count']})",
              restore["band"]),
        _line("time to detect", f"{duration(detect['medianSeconds'])} ({detect['count']})", None),
    ]  # fmt: skip
    for row in document["byStrategy"]:
        lines.append(
            f"  {row['strategy']:<12} {row['deployments']:>4} rollouts, "
            f"{row['successRate']:.0%} promoted, median {duration(row['medianDurationSeconds'])}"
        )
    return "\n".join(lines) + "\n"


def _line(name: str, value: str, band: str | None) -> str:
    return f"  {name:<22} {value:<36} {band or ''}".rstrip()
