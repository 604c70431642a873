"""``deployflow worker``'s options: flags win over their environment variables, and a
malformed value is an error naming the flag or the variable it came from."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from starters.cli import main, parse_args
from starters.errors import UsageError
from workers.options import DEFAULT_GRACE, WorkerOptions, bind_address, parse_grace


def options(*argv: str, **env: str) -> WorkerOptions:
    return WorkerOptions.from_args(parse_args(["worker", *argv]), env)


def test_nothing_given_serves_nothing_and_waits_the_default_grace_period():
    assert options() == WorkerOptions(None, None, DEFAULT_GRACE)


def test_the_environment_sets_what_no_flag_does_and_a_flag_wins():
    env = {
        "DEPLOYFLOW_METRICS_LISTEN": "0.0.0.0:9464",
        "DEPLOYFLOW_HEALTH_LISTEN": "[::1]:9465",
        "DEPLOYFLOW_GRACE_PERIOD": "30",
    }
    assert options(**env) == WorkerOptions(("0.0.0.0", 9464), ("::1", 9465), timedelta(seconds=30))
    flagged = options("--metrics-listen=127.0.0.1:1", "--grace-period=0", **env)
    assert flagged == WorkerOptions(("127.0.0.1", 1), ("::1", 9465), timedelta(0))


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--metrics-listen=9464"], {}, "--metrics-listen: expected HOST:PORT"),
        (
            [],
            {"DEPLOYFLOW_HEALTH_LISTEN": "host:99999"},
            "DEPLOYFLOW_HEALTH_LISTEN: expected HOST:PORT",
        ),
        (["--grace-period=soon"], {}, "--grace-period: expected seconds (0 to 86400), got 'soon'"),
        ([], {"DEPLOYFLOW_GRACE_PERIOD": "-1"}, "DEPLOYFLOW_GRACE_PERIOD: expected seconds"),
        (["--grace-period=inf"], {}, "--grace-period: expected seconds"),
        (["--grace-period=1e9"], {}, "--grace-period: expected seconds (0 to 86400), got '1e9'"),
    ],
)
def test_a_malformed_option_names_where_it_came_from(argv, env, message):
    with pytest.raises(UsageError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        options(*argv, **env)


def test_the_cli_exits_2_on_a_malformed_option_before_connecting(capsys, monkeypatch):
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")  # never reached
    assert main(["worker", "--health-listen", "nope"]) == 2
    assert "--health-listen: expected HOST:PORT" in capsys.readouterr().err


@given(st.floats(min_value=0, max_value=86400))
def test_any_non_negative_number_of_seconds_is_a_grace_period(seconds):
    assert parse_grace(repr(seconds), "--grace-period") == timedelta(seconds=seconds)


@given(st.text())
def test_any_text_is_a_grace_period_or_an_error_naming_the_flag(text):
    error: UsageError | None = None
    try:
        grace = parse_grace(text, "--grace-period")
    except UsageError as exc:
        error = exc
    if error is not None:
        assert str(error).startswith("--grace-period: expected seconds (0 to 86400), got ")
    else:
        assert grace >= timedelta(0)
        assert math.isfinite(grace.total_seconds())


def test_the_sdk_binds_ipv6_in_brackets():
    assert bind_address(("::1", 9464)) == "[::1]:9464"
    assert bind_address(("127.0.0.1", 9464)) == "127.0.0.1:9464"
