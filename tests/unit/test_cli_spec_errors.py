"""Each command that reads a spec file turns a bad one into exit 2 and a line naming the field.

The bad values are the ones that used to crash the loaders (issue 9): a duration of
``99999999999999999999s`` (OverflowError), a 5,000-character time zone (OSError), a string
where a mapping belongs (AttributeError); and files that are not UTF-8 or not YAML.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from starters.cli import main
from tests.unit.test_spec import GOOD as ROLLOUT
from tests.workflows.test_pipeline import stage

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MONITOR = (EXAMPLES / "monitors" / "checkout.yaml").read_text()
RUNBOOK = (EXAMPLES / "runbooks" / "checkout.yaml").read_text()
PIPELINE = yaml.safe_dump(
    {
        "apiVersion": "deployflow/v1",
        "kind": "Pipeline",
        "metadata": {"name": "checkout"},
        "spec": {
            "service": "checkout",
            "stages": [stage("staging"), stage("production", requiredSoakTime="30m")],
        },
    }
)
HUGE = "99999999999999999999s"
TOO_LONG = "at most a year (365d), got 99999999999999999999s"

# (command, the good file's text, what to replace in it, with what, how a problem line starts)
BAD_FILES = {
    "rollout-duration": (
        ["rollout", "lint"], ROLLOUT, "duration: 30m", f"duration: {HUGE}",
        f"spec.strategy.canary.steps[1].pause.duration: duration must be {TOO_LONG}",
    ),
    "rollout-template-metadata": (
        ["rollout", "lint"], ROLLOUT, "analysisTemplates:",
        "analysisTemplates: []\n---\nkind: AnalysisTemplate\nmetadata: error-rate\nx:",
        "document 2: metadata: must be a mapping (key: value), got str",
    ),
    "pipeline-duration": (
        ["pipeline", "lint"], PIPELINE, "requiredSoakTime: 30m", f"requiredSoakTime: {HUGE}",
        f"spec.stages[1].requiredSoakTime: duration must be {TOO_LONG}",
    ),
    "monitor-time-zone": (
        ["monitor", "lint"], MONITOR, "timeZone: Europe/Berlin", "timeZone: " + "E" * 5000,
        "spec.schedule.timeZone: unknown time zone 'EEEEEEEEEEEEEEEEEEEE'… (5000 characters)",
    ),
    "monitor-spec-not-a-mapping": (
        ["monitor", "lint"], MONITOR, "spec:\n  service: checkout", "spec: 5\nx:\n  service: checkout",
        "spec: Input should be a valid dictionary",
    ),
    "monitor-duration": (
        ["monitor", "lint"], MONITOR, "runTimeout: 15m", f"runTimeout: {HUGE}",
        f"spec.schedule.runTimeout: duration must be {TOO_LONG}",
    ),
    "runbook-duration": (
        ["serve", "--insecure-no-auth", "--runbooks"], RUNBOOK, "ackTimeout: 2m", f"ackTimeout: {HUGE}",
        f"document 1: spec.escalation.levels[0].ackTimeout: duration must be {TOO_LONG}",
    ),
}  # fmt: skip
COMMANDS = {
    "rollout": (["rollout", "lint"], ROLLOUT),
    "pipeline": (["pipeline", "lint"], PIPELINE),
    "monitor": (["monitor", "lint"], MONITOR),
    "runbook": (["serve", "--insecure-no-auth", "--runbooks"], RUNBOOK),
}


def run(command: list[str], path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main([*command, str(path)])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("name", ["rollout", "pipeline", "monitor"])
def test_the_good_files_are_valid(name, tmp_path, capsys):
    command, text = COMMANDS[name]
    (tmp_path / "good.yaml").write_text(text)
    assert main([*command, str(tmp_path / "good.yaml")]) == 0
    assert "valid" in capsys.readouterr().out


@pytest.mark.parametrize("case", BAD_FILES)
def test_a_value_that_crashed_the_loader_is_exit_2_naming_the_field(case, tmp_path, capsys):
    command, text, old, new, problem = BAD_FILES[case]
    assert old in text
    path = tmp_path / "bad.yaml"
    path.write_text(text.replace(old, new, 1))
    code, err = run(command, path, capsys)
    assert code == 2
    assert any(line.startswith(f"  {problem}") for line in err.splitlines()), err
    assert "Traceback" not in err


@pytest.mark.parametrize("name", ["rollout", "pipeline", "monitor"])
def test_lint_json_lists_the_problem(name, tmp_path, capsys):
    command, text = COMMANDS[name]
    path = tmp_path / "bad.yaml"
    path.write_text(text + "\n" + "[" * 600)
    assert main([command[0], "lint", "--json", str(path)]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False
    assert report["problems"][0].startswith("(yaml): ")


@pytest.mark.parametrize("name", COMMANDS)
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe\x00kind: Rollout", "not UTF-8 text (byte 0)"),
        (b"[" * 600, "(yaml): nested too deeply"),
        (b"a: 2026-13-01", "(yaml): a value cannot be read: month must be in 1..12"),
    ],
    ids=["not-utf8", "too-deep", "bad-date"],
)
def test_a_file_that_is_not_yaml_is_exit_2(name, content, message, tmp_path, capsys):
    command, _ = COMMANDS[name]
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    code, err = run(command, path, capsys)
    assert code == 2
    assert message in err
    assert "Traceback" not in err
