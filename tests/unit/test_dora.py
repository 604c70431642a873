"""DORA figures from a fortnight of runs whose answers are worked out by hand."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest

from starters.report import as_text, parse_span
from starters.report.dora import Deployment, Incident, Rollback, band, figures
from starters.report.html import render

SINCE = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
UNTIL = datetime(2026, 3, 16, tzinfo=UTC)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def deployment(
    n: int, strategy: str, outcome: str, start: datetime, end: datetime, **more
) -> Deployment:
    return Deployment(
        f"rollout-checkout-production#{n}",
        "checkout",
        "production",
        strategy,
        f"v{n}",
        start,
        end,
        outcome,
        **more,
    )


DEPLOYMENTS = [
    deployment(1, "canary", "Promoted", at(2, 10), at(2, 10, 30), commit_time=at(2, 8)),
    deployment(
        2,
        "canary",
        "RolledBack",
        at(3, 10),
        at(3, 10, 20),
        first_shift=at(3, 10, 5),
        stopped=at(3, 10, 10),
    ),
    deployment(3, "blueGreen", "Promoted", at(4, 10), at(4, 11), commit_time=at(3, 11)),
    deployment(4, "canary", "Promoted", at(9, 9), at(9, 9, 10), commit_time=at(9, 8, 10)),
    deployment(5, "canary", "Canceled", at(11, 9), at(11, 9, 1)),
]
# An incident an hour after v3 went live: v3 failed. The rollback of v4 comes 25 h after
# it went live, outside the 24 h window: v4 still counts as a success, but it is a restore.
INCIDENTS = [Incident("checkout", "production", at(4, 12), at(4, 13))]
ROLLBACKS = [Rollback("checkout", "production", at(10, 10), at(10, 10, 2))]


@pytest.fixture
def document():
    return figures(DEPLOYMENTS, ROLLBACKS, INCIDENTS, SINCE, UNTIL)


def test_the_four_keys_and_their_bands(document):
    f = document["figures"]
    assert f["deploymentFrequency"] == {"perDay": round(3 / 14, 4), "promoted": 3, "band": "high"}
    assert f["leadTime"] == {
        "medianSeconds": 9000,
        "p95Seconds": 86400,
        "count": 3,
        "band": "elite",
    }
    assert f["changeFailureRate"] == {"rate": 0.5, "failures": 2, "deployments": 4, "band": "low"}
    # v2 15 min (first shift → rolled back), incident 1 h, v4 24 h 52 min (live → rollback done).
    assert f["timeToRestore"] == {
        "medianSeconds": 3600,
        "p95Seconds": 89520,
        "count": 3,
        "band": "high",
    }
    assert f["timeToDetect"] == {
        "medianSeconds": (300 + 89400) / 2,
        "p95Seconds": 89400,
        "count": 2,
    }
    assert document["notCounted"] == 1


def test_success_rate_durations_and_series(document):
    assert document["byStrategy"] == [
        {
            "strategy": "blueGreen",
            "deployments": 1,
            "promoted": 1,
            "successRate": 1.0,
            "failures": 1,
            "medianDurationSeconds": 3600,
        },
        {
            "strategy": "canary",
            "deployments": 3,
            "promoted": 2,
            "successRate": 0.6667,
            "failures": 1,
            "medianDurationSeconds": 1200,
        },
    ]
    assert document["durations"] == {"medianSeconds": 1500, "p95Seconds": 3600}
    daily = document["series"]["daily"]
    assert len(daily) == 15
    assert daily[1] == {
        "date": "2026-03-03",
        "Promoted": 0,
        "RolledBack": 1,
        "Aborted": 0,
        "Failed": 0,
        "TimedOut": 0,
    }
    assert document["series"]["changeFailureRateByWeek"] == [
        {"week": "2026-03-02", "deployments": 3, "failures": 2, "rate": 0.6667},
        {"week": "2026-03-09", "deployments": 1, "failures": 0, "rate": 0.0},
    ]
    assert document["series"]["leadTimeSeconds"] == [3600, 9000, 86400]


def test_a_wider_failure_window_blames_the_rollback_on_v4():
    wide = figures(DEPLOYMENTS, ROLLBACKS, INCIDENTS, SINCE, UNTIL, timedelta(hours=26))
    assert wide["figures"]["changeFailureRate"]["failures"] == 3


def test_no_runs_is_no_data_not_a_band():
    empty = figures([], [], [], SINCE, UNTIL)
    assert [
        empty["figures"][k].get("band")
        for k in ("deploymentFrequency", "leadTime", "changeFailureRate", "timeToRestore")
    ] == [None] * 4
    assert "no data" in render(empty)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("deploymentFrequency", 1.0, "elite"),
        ("deploymentFrequency", 1 / 7, "high"),
        ("deploymentFrequency", 1 / 30, "medium"),
        ("deploymentFrequency", 0.01, "low"),
        ("leadTime", 86399, "elite"),
        ("leadTime", 86400, "high"),
        ("changeFailureRate", 0.05, "elite"),
        ("changeFailureRate", 0.0501, "high"),
        ("changeFailureRate", 0.16, "low"),
        ("timeToRestore", 3599, "elite"),
        ("timeToRestore", 8 * 86400, "low"),
        ("timeToRestore", None, None),
    ],
)
def test_dora_bands(key, value, expected):
    assert band(key, value) == expected


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.figures: dict[str, str] = {}
        self.charts: list[str] = []
        self.svgs = 0
        self.script: str | None = None
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if "data-figure" in attributes:
            self.figures[attributes["data-figure"]] = attributes["data-value"]
        if "data-chart" in attributes:
            self.charts.append(attributes["data-chart"])
        self.svgs += tag == "svg"
        self._in_script = attributes.get("id") == "report-data"

    def handle_data(self, data):
        if self._in_script:
            self.script = (self.script or "") + data
            self._in_script = False


def test_the_html_holds_the_same_numbers_as_the_json(document):
    page = Page()
    page.feed(render(document, "checkout production"))
    assert json.loads(page.script) == document
    assert page.charts == ["deployments", "lead-time", "restore-time", "change-failure-rate"]
    assert page.svgs == 4
    assert (
        float(page.figures["deploymentFrequency"])
        == document["figures"]["deploymentFrequency"]["perDay"]
    )
    assert float(page.figures["changeFailureRate"]) == 0.5
    assert float(page.figures["leadTime"]) == 9000
    assert float(page.figures["timeToRestore"]) == 3600


def test_text_and_periods():
    text = as_text(figures(DEPLOYMENTS, ROLLBACKS, INCIDENTS, SINCE, UNTIL))
    assert "change failure rate    50.0% (2 of 4)" in text
    assert "lead time (median)     2 h 30 min (3 with a commit time)" in text
    assert parse_span("30d", "--since", UNTIL) == UNTIL - timedelta(days=30)
    assert parse_span("2026-01-01", "--since", UNTIL) == datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(Exception, match="--since: expected 30d"):
        parse_span("a month", "--since", UNTIL)
