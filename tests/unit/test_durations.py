from datetime import timedelta

import pytest

from workflows.durations import format_duration, parse_duration


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
