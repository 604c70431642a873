"""`deployflow rollout simulate` and `deployflow analysis run` as CI runs them: exit codes,
JSON, and the error for a bad input."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.cli import REPO, run_cli
from tests.fixtures.parts import require_binary
from tests.unit.test_web_provider import Answer, WebServer, serve

pytestmark = pytest.mark.integration

SPEC = str(REPO / "examples" / "rollouts" / "checkout-canary-2h.yaml")
SCENARIOS = REPO / "examples" / "scenarios"


@pytest.fixture(scope="module")
def temporal_binary() -> str:
    import sys

    return require_binary("temporal", str(Path(sys.executable).parent))


async def simulate(*args: str) -> tuple[int, Any, str]:
    code, out, err = await run_cli(dict(os.environ), "rollout", "simulate", *args, timeout=120)
    return code, json.loads(out) if out.startswith("{") else out, err


def weights(report: dict[str, Any]) -> list[int]:
    return [
        int(line["message"].split("canary ")[1].split(" %")[0])
        for line in report["timeline"]
        if line["kind"] == "weights"
    ]


async def test_the_two_hour_canary_rehearses_in_seconds_and_is_promoted(temporal_binary):
    code, report, err = await simulate(SPEC, "--metrics", str(SCENARIOS / "healthy.yaml"), "--json")
    assert code == 0, err
    assert report["outcome"] == "Promoted"
    assert report["simulatedSeconds"] >= 2 * 3600
    assert report["wallSeconds"] < 60
    assert weights(report) == [5, 25, 50, 100, 100]
    measured = [c for c in report["calls"] if c["activity"] == "measure"]
    assert {c["detail"] for c in measured} == {"error-rate-vs-stable", "p99-latency-vs-stable"}
    assert len(measured) >= 24 + 5  # every 5 minutes for 2 hours, and the step's 5


async def test_errors_after_minute_40_roll_back_soon_after(temporal_binary):
    code, report, err = await simulate(
        SPEC, "--metrics", str(SCENARIOS / "errors-after-40m.yaml"), "--json"
    )
    assert code == 1, err
    assert report["outcome"] == "RolledBack"
    assert "analysis background Failed" in report["reason"]
    rollback = next(line for line in report["timeline"] if "(rollback)" in line["message"])
    assert 40 * 60 <= rollback["at"] <= 50 * 60
    assert weights(report)[-1] == 0
    failed = [
        line
        for line in report["timeline"]
        if line["kind"] == "measure" and "Failed" in line["message"]
    ]
    assert failed[0]["at"] >= 40 * 60


async def test_the_text_timeline_reads_in_rollout_time(temporal_binary):
    code, out, err = await simulate(SPEC, "--metrics", str(SCENARIOS / "errors-after-40m.yaml"))
    assert code == 1, err
    lines = out.splitlines()
    assert lines[0].startswith("rehearsal of ")
    assert any(line.split() == ["+30m", "pause", "pause", "of", "30m", "elapsed"] for line in lines)
    assert lines[-1].startswith("RolledBack after 4")


async def test_a_pause_without_duration_is_decided_by_the_scenario(temporal_binary, tmp_path):
    spec = yaml.safe_load_all(
        (REPO / "examples" / "rollouts" / "checkout-canary-2h.yaml").read_text()
    )
    rollout, *templates = list(spec)
    rollout["spec"]["strategy"]["canary"]["steps"][1] = {"pause": {}}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump_all([rollout, *templates]))
    scenario = tmp_path / "abort.yaml"
    scenario.write_text(
        "metrics: {error-rate-vs-stable: 0, p99-latency-vs-stable: 1}\nwhenPaused: abort\n"
    )
    code, report, err = await simulate(str(path), "--metrics", str(scenario), "--json")
    assert code == 1, err
    assert report["outcome"] == "Aborted"
    assert report["reason"] == "aborted by simulated operator: scenario: whenPaused"


@pytest.mark.parametrize(
    ("scenario", "problem"),
    [
        (
            "metrics: {nope: 1}\ndefault: 0\n",
            "metrics.nope: no analysis metric of that name in the spec",
        ),
        (
            "metrics: {error-rate-vs-stable: 0}\n",
            "metrics: no script for p99-latency-vs-stable (or set default)",
        ),
        (
            "metrics: {error-rate-vs-stable: [{value: 1, until: 5m}]}\ndefault: 0\n",
            "the last piece must have no until",
        ),
        (
            "metrics: {error-rate-vs-stable: [{until: 5m}, {value: 1}]}\ndefault: 0\n",
            "set exactly one of value, result, error",
        ),
        ("whenPaused: shrug\ndefault: 0\n", "whenPaused: Input should be 'promote' or 'abort'"),
    ],
)
async def test_a_bad_scenario_is_refused_naming_the_field(tmp_path, scenario, problem):
    path = tmp_path / "scenario.yaml"
    path.write_text(scenario)
    code, _out, err = await simulate(SPEC, "--metrics", str(path))
    assert code == 2
    assert problem in err
    assert "Traceback" not in err


# --- analysis run ------------------------------------------------------------------------


@pytest.fixture
def web() -> Iterator[WebServer]:
    yield from serve()


def web_template(url: str, **metric: Any) -> str:
    template = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "health"},
        "spec": {
            "args": [{"name": "path", "value": "/status"}],
            "metrics": [
                {
                    "name": "success-percent",
                    "successCondition": "result >= 0.95",
                    "failureCondition": "result < 0.5",
                    "provider": {
                        "web": {
                            "url": url + "{{args.path}}?svc={{service}}",
                            "jsonPath": "{$.data.successPercent}",
                        }
                    },
                    **metric,
                }
            ],
        },
    }
    return yaml.safe_dump(template)


@pytest.mark.parametrize(
    ("answer", "code", "phase"),
    [
        (Answer(body=b'{"data": {"successPercent": 0.99}}'), 0, "Successful"),
        (Answer(body=b'{"data": {"successPercent": 0.1}}'), 1, "Failed"),
        (Answer(body=b'{"data": {"successPercent": 0.8}}'), 4, "Inconclusive"),
        (Answer(status=503, body=b"down"), 3, "Error"),
    ],
)
async def test_analysis_run_exit_code_is_the_phase(web, tmp_path, answer, code, phase):
    web.answer = answer
    file = tmp_path / "health.yaml"
    file.write_text(web_template(web.url))
    got, out, err = await run_cli(
        dict(os.environ),
        *("analysis", "run", str(file), "--service", "checkout", "--version", "v2", "--json"),
    )
    assert got == code, err
    report = json.loads(out)
    assert report["phase"] == phase
    [metric] = report["metrics"]
    assert metric["name"] == "success-percent"
    assert web.seen[0]["path"] == "/status?svc=checkout"


async def test_analysis_run_prints_each_measurement(web, tmp_path):
    web.answer = Answer(body=b'{"data": {"successPercent": 0.97}}')
    file = tmp_path / "health.yaml"
    file.write_text(web_template(web.url, interval="1m", count=10))
    code, out, err = await run_cli(
        dict(os.environ),
        *("analysis", "run", str(file), "--service", "checkout", "--version", "v2"),
        *("--count", "3", "--interval", "100ms", "--arg", "path=/other"),
    )
    assert code == 0, err
    assert out.splitlines() == [
        "success-percent #1  Successful   0.97",
        "success-percent #2  Successful   0.97",
        "success-percent #3  Successful   0.97",
        "  success-percent: Successful",
        "analysis health: Successful",
    ]
    assert [s["path"] for s in web.seen] == ["/other?svc=checkout"] * 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--arg", "nope=1"), "--arg.args[0].name: no template declares arg 'nope'"),
        (("--arg", "oops"), "--arg oops: expected NAME=VALUE"),
        (("--template", "other"), "--template other: not in"),
        (("--count", "0"), "--count must be at least 1"),
    ],
)
async def test_analysis_run_refuses_bad_input(web, tmp_path, args, message):
    file = tmp_path / "health.yaml"
    file.write_text(web_template(web.url))
    code, _out, err = await run_cli(
        dict(os.environ),
        *("analysis", "run", str(file), "--service", "checkout", "--version", "v2", *args),
    )
    assert code == 2
    assert message in err
    assert web.seen == []


async def test_analysis_run_of_templates_alone_needs_the_version(web, tmp_path):
    file = tmp_path / "health.yaml"
    file.write_text(web_template(web.url))
    code, _out, err = await run_cli(dict(os.environ), "analysis", "run", str(file))
    assert code == 2
    assert "has no Rollout: pass --service and --version" in err
