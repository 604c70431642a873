"""``spec.groups`` on a Rollout and ``certificates``/``dns`` on a ServiceMonitor: what loads,
what is refused (naming the field), and hypothesis: any value either loads or is a
SpecError whose every problem names a field — never another exception."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_monitor_spec import monitor_doc, problems
from tests.unit.test_spec import GOOD as GOOD_ROLLOUT
from tests.unit.test_spec_properties import NAMES_A_FIELD
from workflows.core.spec import SpecError
from workflows.monitors.spec import parse_monitor
from workflows.rollouts.groups import in_scope
from workflows.rollouts.spec import parse_rollout

CERTS = {"minDaysLeft": 14, "endpoints": [{"host": "checkout.example.com", "port": 8443}]}
DNS = {
    "nameservers": ["127.0.0.1:5353"],
    "names": [{"name": "checkout.example.com", "expectedAddresses": ["10.0.0.5"]}],
}


def rollout_with(**spec: Any) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(GOOD_ROLLOUT.split("---")[0])
    document["spec"].update(spec)
    return document


def rollout_problems(document: dict[str, Any]) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse_rollout([document])
    return caught.value.problems


def test_groups_load_and_decide_the_scope() -> None:
    rollout = parse_rollout([rollout_with(groups=["backend", "payments"])])
    assert rollout.spec.groups == ["backend", "payments"]
    assert in_scope("backend", rollout.spec.groups)
    assert in_scope("all", rollout.spec.groups)
    assert not in_scope("frontend", rollout.spec.groups)
    assert parse_rollout([rollout_with()]).spec.groups == []


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        (["all"], "spec.groups: Value error, 'all' is reserved"),
        (["backend", "backend"], "spec.groups: backend listed twice"),
        (["Back End"], "spec.groups[0]: String should match pattern"),
        ("backend", "spec.groups: Input should be a valid list"),
    ],
)
def test_bad_groups_name_the_field(groups: Any, message: str) -> None:
    found = rollout_problems(rollout_with(groups=groups))
    assert any(p.replace("Value error, ", "").startswith(message.replace("Value error, ", ""))
               for p in found), found  # fmt: skip


def test_security_checks_load_with_their_defaults() -> None:
    monitor = parse_monitor([monitor_doc(certificates=CERTS, dns=DNS)])
    certificates, dns = monitor.spec.certificates, monitor.spec.dns
    assert certificates is not None
    assert dns is not None
    assert str(certificates.endpoints[0]) == "checkout.example.com:8443"
    assert certificates.timeout_seconds == 5
    assert dns.nameservers == ["127.0.0.1:5353"]
    assert dns.timeout_seconds == 2
    ipv6 = parse_monitor([monitor_doc(dns={**DNS, "nameservers": ["::1", "[::1]:53"]})])
    assert ipv6.spec.dns is not None
    assert ipv6.spec.dns.nameservers == ["[::1]:53", "[::1]:53"]


def test_security_checks_alone_are_something_to_check() -> None:
    doc = monitor_doc(certificates=CERTS)
    del doc["spec"]["healthCheck"]
    doc["spec"]["servers"] = []
    assert parse_monitor([doc]).spec.certificates is not None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"certificates": {"endpoints": []}}, "spec.certificates.endpoints: List should have"),
        ({"certificates": {**CERTS, "minDaysLeft": -1}}, "spec.certificates.minDaysLeft:"),
        (
            {"certificates": {"endpoints": [{"host": "bad host"}]}},
            "spec.certificates.endpoints[0].host: String should match pattern",
        ),
        (
            {"certificates": {"endpoints": [{"host": "a.example", "address": "a.example"}]}},
            "spec.certificates.endpoints[0].address: not an IP address",
        ),
        (
            {"certificates": {"endpoints": [{"host": "a.example"}, {"host": "a.example"}]}},
            "spec.certificates: endpoints: a.example:443 listed twice",
        ),
        ({"dns": {"names": []}}, "spec.dns.names: List should have"),
        ({"dns": {**DNS, "nameservers": ["ns1.example"]}}, "spec.dns.nameservers[0]: not an IP"),
        ({"dns": {**DNS, "nameservers": ["127.0.0.1:0"]}}, "spec.dns.nameservers[0]: port must"),
        (
            {"dns": {"names": [{"name": "a.example", "expectedAddresses": ["x"]}]}},
            "spec.dns.names[0].expectedAddresses[0]: not an IP address",
        ),
        ({"dns": {"names": [{"name": "A.example"}, {"name": "a.example."}]}}, "spec.dns: names:"),
        ({"dns": {**DNS, "timeoutSeconds": 0}}, "spec.dns.timeoutSeconds:"),
        (
            {"dns": {**DNS, "nameservers": ["10.0.0.1:53", "10.0.0.2:5353"]}},
            "spec.dns: nameservers: all on one port",
        ),
        ({"dns": {**DNS, "servers": []}}, "spec.dns.servers: Extra inputs"),
    ],
)
def test_bad_security_checks_name_the_field(spec: dict[str, Any], message: str) -> None:
    found = [p.replace("Value error, ", "") for p in problems(monitor_doc(**spec))]
    assert any(p.startswith(message) for p in found), found


VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=True)
    | st.text(max_size=30)
    | st.sampled_from(["all", "backend", "127.0.0.1", "::1", "[::1]:99999", "a..b", "-a"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=12,
)
SECURITY_FIELDS = [
    ("certificates", CERTS, ["minDaysLeft", "timeoutSeconds", "endpoints", "host", "port",
                             "address"]),
    ("dns", DNS, ["timeoutSeconds", "nameservers", "names", "name", "expectedAddresses"]),
]  # fmt: skip


def _only_named_problems(load: Any) -> None:
    found: list[str] = []
    try:
        load()
    except SpecError as exc:
        found = exc.problems or ["(no problem listed)"]
    unnamed = [p for p in found if not NAMES_A_FIELD.match(p)]
    assert unnamed == []


@settings(max_examples=200, deadline=None)
@given(value=VALUES)
def test_any_groups_value_loads_or_names_the_field(value: Any) -> None:
    _only_named_problems(lambda: parse_rollout([rollout_with(groups=value)]))


@settings(max_examples=300, deadline=None)
@given(
    which=st.sampled_from(SECURITY_FIELDS), data=st.data(), value=VALUES, where=st.integers(0, 9)
)
def test_any_security_check_value_loads_or_names_the_field(
    which: tuple[str, dict[str, Any], list[str]], data: st.DataObject, value: Any, where: int
) -> None:
    field, good, keys = which
    body = copy.deepcopy(good)
    key = data.draw(st.sampled_from(keys))
    # Put the value at the top of the check or inside its first list entry.
    nested = next(v for v in body.values() if isinstance(v, list))
    target = nested[0] if key in nested[0] and where % 2 else body
    target[key] = value
    _only_named_problems(lambda: parse_monitor([monitor_doc(**{field: body})]))
