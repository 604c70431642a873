"""The example Prometheus configs and the worker's alert rules, checked by Prometheus's
own ``promtool``: the configs load, the rules' alerts fire when the made-up series in
``worker-rules.test.yml`` say they should; and the demo's Prometheus scrapes the worker
where the demo's worker serves its metrics."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.fixtures.parts import require_binary

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "prometheus"


def promtool(*args: str, cwd: Path = EXAMPLES) -> None:
    binary = require_binary("promtool", "/usr/bin")
    done = subprocess.run(
        [binary, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("config", ["prometheus.yml", "compose.yml"])
def test_the_example_configs_load_with_the_worker_rules(config):
    promtool("check", "config", config)
    assert yaml.safe_load((EXAMPLES / config).read_text())["rule_files"] == ["worker-rules.yml"]


def test_the_worker_alerts_fire_on_a_worker_down_absent_or_not_polling():
    promtool("check", "rules", "worker-rules.yml")
    promtool("test", "rules", "worker-rules.test.yml")


def test_the_demo_prometheus_scrapes_the_demo_worker_with_the_worker_rules(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(REPO / "examples" / "demo"))
    import stack

    (tmp_path / stack.PROMETHEUS_RULES.name).write_text(stack.prometheus_rules())
    (tmp_path / "prometheus.yml").write_text(stack.prometheus_config())
    promtool("check", "config", "prometheus.yml", cwd=tmp_path)

    config = yaml.safe_load(stack.prometheus_config())
    [job] = [j for j in config["scrape_configs"] if j["job_name"] == "deployflow-worker"]
    [target] = job["static_configs"][0]["targets"]
    assert str(stack.WORKER_RULES) in config["rule_files"]
    argv = stack.worker_component().argv
    assert f"--metrics-listen={target}" in argv
