import pytest

from workflows.rollouts.rolling_plan import batch_size, parse_int_or_percent, plan_batches, resolve

HOSTS = [f"10.0.0.{i}:80" for i in range(1, 11)]


@pytest.mark.parametrize(
    ("value", "total", "round_up", "expected"),
    [
        ("25%", 4, False, 1),
        ("25%", 10, False, 2),  # 2.5 rounds down for maxUnavailable
        ("25%", 10, True, 3),  # and up for maxSurge
        ("1%", 10, False, 0),
        ("1%", 10, True, 1),
        ("100%", 3, False, 3),
        (2, 10, False, 2),
        (20, 10, False, 10),  # never more than there are
    ],
)
def test_resolve_rounds_like_kubernetes(value, total, round_up, expected):
    assert resolve(value, total, round_up=round_up) == expected


@pytest.mark.parametrize(
    ("unavailable", "surge", "expected"),
    [("25%", "25%", 2), (1, 0, 1), (0, 1, 1), (0, "30%", 3), ("50%", 0, 5), (3, 5, 3)],
)
def test_batch_size_prefers_max_unavailable_and_falls_back_to_surge(unavailable, surge, expected):
    assert batch_size(10, unavailable, surge) == expected


def test_both_zero_is_refused():
    with pytest.raises(ValueError, match="could never start"):
        batch_size(10, "1%", 0)


def test_plan_covers_every_host_once_in_order():
    batches = plan_batches(HOSTS, 3, 0)
    assert [len(b) for b in batches] == [3, 3, 3, 1]
    assert [h for b in batches for h in b] == HOSTS


def test_one_host_at_a_time_with_kubernetes_defaults_on_four_hosts():
    assert plan_batches(HOSTS[:4], "25%", "25%") == [[h] for h in HOSTS[:4]]


@pytest.mark.parametrize(
    ("text", "expected"), [(0, 0), (3, 3), ("25%", "25%"), (" 5 ", 5), ("100%", "100%")]
)
def test_int_or_percent_accepts_counts_and_percentages(text, expected):
    assert parse_int_or_percent(text) == expected


@pytest.mark.parametrize("text", [-1, "101%", "25 %", "a", "%", True])
def test_int_or_percent_rejects_the_rest(text):
    with pytest.raises(ValueError, match=r"expected a count or a percentage|must not be negative"):
        parse_int_or_percent(text)
