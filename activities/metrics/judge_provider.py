"""``provider: {judge: ...}``: fetch canary and baseline samples from Prometheus over the last
``lookback`` and let the Kayenta-style judge (``judge.py``) decide.

The measurement's value is the score (0 to 100); its phase is the judge's verdict (Pass →
Successful, Marginal → Inconclusive, Fail → Failed) unless the metric has conditions of
its own, which then see ``result`` = the score. Every series a query returns is pooled:
write the query to return one series per scope (``avg(...)``, ``histogram_quantile``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from activities.durations import parse_duration
from activities.metrics.base import Reading
from activities.metrics.judge import judge
from activities.metrics.judge_spec import VERDICT_PHASE, JudgeProviderSpec
from activities.metrics.prometheus import PrometheusClient

_SCOPE = re.compile(r"\{\{\s*scope\s*\}\}")


class JudgeProvider:
    def __init__(self, spec: JudgeProviderSpec) -> None:
        self.spec = spec
        self.client = PrometheusClient(spec.prometheus)

    def measure(self) -> Reading:
        spec = self.spec
        end = datetime.now(UTC)
        start = end - parse_duration(spec.lookback)
        step = parse_duration(spec.step).total_seconds()
        samples: dict[str, dict[str, list[float]]] = {"canary": {}, "baseline": {}}
        for metric in spec.metrics:
            for side, scope in (("canary", spec.canary_scope), ("baseline", spec.baseline_scope)):
                query = _scoped(metric.query, scope)
                series = self.client.range(query, start, end, step)
                samples[side][metric.name] = [v for _, points in series for _, v in points]
        judgement = judge(spec, samples["canary"], samples["baseline"])
        return Reading(
            values=[judgement.score],
            phase=VERDICT_PHASE[judgement.verdict],
            judgement=judgement,
            metadata={
                "canaryScope": spec.canary_scope,
                "baselineScope": spec.baseline_scope,
                "window": f"{start.isoformat()} .. {end.isoformat()}",
            },
        )


def _scoped(query: str, scope: str) -> str:
    """``query`` with ``{{scope}}`` (spaces inside the braces allowed) set to ``scope``."""
    return _SCOPE.sub(lambda _: scope, query)
