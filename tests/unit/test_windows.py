from datetime import UTC, datetime, time, timedelta

import pytest

from workflows.core.windows import check_time_zone, in_allowed, next_opening, parse_clock

WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri"]
BUSINESS = (WEEKDAYS, time(9), time(17), "UTC")
MONDAY_8 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # a Monday


def test_inside_business_hours_opens_now():
    noon = MONDAY_8.replace(hour=12)
    assert next_opening(noon, [BUSINESS], []) == noon


def test_before_business_hours_waits_for_nine():
    assert next_opening(MONDAY_8, [BUSINESS], []) == MONDAY_8.replace(hour=9)


def test_friday_evening_waits_for_monday():
    friday_evening = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
    assert next_opening(friday_evening, [BUSINESS], []) == datetime(2026, 11, 30, 9, tzinfo=UTC)


def test_a_freeze_pushes_past_its_end_and_into_the_next_window():
    freeze = (MONDAY_8, MONDAY_8 + timedelta(days=1, hours=10))  # until Tuesday 18:00
    assert next_opening(MONDAY_8, [BUSINESS], [freeze]) == datetime(2026, 11, 25, 9, tzinfo=UTC)


def test_no_allowed_windows_means_always_open_except_freezes():
    freeze = (MONDAY_8 - timedelta(hours=1), MONDAY_8 + timedelta(hours=3))
    assert next_opening(MONDAY_8, [], [freeze]) == MONDAY_8 + timedelta(hours=3)


def test_windows_are_judged_in_their_time_zone():
    tokyo = (WEEKDAYS, time(9), time(17), "Asia/Tokyo")
    # Monday 08:00 UTC is Monday 17:00 in Tokyo: closed until Tuesday 09:00 Tokyo (00:00 UTC).
    assert next_opening(MONDAY_8, [tokyo], []) == datetime(2026, 11, 24, 0, tzinfo=UTC)


def test_overnight_window_wraps_midnight():
    night = (["Mon"], time(22), time(6), "UTC")
    assert in_allowed(MONDAY_8.replace(hour=23), *night)
    assert in_allowed(MONDAY_8.replace(hour=5) + timedelta(days=1), *night)  # Tuesday 05:00
    assert not in_allowed(MONDAY_8.replace(hour=5), *night)  # Monday 05:00 is Sunday's night


@pytest.mark.parametrize(
    ("text", "expected"), [("09:00", time(9)), ("00:00", time(0)), ("24:00", time.max)]
)
def test_parse_clock(text, expected):
    assert parse_clock(text) == expected


@pytest.mark.parametrize("text", ["9", "9:5", "25:00", "12:60", "noon"])
def test_parse_clock_rejects(text):
    with pytest.raises(ValueError, match="HH:MM"):
        parse_clock(text)


@pytest.mark.parametrize(
    "zone", ["UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires", "Etc/GMT+5"]
)
def test_iana_time_zones_are_accepted(zone):
    assert check_time_zone(zone) == zone


@pytest.mark.parametrize(
    ("zone", "shown"),
    [
        ("E" * 5000, "'EEEEEEEEEEEEEEEEEEEE'… (5000 characters)"),  # OSError: name too long
        ("Europe", "'Europe'"),  # a directory of zones
        ("zone.tab", "'zone.tab'"),  # a file, but no zone
        ("../../etc/passwd", "'../../etc/passwd'"),
        ("/etc/localtime", "'/etc/localtime'"),
        ("UTC\x00", "'UTC\\x00'"),
        ("Mars/Olympus", "'Mars/Olympus'"),
        ("", "''"),
    ],
)
def test_anything_else_is_an_unknown_time_zone(zone, shown):
    with pytest.raises(ValueError, match="unknown time zone") as caught:
        check_time_zone(zone)
    assert str(caught.value) == f"unknown time zone {shown} (use an IANA name like Europe/Berlin)"
