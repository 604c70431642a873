"""`deployflow analysis run FILE`: measure the templates' metrics now, against the live
providers, and say what each measurement and the run would be — for tuning thresholds on
real data before a rollout depends on them. A metric none of whose measurements worked
(every one an Error) is Error, whatever its consecutiveErrorLimit.

No workflow and no Temporal: the ``measure`` activity's function runs in this process (so
secret args are read from this machine, as a worker would), and the judging is the
workflow's own (``workflows/analysis/run.py``). With ``--count N`` each metric is measured N
times, one ``interval`` apart; the phase is the one the metric would have after those N.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from activities.metrics.activities import MeasureInput, measure
from starters.errors import (
    EXIT_FAILED,
    EXIT_INCONCLUSIVE,
    EXIT_OK,
    EXIT_UNREACHABLE,
    UsageError,
)
from workers.logging_setup import configure_logging
from workers.usage import read_text
from workflows.analysis.plan import PlanError, PlannedMetric, plan
from workflows.analysis.run import (
    AnalysisPhase,
    Measurement,
    MetricResult,
    handles_special_values,
    measurement_of,
    record,
    run_phase,
)
from workflows.analysis.spec import Argument
from workflows.core.durations import parse_duration
from workflows.core.spec import SpecError, yaml_documents
from workflows.rollouts.spec import TEMPLATE_KINDS, Rollout, parse_rollout

EXIT_CODES = {
    AnalysisPhase.SUCCESSFUL: EXIT_OK,
    AnalysisPhase.FAILED: EXIT_FAILED,
    AnalysisPhase.ERROR: EXIT_UNREACHABLE,
    AnalysisPhase.INCONCLUSIVE: EXIT_INCONCLUSIVE,
}
_STAND_IN_ROUTER = {  # a file of templates only: the router is never used, only required
    "nginx": {
        "upstream": "u",
        "configPath": "/dev/null",
        "stable": ["127.0.0.1:1"],
        "canary": ["127.0.0.1:2"],
    }
}


def run(args: argparse.Namespace) -> int:
    configure_logging(json=False, level=logging.ERROR)  # the measurements are the output
    if args.count < 1:
        raise UsageError("--count must be at least 1")
    try:
        interval = None if args.interval is None else parse_duration(args.interval)
    except ValueError as exc:
        raise UsageError(f"--interval {args.interval}: {exc}") from None
    rollout = load(args)
    names = args.template or [
        t.name for t in (*rollout.spec.analysis_templates, *rollout.spec.cluster_analysis_templates)
    ]
    if not names:
        raise UsageError(f"FILE {args.file}: no AnalysisTemplate in it")
    unknown = [n for n in names if rollout.template(n) is None]
    if unknown:
        raise UsageError(f"--template {unknown[0]}: not in {args.file}")
    try:
        planned = plan(rollout, names, [_argument(a) for a in args.arg], path="--arg")
    except PlanError as exc:
        raise SpecError(args.file, exc.problems) from None
    out = None if args.json else sys.stdout
    results = [_measure(p, args.count, interval, rollout, out) for p in planned]
    phase = run_phase(results)
    if args.json:
        report = {"phase": phase.value, "metrics": [r.model_dump(mode="json") for r in results]}
        print(json.dumps(report))
    else:
        print(f"analysis {', '.join(names)}: {phase.value}")
    return EXIT_CODES.get(phase, EXIT_FAILED)


def load(args: argparse.Namespace) -> Rollout:
    """The rollout spec in FILE (or one made around a file of templates), with the built-in
    placeholders the flags set."""
    text = read_text(Path(args.file), f"FILE {args.file}")
    documents = yaml_documents(text, args.file)
    overrides = {
        "service": args.service,
        "environment": args.environment,
        "version": args.version,
        "stableVersion": args.stable_version,
    }
    given = {k: v for k, v in overrides.items() if v is not None}
    rollouts = [d for d in documents if isinstance(d, dict) and d.get("kind") == "Rollout"]
    if not rollouts:
        if not all(isinstance(d, dict) and d.get("kind") in TEMPLATE_KINDS for d in documents if d):
            raise SpecError(args.file, ["(top level): expected a Rollout or AnalysisTemplates"])
        missing = [f"--{k}" for k in ("service", "version") if k not in given]
        if missing:
            raise UsageError(f"FILE {args.file} has no Rollout: pass {' and '.join(missing)}")
        spec = {"environment": "analysis", **given, "router": _STAND_IN_ROUTER}
        spec["strategy"] = {"canary": {"steps": [{"setWeight": 100}]}}
        stand_in = {"apiVersion": "deployflow/v1", "kind": "Rollout", "metadata": {"name": "run"}}
        documents = [{**stand_in, "spec": spec}, *documents]
    else:
        rollout = rollouts[0]
        if isinstance(rollout.get("spec"), dict):
            rollout["spec"] = {**rollout["spec"], **given}
    return parse_rollout(documents, args.file)


def _argument(text: str) -> Argument:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise UsageError(f"--arg {text}: expected NAME=VALUE")
    return Argument(name=name, value=value)


def _measure(
    planned: PlannedMetric,
    count: int,
    interval: timedelta | None,
    rollout: Rollout,
    out: TextIO | None,
) -> MetricResult:
    metric = planned.metric
    judged = metric.model_copy(update={"count": count})  # the run ends after these
    result = MetricResult(name=metric.name, dry_run=planned.dry_run)
    raw = handles_special_values(metric)
    pause = (interval or parse_duration(metric.interval or "0s")).total_seconds()
    for number in range(1, count + 1):
        if number > 1:
            time.sleep(pause)
        started = datetime.now(UTC)
        output = measure(  # the activity's function, in this process
            MeasureInput(
                metric=metric.name,
                provider=metric.provider,
                key=f"analysis-run/{rollout.spec.service}/{metric.name}/{number}",
                secrets=planned.secrets,
                raw_values=raw,
            )
        )
        measurement = measurement_of(metric, output, started, datetime.now(UTC))
        result = record(judged, result, measurement, planned.retention)
        if out is not None:
            print(_line(metric.name, number, measurement), file=out)
        if result.phase.completed:
            break
    if not (result.successful or result.failed or result.inconclusive):
        # Argo calls a run whose count is reached Successful unless consecutiveErrorLimit was
        # crossed; a rehearsal that measured nothing says so.
        last = result.measurements[-1].message if result.measurements else None
        result.phase, result.message = AnalysisPhase.ERROR, f"nothing was measured: {last}"
    if out is not None:
        dry = " (dry run: does not decide)" if planned.dry_run else ""
        tail = f": {result.message}" if result.message else ""
        print(f"  {metric.name}: {result.phase.value}{dry}{tail}", file=out)
    return result


def _line(name: str, number: int, measurement: Measurement) -> str:
    if measurement.result is not None:
        shown = json.dumps(measurement.result)
    else:
        shown = ", ".join(f"{v:.6g}" for v in measurement.value) or "-"
    why = f"  {measurement.message}" if measurement.message else ""
    return f"{name} #{number}  {measurement.phase.value:<12} {shown}{why}"
