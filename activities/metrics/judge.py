"""Kayenta's NetflixACAJudge as pure functions: classify each metric of a canary against its
baseline with a two-sided Mann-Whitney U test, then score the metrics by group.

A metric is High when the confidence interval of the canary's shift (its lower end) lies
above ``tolerance`` times the Hodges-Lehmann estimate's size and the effect size reaches the allowed
increase; Low the other way round; otherwise Pass. No data is Nodata (or NodataFailMetric
when ``mustHaveData``); with ``nanStrategy: replace`` NaNs count as 0 and no data passes.
A group scores the share of its metrics that Pass; the score is the weighted sum of the
group scores; a critical metric that does not Pass, or half the metrics without data,
make it 0. The statistics are scipy's (``mannwhitneyu``, ``norm``, ``brentq``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import optimize, stats

from activities.metrics.judge_spec import (
    Classification,
    GroupScore,
    JudgedMetric,
    Judgement,
    JudgeMetric,
    JudgeProviderSpec,
    Sample,
    Thresholds,
)

NODATA_PERCENT = 50.0
_Z_LIMIT = 40.0  # |z| beyond this is "certain" (and keeps the root finder on finite values)


@dataclass(frozen=True)
class Shift:
    """The canary's location shift from the baseline: estimate and confidence interval."""

    estimate: float
    lower: float
    upper: float


def mann_whitney_shift(canary: list[float], baseline: list[float], confidence: float) -> Shift:
    """The Hodges-Lehmann estimate of ``canary - baseline`` and the confidence interval that
    inverts the two-sided Mann-Whitney U test (normal approximation, tie and continuity
    corrected), as R's ``wilcox.test(conf.int=TRUE)`` and Kayenta compute it."""
    x, y = np.asarray(canary, dtype=float), np.asarray(baseline, dtype=float)
    if np.unique(x).size == 1 and np.unique(y).size == 1:
        # Two constant samples: Kayenta adds a little noise; the shift is the difference.
        difference = float(x[0] - y[0])
        return Shift(difference, difference, difference)
    estimate = float(np.median(np.subtract.outer(x, y)))
    critical = float(stats.norm.isf((1 - confidence) / 2))
    low, high = float(x.min() - y.max()), float(x.max() - y.min())
    scale = max(abs(low), abs(high), 1e-300)

    def z(mu: float) -> float:
        test = stats.mannwhitneyu(
            x - mu, y, alternative="two-sided", method="asymptotic", use_continuity=True
        )
        centre = x.size * y.size / 2
        size = min(float(stats.norm.isf(test.pvalue / 2)), _Z_LIMIT)
        return math.copysign(size, test.statistic - centre) if test.statistic != centre else 0.0

    def root(q: float) -> float:
        f_low, f_high = z(low) - q, z(high) - q
        if f_low <= 0:
            return low
        if f_high >= 0:
            return high
        found: float = optimize.brentq(lambda mu: z(mu) - q, low, high, xtol=scale * 1e-12)
        return found

    return Shift(estimate, root(critical), root(-critical))


def mean_ratio(canary: list[float], baseline: list[float]) -> float:
    """Canary mean / baseline mean; NaN when either mean is 0 (Kayenta's deviation)."""
    c, b = float(np.mean(canary)), float(np.mean(baseline))
    return math.nan if c == 0 or b == 0 else c / b


def cles(canary: list[float], baseline: list[float]) -> float:
    """Common-language effect size: the share of pairs where the canary is higher (ties ½)."""
    u = stats.mannwhitneyu(canary, baseline, method="asymptotic").statistic
    return float(u) / (len(canary) * len(baseline))


def classify_metric(
    metric: JudgeMetric,
    canary: list[float],
    baseline: list[float],
    confidence: float = 0.98,
    tolerance: float = 0.25,
) -> JudgedMetric:
    """One metric's classification (Kayenta's MannWhitneyClassifier)."""
    canary, baseline = _clean(canary, metric), _clean(baseline, metric)
    samples = {"canary": _sample(canary), "baseline": _sample(baseline)}

    def judged(label: Classification, reason: str | None, **found: float | None) -> JudgedMetric:
        clean = {k: None if v is None or not math.isfinite(v) else v for k, v in found.items()}
        return JudgedMetric(
            name=metric.name,
            classification=label,
            reason=reason,
            groups=metric.group_names,
            **samples,
            **clean,
        )

    if not canary or not baseline:
        missing = "canary" if not canary else "baseline"
        if metric.nan_strategy == "replace":
            return judged("Pass", f"no {missing} data (nanStrategy replace: passes)")
        if metric.must_have_data and not metric.critical:
            return judged("NodataFailMetric", f"no {missing} data for {metric.name}")
        result = judged("Nodata", f"no {missing} data for {metric.name}")
        return result.model_copy(update={"critical": metric.critical})
    ratio = mean_ratio(canary, baseline)
    if sorted(canary) == sorted(baseline) or len(set(canary) | set(baseline)) == 1:
        return judged("Pass", "canary and baseline data are identical", ratio=ratio)
    shift = mann_whitney_shift(canary, baseline, confidence)
    effect = cles(canary, baseline) if metric.effect_size.measure == "cles" else ratio
    bound = tolerance * abs(shift.estimate)
    found = {"ratio": ratio, "estimate": shift.estimate, "lower": shift.lower, "upper": shift.upper}
    label = _direction(metric, shift, bound, effect, "allowed")
    if label == "Pass":
        return judged("Pass", None, **found)
    critical = metric.critical and _direction(metric, shift, bound, effect, "critical") == label
    suffix = " (critical)" if critical else ""
    result = judged(label, f"{metric.name} was classified {label}{suffix}", **found)
    return result.model_copy(update={"critical": critical})


def _direction(
    metric: JudgeMetric,
    shift: Shift,
    bound: float,
    effect: float,
    limits: Literal["allowed", "critical"],
) -> Classification:
    """High, Low or Pass given the interval and the effect size (NaN effect: ignored)."""
    sizes = metric.effect_size
    if (
        metric.direction in ("increase", "either")
        and shift.lower > bound
        and (math.isnan(effect) or effect >= sizes.limit(limits, "increase"))
    ):
        return "High"
    if (
        metric.direction in ("decrease", "either")
        and shift.upper < -bound
        and (math.isnan(effect) or effect <= sizes.limit(limits, "decrease"))
    ):
        return "Low"
    return "Pass"


def score(
    results: list[JudgedMetric], thresholds: Thresholds, weights: dict[str, float]
) -> Judgement:
    """Group scores, the weighted summary score and its verdict (Kayenta's ScoringHelper)."""
    names = list(dict.fromkeys(g for r in results for g in r.groups))
    groups = [_group(name, [r for r in results if name in r.groups]) for name in names]
    reason: str | None = None
    failing = next((r for r in results if r.critical and r.classification != "Pass"), None)
    nodata = sum(r.classification == "Nodata" for r in results)
    if failing is not None:
        total, reason = 0.0, f"critical metric failed: {failing.reason}"
    elif results and nodata * 100 / len(results) >= NODATA_PERCENT:
        total, reason = 0.0, f"{NODATA_PERCENT:g}% or more of the metrics have no data"
    else:
        unweighted = [g for g in groups if g.name not in weights]
        share = (100 - sum(weights.values())) / len(unweighted) if unweighted else 0.0
        total = sum(
            (100.0 if g.no_data else g.score) * weights.get(g.name, share) / 100 for g in groups
        )
    total = round(total, 2)
    if total >= thresholds.pass_:
        verdict: Literal["Pass", "Marginal", "Fail"] = "Pass"
    elif total >= thresholds.marginal:
        verdict = "Marginal"
    else:
        verdict = "Fail"
    return Judgement(score=total, verdict=verdict, reason=reason, metrics=results, groups=groups)


def judge(
    spec: JudgeProviderSpec, canary: dict[str, list[float]], baseline: dict[str, list[float]]
) -> Judgement:
    """Classify every metric of ``spec`` on its samples and score the lot."""
    results = [
        classify_metric(m, canary[m.name], baseline[m.name], spec.confidence_level, spec.tolerance)
        for m in spec.metrics
    ]
    return score(results, spec.thresholds, spec.group_weights)


def _group(name: str, results: list[JudgedMetric]) -> GroupScore:
    counted = [
        r for r in results if r.classification in ("Pass", "High", "Low", "NodataFailMetric")
    ]
    if not counted:
        return GroupScore(name=name, score=0.0, no_data=True)
    passed = sum(r.classification == "Pass" for r in counted)
    return GroupScore(name=name, score=passed * 100 / len(counted))


def _clean(values: list[float], metric: JudgeMetric) -> list[float]:
    if metric.nan_strategy == "replace":
        return [0.0 if math.isnan(v) else v for v in values]
    return [v for v in values if not math.isnan(v)]


def _sample(values: list[float]) -> Sample:
    return Sample(count=len(values), mean=float(np.mean(values)) if values else None)
