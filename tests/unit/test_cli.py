"""The CLI's contract with CI: exit codes and one clear line per user mistake."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from starters.cli import main
from tests.unit.test_spec import GOOD


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "rollout.yaml"
    path.write_text(GOOD)
    return path


def test_lint_accepts_a_good_spec(spec_file, capsys):
    assert main(["rollout", "lint", str(spec_file)]) == 0
    out = capsys.readouterr().out
    assert "valid — canary of checkout v2.4.1 in production, 6 steps: setWeight 5 →" in out


def test_lint_names_the_bad_field_and_exits_2(spec_file, capsys):
    spec_file.write_text(GOOD.replace("setWeight: 25", "setWeight: 250"))
    assert main(["rollout", "lint", str(spec_file)]) == 2
    err = capsys.readouterr().err
    assert (
        "spec.strategy.canary.steps[3].setWeight: Input should be less than or equal to 100" in err
    )
    assert "Traceback" not in err


def test_lint_json_lists_problems(spec_file, capsys):
    spec_file.write_text(
        GOOD.replace(
            "templateName: error-rate}]}\n        - setWeight",
            "templateName: nope}]}\n        - setWeight",
        )
    )
    assert main(["rollout", "lint", "--json", str(spec_file)]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False
    assert any("no analysisTemplate named 'nope'" in p for p in report["problems"])


def test_missing_file_is_invalid_input(tmp_path, capsys):
    assert main(["rollout", "lint", str(tmp_path / "nope.yaml")]) == 2
    assert "No such file or directory" in capsys.readouterr().err


def test_unknown_argument_exits_2():
    with pytest.raises(SystemExit) as exited:
        main(["rollout", "start"])
    assert exited.value.code == 2


def test_temporal_unreachable_exits_3(spec_file, capsys, monkeypatch):
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")
    assert main(["rollout", "start", str(spec_file)]) == 3
    assert "Temporal is unreachable at 127.0.0.1:1" in capsys.readouterr().err


def test_invalid_spec_is_refused_before_contacting_temporal(spec_file, capsys, monkeypatch):
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")
    spec_file.write_text(GOOD.replace("version: v2.4.1", "version: 'v2 4'"))
    assert main(["rollout", "start", str(spec_file)]) == 2
    assert "spec.version" in capsys.readouterr().err
