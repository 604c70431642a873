"""`deployflow rollback` arguments: SERVICE or --scope, checked before Temporal is contacted
(the address is a closed port, so reaching it would be exit 3), and the summary's shape."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from starters.cli import main
from starters.scope_rollback import summary
from workflows.core.timeline import Event
from workflows.rollouts.scope_rollback_models import (
    ScopeRollbackStatus,
    ServiceOutcome,
    ServiceRollback,
)


@pytest.fixture(autouse=True)
def unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--env", "production"], "SERVICE: name a service, or a group with --scope"),
        (["api", "--scope", "backend", "--env", "production"], "--scope: give SERVICE or --scope"),
        (["api", "--canary-only", "--env", "production"], "--canary-only: only with --scope"),
        (["api", "--wait", "--env", "production"], "--wait: only with --scope"),
        (["--scope", "backend", "--to", "v1", "--env", "production"], "--to: a scope's services"),
        (["--scope", "Back End", "--env", "production"], "--scope: must be a name"),
        (["--scope", "backend", "--env", "prod/eu"], "--env: must be a name"),
        (["--scope", "all", "--env", "prod", "--reason", "x" * 1001], "--reason: at most 1000"),
    ],
)
def test_bad_rollback_arguments_exit_2_before_connecting(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rollback", *argv]) == 2
    assert message in capsys.readouterr().err


def test_a_good_scope_goes_on_to_temporal(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rollback", "--scope", "all", "--env", "production", "--canary-only"]) == 3
    assert "Temporal is unreachable at 127.0.0.1:1" in capsys.readouterr().err


@given(text=st.text(max_size=80))
def test_any_scope_text_is_a_name_or_exit_2(text: str) -> None:
    if text.startswith("-"):
        return  # argparse reads it as an option
    code = main(["rollback", "--scope", text, "--env", "production"])
    assert code in (2, 3)


def test_the_summary_has_a_headline_and_one_line_per_service() -> None:
    services = [
        ServiceRollback(service="api", outcome=ServiceOutcome.ROLLED_BACK, before="v2",
                        after="v1", reason="v1 is live"),
        ServiceRollback(service="orders", outcome=ServiceOutcome.FAILED, reason="cannot be planned",
                        root_cause="no good version (RollbackImpossible)"),
        ServiceRollback(service="web", outcome=ServiceOutcome.SKIPPED, reason="nothing running"),
    ]  # fmt: skip
    result = ScopeRollbackStatus(
        scope="backend",
        environment="production",
        canary_only=False,
        services=services,
        events=[Event(at=datetime.now(UTC), kind="finished", message="done")],
    )
    text = summary("rollback-scope-backend-production", result)
    assert text.splitlines() == [
        "rollback-scope-backend-production: backend in production: "
        "1 Failed, 1 RolledBack, 1 Skipped",
        "  api     RolledBack  v2 → v1               v1 is live",
        "  orders  Failed      - → -                 no good version (RollbackImpossible)",
        "  web     Skipped     - → -                 nothing running",
    ]
    assert [s.service for s in result.failed] == ["orders"]
