"""The report as one self-contained HTML file: the figures with their DORA bands, four
charts (matplotlib, inline SVG with text kept as text), and the JSON document itself in a
``<script type="application/json" id="report-data">``, so what a person sees and what a
CI job parses are the same numbers."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import jinja2
from markupsafe import Markup

if TYPE_CHECKING:
    from matplotlib.axes import Axes

COLORS: Final = {
    "Promoted": "#2ca02c",
    "RolledBack": "#d62728",
    "Aborted": "#ff7f0e",
    "Failed": "#9467bd",
    "TimedOut": "#8c564b",
}
CFR_COLOR: Final = "#1f77b4"

TEMPLATE: Final = Path(__file__).with_name("report.html.j2")
NO_DATA: Final = "-"


def duration(seconds: float | None) -> str:
    """``3 d 4 h``, ``2 h 5 min``, ``40 s``: two units at most."""
    if seconds is None:
        return NO_DATA
    seconds = round(seconds)
    for unit, size, smaller, small_size in (
        ("d", 86400, "h", 3600),
        ("h", 3600, "min", 60),
        ("min", 60, "s", 1),
    ):
        if seconds >= size:
            rest = (seconds % size) // small_size
            return f"{seconds // size} {unit}" + (f" {rest} {smaller}" if rest else "")
    return f"{seconds} s"


def render(document: dict[str, Any], title: str = "") -> str:
    figures = document["figures"]
    df, lt, cfr, ttr = (
        figures[k]
        for k in ("deploymentFrequency", "leadTime", "changeFailureRate", "timeToRestore")
    )
    rate = cfr["rate"]
    cards = [
        ("deploymentFrequency", "Deployment frequency", df["perDay"], f"{df['perDay']:.3g} / day",
         df["band"], f"{df['promoted']} promoted"),
        ("leadTime", "Lead time for changes", lt["medianSeconds"], duration(lt["medianSeconds"]),
         lt["band"], f"median of {lt['count']}"),
        ("changeFailureRate", "Change failure rate", rate,
         NO_DATA if rate is None else f"{rate:.1%}", cfr["band"],
         f"{cfr['failures']} of {cfr['deployments']}"),
        ("timeToRestore", "Time to restore", ttr["medianSeconds"], duration(ttr["medianSeconds"]),
         ttr["band"], f"median of {ttr['count']}"),
    ]  # fmt: skip
    period = document["period"]
    environment = jinja2.Environment(autoescape=True)
    return environment.from_string(TEMPLATE.read_text(encoding="utf-8")).render(
        title=f" — {title}" if title else "",
        period=f"{period['from'][:10]} to {period['to'][:10]} ({period['days']:g} days)",
        figures=[
            {
                "key": k,
                "label": label,
                "raw": "" if raw is None else raw,
                "shown": shown,
                "band": b,
                "detail": d,
            }
            for k, label, raw, shown, b, d in cards
        ],
        charts=charts(document),
        strategies=[
            {
                **s,
                "rate": f"{s['successRate']:.0%}",
                "duration": duration(s["medianDurationSeconds"]),
            }
            for s in document["byStrategy"]
        ],
        detect=duration(figures["timeToDetect"]["medianSeconds"]),
        detect_raw=figures["timeToDetect"]["medianSeconds"] or "",
        not_counted=document["notCounted"],
        # </ cannot end the script element early: JSON allows \\/ for /.
        data=Markup(json.dumps(document).replace("</", "<\\/")),
    )


def _date_ticks(axes: Axes, labels: list[str]) -> None:
    """At most eight date labels under positions 0..n-1, slanted."""
    step = max(1, len(labels) // 8)
    axes.set_xticks(range(0, len(labels), step), labels[::step], rotation=30, fontsize=7)


def charts(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The four charts as inline SVG (matplotlib's Agg backend: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot
    from matplotlib.figure import Figure

    series = document["series"]
    made = []

    def svg(figure: Figure) -> Any:
        buffer = io.StringIO()
        figure.tight_layout()
        with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "deployflow"}):
            figure.savefig(buffer, format="svg")
        pyplot.close(figure)
        text = buffer.getvalue()
        return Markup(text[text.index("<svg") :])

    figure, axes = pyplot.subplots(figsize=(6, 3))
    days = list(range(len(series["daily"])))
    bottom = [0] * len(days)
    for outcome, color in COLORS.items():
        counts = [d[outcome] for d in series["daily"]]
        if any(counts):
            axes.bar(days, counts, bottom=bottom, color=color, label=outcome)
            bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    _date_ticks(axes, [d["date"] for d in series["daily"]])
    axes.set_ylabel("rollouts")
    if any(bottom):
        axes.legend(fontsize=7)
    made.append(
        {"key": "deployments", "svg": svg(figure), "caption": "Deployments per day by outcome"}
    )

    for key, values, unit, scale, caption in (
        ("lead-time", series["leadTimeSeconds"], "hours", 3600, "Lead time for changes"),
        ("restore-time", series["restoreSeconds"], "minutes", 60, "Time to restore"),
    ):
        figure, axes = pyplot.subplots(figsize=(6, 3))
        axes.hist(
            [v / scale for v in values] or [0],
            bins=min(20, max(5, len(values))),
            color=CFR_COLOR if values else "#ccc",
        )
        axes.set_xlabel(unit)
        axes.set_ylabel("count")
        made.append({"key": key, "svg": svg(figure), "caption": f"{caption} ({len(values)})"})

    figure, axes = pyplot.subplots(figsize=(6, 3))
    weeks = list(range(len(series["changeFailureRateByWeek"])))
    axes.plot(
        weeks,
        [100 * w["rate"] for w in series["changeFailureRateByWeek"]],
        marker="o",
        color=CFR_COLOR,
    )
    _date_ticks(axes, [w["week"] for w in series["changeFailureRateByWeek"]])
    axes.set_ylim(0, 100)
    axes.set_ylabel("% of deployments")
    made.append(
        {"key": "change-failure-rate", "svg": svg(figure), "caption": "Change failure rate by week"}
    )
    return made
