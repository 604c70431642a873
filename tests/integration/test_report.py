"""`deployflow report` over runs recorded on the dev server, and its HTML in real Chromium.

Three canaries of one service run on a stub worker (no traffic to move): two promote,
with commit times two and five hours before their start; one is aborted at its pause.
The report must count 3 deployments, 1 failure, 2 lead times of about 2 h and 5 h, one
restore and one detection — also when visibility is read one run per page.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import numpy
import pytest
from matplotlib import image
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from starters import report, rollout_start
from starters.report.html import COLORS
from tests.fixtures.cli import run_cli
from tests.fixtures.harness import poll, worker
from tests.fixtures.parts import require_binary
from tests.workflows.harness import Stubs
from workers.config import TemporalConfig
from workflows.core.verbs import OperatorInput
from workflows.rollouts.models import RolloutPhase, RolloutStatus
from workflows.rollouts.registry import BY_STRATEGY
from workflows.rollouts.spec import parse_rollout

pytestmark = pytest.mark.integration

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def canary(service: str, version: str, steps: list[dict]) -> object:
    return parse_rollout(
        [
            {
                "apiVersion": "deployflow/v1",
                "kind": "Rollout",
                "metadata": {"name": service},
                "spec": {
                    "service": service,
                    "environment": "production",
                    "version": version,
                    "router": {
                        "nginx": {
                            "upstream": "app",
                            "configPath": f"/nonexistent/{service}.conf",
                            "stable": ["127.0.0.1:1"],
                            "canary": ["127.0.0.1:2"],
                        }
                    },
                    "strategy": {"canary": {"steps": steps}},
                },
            }
        ]
    )


@pytest.fixture
async def recorded(temporal_env):
    """(client, env, service): three finished canaries of a fresh service."""
    address = temporal_env.client.service_client.config.target_host
    client = await Client.connect(address, data_converter=pydantic_data_converter)
    queue = f"report-{uuid.uuid4().hex[:8]}"
    service = f"svc-{uuid.uuid4().hex[:6]}"
    config = TemporalConfig(address=address, task_queue=queue)
    quick = [{"setWeight": 50}, {"setWeight": 100}]
    async with worker(client, list(BY_STRATEGY.values()), Stubs().activities(), task_queue=queue):
        for version, hours in (("v1", 5), ("v2", 2)):
            commit = datetime.now(UTC) - timedelta(hours=hours)
            handle = await rollout_start.start_rollout(
                client,
                config,
                canary(service, version, quick),
                by="ci",
                source="test",
                commit_time=commit,
            )
            assert (await handle.result()).outcome is RolloutPhase.PROMOTED
        paused = canary(service, "v3", [{"setWeight": 50}, {"pause": {}}, {"setWeight": 100}])
        handle = await rollout_start.start_rollout(client, config, paused, by="ci", source="test")

        async def at_pause() -> bool:
            status = await handle.query("status", result_type=RolloutStatus)
            return status.phase is RolloutPhase.PAUSED

        await poll(at_pause, "v3 paused", 30)
        await handle.execute_update("abort", OperatorInput(reason="bad"), result_type=str)
        assert (await handle.result()).outcome is RolloutPhase.ABORTED
    query = f"DeployService = '{service}' AND ExecutionStatus != 'Running'"
    await poll(lambda: client.count_workflows(query), "visibility", 30)

    async def all_visible() -> bool:
        return (await client.count_workflows(query)).count == 3

    await poll(all_visible, "3 runs in visibility", 30)
    env = {**os.environ, "TEMPORAL_ADDRESS": address}
    return client, env, service


async def test_the_report_counts_recorded_runs_also_one_page_at_a_time(recorded):
    client, env, service = recorded
    code, out, err = await run_cli(
        env, "report", "--service", service, "--since", "1d", "--format", "json"
    )
    assert code == 0, err
    document = json.loads(out)
    f = document["figures"]
    assert f["changeFailureRate"] == {
        "rate": round(1 / 3, 4),
        "failures": 1,
        "deployments": 3,
        "band": "low",
    }
    assert f["deploymentFrequency"]["promoted"] == 2
    lead = document["series"]["leadTimeSeconds"]
    assert len(lead) == 2
    assert 2 * 3600 <= lead[0] < 2 * 3600 + 120
    assert 5 * 3600 <= lead[1] < 5 * 3600 + 120
    assert f["timeToRestore"]["count"] == 1
    assert f["timeToDetect"]["count"] == 1
    assert 0 <= f["timeToDetect"]["medianSeconds"] <= f["timeToRestore"]["medianSeconds"] < 60
    assert document["byStrategy"][0]["strategy"] == "canary"

    now = datetime.now(UTC)
    paged = await report.build(client, now - timedelta(days=1), now, service, page_size=1)
    assert paged["figures"]["changeFailureRate"] == f["changeFailureRate"]
    assert paged["series"]["leadTimeSeconds"] == pytest.approx(lead, abs=1)

    code, out, err = await run_cli(env, "report", "--service", service, "--since", "a while")
    assert code == 2
    assert err.strip() == "deployflow: --since: expected 30d, 12w, 48h or a date, got 'a while'"


class Dom(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.figures: dict[str, str] = {}
        self.charts: dict[str, int] = {}
        self._chart: str | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if "data-figure" in attributes:
            self.figures[attributes["data-figure"]] = attributes["data-value"]
        if "data-chart" in attributes:
            self._chart = attributes["data-chart"]
            self.charts[self._chart] = 0
        if self._chart and tag in ("path", "rect", "text", "line"):
            self.charts[self._chart] += 1

    def handle_endtag(self, tag):
        if tag == "figure":
            self._chart = None


def chromium(*args: str, cwd: Path) -> str:
    binary = require_binary("chromium", "/usr/bin")
    profile = cwd / f"profile-{uuid.uuid4().hex[:6]}"
    done = subprocess.run(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=90, cwd=cwd, check=True,
    )  # fmt: skip
    return done.stdout


async def test_the_html_report_renders_in_chromium_with_charts_and_the_jsons_numbers(
    recorded, tmp_path
):
    _, env, service = recorded
    page = tmp_path / "report.html"
    code, _, err = await run_cli(
        env, "report", "--service", service, "--since", "1d", "--format", "html", "--out", str(page)
    )
    assert code == 0, err
    code, out, err = await run_cli(
        env, "report", "--service", service, "--since", "1d", "--format", "json"
    )
    document = json.loads(out)
    url = page.as_uri()
    dom = Dom()
    dom.feed(await asyncio.to_thread(chromium, "--dump-dom", url, cwd=tmp_path))
    assert set(dom.charts) == {"deployments", "lead-time", "restore-time", "change-failure-rate"}
    assert all(count > 10 for count in dom.charts.values()), dom.charts  # drawn, not empty
    f = document["figures"]
    assert float(dom.figures["changeFailureRate"]) == f["changeFailureRate"]["rate"]
    assert float(dom.figures["deploymentFrequency"]) == f["deploymentFrequency"]["perDay"]
    assert float(dom.figures["leadTime"]) == pytest.approx(f["leadTime"]["medianSeconds"], abs=60)
    assert float(dom.figures["timeToRestore"]) == pytest.approx(
        f["timeToRestore"]["medianSeconds"], abs=5
    )

    shot = tmp_path / "report.png"
    await asyncio.to_thread(
        chromium, f"--screenshot={shot}", "--window-size=1280,1400", url, cwd=tmp_path
    )
    pixels = image.imread(shot)[..., :3] * 255
    for outcome in ("Promoted", "Aborted"):  # the bars of the deployments chart were painted
        color = numpy.array([int(COLORS[outcome][i : i + 2], 16) for i in (1, 3, 5)])
        assert (numpy.abs(pixels - color).max(axis=-1) < 10).sum() > 50, outcome
    print(f"report screenshot: {shot}", file=sys.stderr)
