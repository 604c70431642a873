"""ServiceMonitor specs: good ones load with their runbook resolved; bad ones name the field."""

from __future__ import annotations

import copy
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from activities.metrics.trend import SeriesTrend
from workflows.core.spec import SpecError
from workflows.monitors.cadence import cadence_minutes
from workflows.monitors.spec import ServiceMonitor, describe, load_monitor, parse_monitor

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "monitors" / "checkout.yaml"
PROMETHEUS = {"prometheus": {"address": "http://127.0.0.1:9090", "query": "up"}}


def monitor_doc(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "service": "checkout",
        "environment": "production",
        "schedule": {
            "timeZone": "Europe/Berlin",
            "businessHours": {"days": ["Mon", "Tue"], "start": "09:00", "end": "18:00",
                              "every": "5m"},
            "offHours": {"every": "15m"},
        },
        "servers": ["127.0.0.1:18001"],
        "healthCheck": {"http": {"path": "/healthz"}},
    }  # fmt: skip
    body.update(spec)
    return {
        "apiVersion": "deployflow/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "checkout-production"},
        "spec": body,
    }


def runbook_doc(name: str = "checkout-unhealthy", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "deployflow/v1",
        "kind": "Runbook",
        "metadata": {"name": name},
        "spec": {"steps": [{"page": {}}], **spec},
    }


HEALING = {
    "platform": {"command": {"deploy": ["true"], "restart": ["true"]}},
    "maxRestarts": 2,
    "per": "30m",
    "backoff": "1m",
    "verifyAfter": "10s",
}


def problems(*documents: Any) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse_monitor(list(documents), "monitor.yaml")
    return caught.value.problems


def test_the_example_loads_with_its_runbook_resolved():
    monitor = load_monitor(EXAMPLE.read_text(), str(EXAMPLE))
    assert monitor.schedule_id == "monitor-checkout-demo"
    assert monitor.runbook is not None
    assert monitor.runbook.name == "checkout-unhealthy"
    assert monitor.spec.memory_leak is not None
    assert monitor.spec.memory_leak.min_growth_per_minute == 10 * 2**20
    assert "runbook checkout-unhealthy" in describe(monitor)


def test_the_kubernetes_example_loads():
    path = EXAMPLE.with_name("checkout-kubernetes.yaml")
    monitor = load_monitor(path.read_text(), str(path))
    assert [d.describe() for d in monitor.spec.deployments] == [
        "prod-a/shop/deployment/checkout",
        "prod-b/shop/deployment/checkout",
    ]
    assert monitor.spec.self_healing is not None
    assert monitor.spec.self_healing.platform is None


def test_a_monitor_survives_the_trip_through_json_like_a_workflow_input():
    monitor = load_monitor(EXAMPLE.read_text())
    again = ServiceMonitor.model_validate_json(monitor.model_dump_json())
    assert again == monitor
    assert again.runbook == monitor.runbook


def test_the_incident_runbook_is_found_among_several():
    doc = monitor_doc(selfHealing=HEALING, incident={"runbook": "b"})
    monitor = parse_monitor([runbook_doc("a"), doc, runbook_doc("b", service="checkout")])
    assert monitor.runbook is not None
    assert monitor.runbook.name == "b"
    assert monitor.spec.self_healing is not None
    assert monitor.spec.self_healing.backoff_after(1) == timedelta(minutes=1)
    assert monitor.spec.self_healing.backoff_after(3) == timedelta(minutes=4)


def test_a_monitor_without_incident_or_healing_needs_no_runbook():
    monitor = parse_monitor([monitor_doc(healthCheck=None, slos=[
        {"name": "errors", "provider": PROMETHEUS, "successCondition": "result[0] < 0.01"}
    ], servers=[])])  # fmt: skip
    assert monitor.runbook is None
    assert monitor.spec.slos[0].name == "errors"


@pytest.mark.parametrize(
    ("text", "bytes_per_minute"),
    [("1Mi", 2**20), ("512Ki", 512 * 1024), ("2M", 2_000_000), ("1.5Gi", 1.5 * 2**30),
     (1048576, 1048576), ("4096", 4096)],
)  # fmt: skip
def test_memory_growth_accepts_kubernetes_quantities(text, bytes_per_minute):
    leak = {"provider": PROMETHEUS, "minGrowthPerMinute": text}
    monitor = parse_monitor([monitor_doc(memoryLeak=leak)])
    assert monitor.spec.memory_leak is not None
    assert monitor.spec.memory_leak.min_growth_per_minute == bytes_per_minute
    assert monitor.spec.memory_leak.window_seconds == 600
    assert monitor.spec.memory_leak.min_r2 == 0.9


def test_a_leak_is_steady_growth_above_the_threshold():
    leak = {"provider": PROMETHEUS, "minGrowthPerMinute": "1Mi", "minR2": 0.8}
    spec = parse_monitor([monitor_doc(memoryLeak=leak)]).spec.memory_leak
    assert spec is not None

    def trend(slope: float | None, r2: float | None) -> SeriesTrend:
        return SeriesTrend(labels={}, points=30, first=0, last=0, slope_per_second=slope, r2=r2)

    mib_per_second = 2**20 / 60
    assert spec.is_leak(trend(mib_per_second, 0.95))
    assert not spec.is_leak(trend(mib_per_second * 0.9, 0.95))  # too slow
    assert not spec.is_leak(trend(mib_per_second * 10, 0.5))  # growth, but a sawtooth
    assert not spec.is_leak(trend(None, None))  # too few points to say


@pytest.mark.parametrize(
    ("every", "minutes"),
    [("1m", 1), ("5m", 5), ("15m", 15), ("20m", 20), ("30m", 30), ("1h", 60), ("2h", 120),
     ("6h", 360), ("24h", 1440), ("60m", 60), (300, 5)],
)  # fmt: skip
def test_cadences_that_divide_an_hour_or_a_day(every, minutes):
    assert cadence_minutes(str(every) + ("s" if isinstance(every, int) else "")) == minutes


@pytest.mark.parametrize("every", ["7m", "45m", "90m", "5h", "30s", "0s", "5m30s"])
def test_cadences_that_do_not_repeat_evenly_are_rejected(every):
    with pytest.raises(ValueError, match="must"):
        cadence_minutes(every)


SCHEDULE = monitor_doc()["spec"]["schedule"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"schedule": {**SCHEDULE, "timeZone": "Mars/Olympus"}},
         "spec.schedule.timeZone: unknown time zone 'Mars/Olympus'"),
        ({"schedule": {**SCHEDULE, "offHours": {"every": "7m"}}},
         "spec.schedule.offHours.every: must divide an hour"),
        ({"schedule": {**SCHEDULE, "businessHours": {**SCHEDULE["businessHours"], "every": "45m"}}},
         "spec.schedule.businessHours.every: must divide an hour"),
        ({"schedule": {**SCHEDULE, "businessHours": {**SCHEDULE["businessHours"], "days": ["Funday"]}}},
         "spec.schedule.businessHours.days[0]: Input should be 'Mon'"),
        ({"schedule": {**SCHEDULE, "businessHours": {**SCHEDULE["businessHours"], "end": "08:00"}}},
         "spec.schedule.businessHours: end 08:00 must be after start 09:00"),
        ({"schedule": {**SCHEDULE, "businessHours": {**SCHEDULE["businessHours"], "start": "9am"}}},
         "spec.schedule.businessHours.start: expected HH:MM"),
        ({"schedule": {"timeZone": "UTC"}},
         "spec.schedule: set businessHours, offHours or both"),
        ({"schedule": {**SCHEDULE, "runTimeout": "1s"}},
         "spec.schedule: runTimeout: at least 10s"),
        ({"servers": ["127.0.0.1"]}, "spec.servers[0]: '127.0.0.1' is not host:port"),
        ({"servers": ["127.0.0.1:1", "127.0.0.1:1"]}, "spec.servers: 127.0.0.1:1 listed twice"),
        ({"servers": []}, "spec.servers: healthCheck needs at least one server to probe"),
        ({"healthCheck": None},
         "spec: nothing to check; set healthCheck, deployments, slos, memoryLeak, certificates or dns"),
        ({"deployments": [{"name": "Checkout"}]},
         "spec.deployments[0].name: 'Checkout' is not a DNS-1123 label"),
        ({"deployments": [{"name": "checkout", "namespace": "Shop"}]},
         "spec.deployments[0].namespace: 'Shop' is not a DNS-1123 label"),
        ({"deployments": [{"name": "checkout", "context": "a\x00b"}]},
         "spec.deployments[0].context: 'a\\x00b' is not a kubeconfig context name"),
        ({"deployments": [{"name": "checkout", "cluster": "prod"}]},
         "spec.deployments[0].cluster: Extra inputs are not permitted"),
        ({"deployments": [{"name": "checkout"}, {"name": "checkout", "namespace": "default"}]},
         "spec.deployments[1]: default/default/deployment/checkout listed twice"),
        ({"selfHealing": {**HEALING, "platform": None}, "incident": {"runbook": "r"}},
         "spec.selfHealing.platform: required to restart spec.servers"),
        ({"selfHealing": {**HEALING, "platform": {"kubernetes": {"deployment": {"name": "c"}}}},
          "deployments": [{"name": "c"}]},
         "spec.selfHealing.platform.kubernetes: name the Deployment in spec.deployments"),
        ({"selfHealing": HEALING, "servers": [], "healthCheck": None,
          "slos": [{"name": "e", "provider": PROMETHEUS, "successCondition": "true"}]},
         "spec.servers: selfHealing needs at least one server or deployment to restart"),
        ({"slos": [{"name": "e", "provider": PROMETHEUS}]},
         "spec.slos[0]: set successCondition, failureCondition or both"),
        ({"slos": [{"name": "e", "provider": PROMETHEUS, "successCondition": "result <"}]},
         "spec.slos[0].successCondition:"),
        ({"slos": [{"name": "e", "provider": PROMETHEUS, "failureCondition": "x > 1"}]},
         "spec.slos[0].failureCondition: unknown variable(s) x"),
        ({"slos": [{"name": "e", "provider": PROMETHEUS, "successCondition": "true"}] * 2},
         "spec.slos: SLO 'e' defined twice"),
        ({"memoryLeak": {"provider": PROMETHEUS, "minGrowthPerMinute": "lots"}},
         "spec.memoryLeak.minGrowthPerMinute: expected bytes like 1048576, 512Ki or 1Mi"),
        ({"memoryLeak": {"provider": PROMETHEUS, "minGrowthPerMinute": 0}},
         "spec.memoryLeak.minGrowthPerMinute: Input should be greater than 0"),
        ({"memoryLeak": {"provider": PROMETHEUS, "minGrowthPerMinute": 1, "minR2": 2}},
         "spec.memoryLeak.minR2: Input should be less than or equal to 1"),
        ({"memoryLeak": {"provider": PROMETHEUS, "minGrowthPerMinute": 1, "window": "5s"}},
         "spec.memoryLeak: window: at least 10s"),
        ({"selfHealing": HEALING}, "spec.incident.runbook: required by selfHealing"),
        ({"selfHealing": HEALING, "healthCheck": None, "slos": [
            {"name": "e", "provider": PROMETHEUS, "successCondition": "true"}]},
         "spec.healthCheck: selfHealing verifies each restart with it"),
        ({"selfHealing": {**HEALING, "platform": {"command": {"deploy": ["true"]}}}},
         "spec.selfHealing.platform.command.restart: required by selfHealing"),
        ({"selfHealing": {**HEALING, "maxRestarts": 0}},
         "spec.selfHealing.maxRestarts: Input should be greater than or equal to 1"),
        ({"incident": {"runbook": "nope"}},
         "spec.incident.runbook: no kind: Runbook named 'nope' (have: none in this file)"),
        ({"incident": {"runbook": "x", "definition": runbook_doc("x")}},
         "spec.incident.definition: set from the Runbook named by spec.incident.runbook"),
        ({"service": "Checkout"}, "spec.service: String should match pattern"),
    ],
)  # fmt: skip
def test_a_bad_monitor_names_the_field(spec: dict[str, Any], message: str):
    found = problems(monitor_doc(**spec))
    assert any(p.startswith(message) for p in found), found


def deployment_monitor(**deployment: Any) -> ServiceMonitor:
    """A monitor of one Deployment alone, healed through the API (no platform, no servers)."""
    healing = {k: v for k, v in HEALING.items() if k != "platform"}
    doc = monitor_doc(
        servers=[],
        healthCheck=None,
        deployments=[deployment],
        selfHealing=healing,
        incident={"runbook": "checkout-unhealthy"},
    )
    return parse_monitor([doc, runbook_doc()])


def test_a_monitor_of_a_deployment_needs_no_servers_platform_or_health_check():
    monitor = deployment_monitor(name="checkout", namespace="shop", context="prod-a")
    [deployment] = monitor.spec.deployments
    assert deployment.describe() == "prod-a/shop/deployment/checkout"
    target = deployment.platform().deployment
    assert (target.name, target.namespace, target.context) == ("checkout", "shop", "prod-a")
    assert "readiness of prod-a/shop/deployment/checkout" in describe(monitor)
    assert ServiceMonitor.model_validate_json(monitor.model_dump_json()) == monitor


_LABEL = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True)


@settings(deadline=None, max_examples=60)
@given(
    name=_LABEL,
    namespace=st.one_of(st.none(), _LABEL),
    context=st.one_of(
        st.none(), st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=60)
    ),
)
def test_any_valid_deployment_target_loads_and_names_itself(name, namespace, context):
    fields = {"name": name, "namespace": namespace, "context": context}
    monitor = deployment_monitor(**{k: v for k, v in fields.items() if v is not None})
    [deployment] = monitor.spec.deployments
    described = f"{context or 'default'}/{namespace or 'default'}/deployment/{name}"
    assert deployment.describe() == described
    assert deployment.platform().deployment.describe() == described


@settings(deadline=None, max_examples=60)
@given(
    field=st.sampled_from(["name", "namespace"]),
    value=st.one_of(
        st.text(max_size=80).filter(
            lambda v: re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", v) is None
        ),
        st.integers(),
        st.none(),
        st.just("a" * 64),
    ),
)
def test_a_bad_deployment_target_is_refused_naming_its_field(field, value):
    target: dict[str, Any] = {"name": "checkout", field: value}
    if field == "namespace" and value is None:
        target.pop("namespace")
        target["name"] = None
        field = "name"
    found = problems(monitor_doc(deployments=[target]))
    assert any(p.startswith(f"spec.deployments[0].{field}:") for p in found), found


def test_the_runbook_must_watch_the_same_service():
    found = problems(monitor_doc(incident={"runbook": "r"}), runbook_doc("r", service="payments"))
    assert found == [
        "spec.incident.runbook: runbook 'r' is for service 'payments', "
        "this monitor watches 'checkout'"
    ]


def test_unknown_runbook_names_the_ones_there_are():
    found = problems(monitor_doc(incident={"runbook": "c"}), runbook_doc("a"), runbook_doc("b"))
    assert found == ["spec.incident.runbook: no kind: Runbook named 'c' (have: a, b)"]


def test_a_bad_runbook_is_reported_by_its_document_number():
    bad = copy.deepcopy(runbook_doc("r"))
    bad["spec"]["steps"] = [{"notify": {"text": "{{nope}}"}}]
    found = problems(monitor_doc(incident={"runbook": "r"}), bad)
    assert found[0].startswith("document 2: spec.steps[0].notify.text: unknown placeholder")


@pytest.mark.parametrize(
    ("documents", "message"),
    [
        ([], "(top level): expected exactly one kind: ServiceMonitor, found 0"),
        ([monitor_doc(), monitor_doc()], "(top level): expected exactly one kind: ServiceMonitor, found 2"),
        ([monitor_doc(), {"kind": "Rollout"}], "document 2: kind must be ServiceMonitor or Runbook, got 'Rollout'"),
        ([monitor_doc(), ["a"]], "document 2: kind must be ServiceMonitor or Runbook, got 'list'"),
    ],
)  # fmt: skip
def test_a_file_holds_one_monitor_and_runbooks(documents, message):
    assert message in problems(*documents)


def test_yaml_errors_are_spec_errors():
    with pytest.raises(SpecError, match=r"\(yaml\)"):
        load_monitor("kind: [", "m.yaml")


def test_load_reads_every_document_of_the_file():
    text = yaml.safe_dump_all([monitor_doc(incident={"runbook": "r"}), runbook_doc("r")])
    assert load_monitor(text).runbook is not None
