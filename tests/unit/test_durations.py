from datetime import timedelta

import pytest

from workflows.core.durations import MAX_DURATION, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("1h", timedelta(hours=1)),
        ("1h30m", timedelta(minutes=90)),
        ("250ms", timedelta(milliseconds=250)),
        ("1.5s", timedelta(seconds=1.5)),
        ("2d", timedelta(days=2)),
        ("45", timedelta(seconds=45)),
        (10, timedelta(seconds=10)),
        (0.5, timedelta(seconds=0.5)),
    ],
)
def test_parses_the_forms_specs_use(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "5 minutes", "m5", "-5s", "5s5", "1h-2m", True, -1])
def test_rejects_everything_else_with_the_accepted_forms(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["30s", "5m", "1h30m", "250ms", "2h", "1m1s"])
def test_format_round_trips(text):
    assert format_duration(parse_duration(text)) == text


@pytest.mark.parametrize("value", ["365d", "8760h", 365 * 86400])
def test_a_year_is_the_longest_duration(value):
    assert parse_duration(value) == MAX_DURATION == timedelta(days=365)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("366d", "at most a year (365d), got 366d"),
        ("99999999999999999999s", "at most a year (365d), got 99999999999999999999s"),
        pytest.param(10**5000, "at most a year (365d), got a number that large", id="huge"),
        pytest.param(-(10**5000), "must not be negative, got a number that large", id="-huge"),
        pytest.param("9" * 5000 + "s", "got 5001 characters", id="long"),
        (float("inf"), "got inf"),
        (float("nan"), "got nan"),
        ("1e308s", "got '1e308s'"),
        ("²", "got '²'"),
    ],
)
def test_absurd_durations_are_refused_without_overflowing(value, message):
    with pytest.raises(ValueError, match="duration") as caught:
        parse_duration(value)
    assert str(caught.value).endswith(message)
