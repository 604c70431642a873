"""Health check and smoke test specs: defaults, one-of, placeholders, errors that name the field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from activities.health import ExecCheck, HealthCheck, HttpCheck, SmokeTest
from activities.health.activities import CheckHealthInput, SmokeTestInput
from activities.health.probes import address_for, split_target


def error_of(model: type, data: dict) -> str:
    with pytest.raises(ValidationError) as e:
        model.model_validate(data)
    return str(e.value)


def test_defaults_are_kubernetes_probe_defaults():
    check = HealthCheck.model_validate({"http": {}})
    assert check.kind == "http"
    assert check.http == HttpCheck(path="/healthz", port=None, scheme="http", expected_status=200)
    assert (check.initial_delay_seconds, check.period_seconds, check.timeout_seconds) == (0, 10, 1)
    assert (check.failure_threshold, check.success_threshold) == (3, 1)


def test_camel_case_round_trips_for_the_temporal_ui():
    data = {
        "grpc": {"port": 50051, "service": "checkout"},
        "initialDelaySeconds": 2,
        "periodSeconds": 0.5,
        "timeoutSeconds": 0.2,
        "failureThreshold": 5,
        "successThreshold": 2,
    }
    check = HealthCheck.model_validate(data)
    dumped = check.model_dump(exclude_none=True)
    assert dumped == {**data, "grpc": {"port": 50051, "service": "checkout"}}
    assert HealthCheck.model_validate(dumped) == check


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({}, "set exactly one of http, tcp, exec, grpc; got none"),
        ({"http": {}, "tcp": {}}, "set exactly one of http, tcp, exec, grpc; got http, tcp"),
    ],
)
def test_exactly_one_probe_kind(data, expected):
    assert expected in error_of(HealthCheck, data)


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"tcp": {}, "periodSeconds": -1}, "periodSeconds", "greater than 0"),
        ({"tcp": {}, "periodSeconds": 0}, "periodSeconds", "greater than 0"),
        ({"tcp": {}, "timeoutSeconds": 0}, "timeoutSeconds", "greater than 0"),
        (
            {"tcp": {}, "initialDelaySeconds": -1},
            "initialDelaySeconds",
            "greater than or equal to 0",
        ),
        ({"tcp": {}, "failureThreshold": 0}, "failureThreshold", "greater than or equal to 1"),
        ({"tcp": {}, "successThreshold": 0}, "successThreshold", "greater than or equal to 1"),
        ({"tcp": {"port": 70000}}, "tcp.port", "less than or equal to 65535"),
        ({"http": {"path": "healthz"}}, "http.path", "must start with '/'"),
        ({"http": {"scheme": "ftp"}}, "http.scheme", "'http' or 'https'"),
        ({"http": {"expectedStatus": 42}}, "http.expectedStatus", "greater than or equal to 100"),
        ({"exec": {"command": []}}, "exec.command", "at least 1 item"),
        ({"tcp": {}, "periodSecs": 1}, "periodSecs", "Extra inputs are not permitted"),
    ],
)
def test_invalid_fields_are_named(data, field, message):
    error = error_of(HealthCheck, data)
    assert f"\n{field}\n" in error
    assert message in error


def test_an_unknown_exec_placeholder_names_the_field_and_the_placeholder():
    error = error_of(HealthCheck, {"exec": {"command": ["nc", "-z", "{hots}", "{port}"]}})
    assert "\nexec.command\n" in error
    assert "command[2] '{hots}': unknown placeholder {hots}; use {host}, {port}" in error


@pytest.mark.parametrize("arg", ["{}", "{0}", "{host.name}", "{port[0]}"])
def test_positional_and_attribute_placeholders_are_unknown(arg):
    assert "unknown placeholder" in error_of(ExecCheck, {"command": ["echo", arg]})


@pytest.mark.parametrize("script", ["f() { true; }; f", "echo {", "echo }"])
def test_a_literal_brace_says_how_to_write_one(script):
    error = error_of(ExecCheck, {"command": ["sh", "-c", script]})
    assert f"command[2] {script!r}" in error
    assert "write {{ and }} for literal braces" in error


def test_exec_placeholders_are_filled_and_doubled_braces_kept():
    check = ExecCheck(command=["sh", "-c", "f() {{ nc -z $0 $1; }}; f", "{host}", "{port}"])
    assert check.render("10.0.0.5", 8080) == [
        "sh",
        "-c",
        "f() { nc -z $0 $1; }; f",
        "10.0.0.5",
        "8080",
    ]


def test_smoke_test_defaults_and_method_normalised():
    test = SmokeTest.model_validate({"name": "home", "method": "post"})
    assert (test.path, test.method, test.expected_status) == ("/", "POST", 200)
    assert (test.body_contains, test.headers, test.timeout_seconds) == (None, {}, 5)


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"name": "x", "method": "GET /"}, "method", "must be an HTTP method"),
        ({"name": "x", "path": "checkout"}, "path", "must start with '/'"),
        ({"name": "x", "timeoutSeconds": 0}, "timeoutSeconds", "greater than 0"),
        ({"name": ""}, "name", "at least 1 character"),
        ({"name": "x", "headers": {"X Token": "v"}}, "headers", "is not a valid header name"),
    ],
)
def test_invalid_smoke_tests_name_the_field(data, field, message):
    error = error_of(SmokeTest, data)
    assert f"\n{field}\n" in error
    assert message in error


def test_a_bad_header_value_is_rejected_without_echoing_it():
    error = error_of(
        SmokeTest, {"name": "x", "headers": {"Authorization": "Bearer s3cret\r\nX: y"}}
    )
    assert "the value of Authorization must not contain line breaks" in error
    assert "s3cret" not in error


@pytest.mark.parametrize(
    ("base_url", "message"),
    [
        ("127.0.0.1:8002", "must be an http(s) URL"),
        ("http://user:pw@127.0.0.1:8002", "must not carry credentials"),
        ("http://127.0.0.1:8002/?x=1", "must not carry a query"),
        ("http://127.0.0.1:99999", "has an invalid port"),
    ],
)
def test_smoke_base_url_must_be_a_plain_http_url(base_url, message):
    error = error_of(SmokeTestInput, {"tests": [], "baseUrl": base_url, "key": "k"})
    assert "\nbaseUrl\n" in error
    assert message in error


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("10.0.0.5:8080", ("10.0.0.5", 8080)),
        ("checkout-2.internal:80", ("checkout-2.internal", 80)),
        ("[::1]:9000", ("::1", 9000)),
        ("10.0.0.5", ("10.0.0.5", None)),
    ],
)
def test_split_target(target, expected):
    assert split_target(target) == expected


@pytest.mark.parametrize("target", ["", "10.0.0.5:http", "10.0.0.5:0", "http://x:1/", "a:1/b"])
def test_malformed_targets_raise(target):
    with pytest.raises(ValueError, match="target"):
        split_target(target)


def test_the_checks_port_wins_over_the_targets():
    target = "10.0.0.5:8080"
    assert address_for(HealthCheck(http=HttpCheck(port=9090)), target) == ("10.0.0.5", 9090)
    assert address_for(HealthCheck(http=HttpCheck()), target) == ("10.0.0.5", 8080)
    assert address_for(HealthCheck(exec=ExecCheck(command=["true"])), "h:1") == ("h", 1)
    with pytest.raises(ValueError, match="has no port and the http check sets none"):
        address_for(HealthCheck(http=HttpCheck()), "10.0.0.5")


def test_check_health_input_serialises_by_alias():
    data = {"check": {"tcp": {}}, "target": "127.0.0.1:1", "key": "wf/step-1", "maxProbes": 5}
    dumped = CheckHealthInput.model_validate(data).model_dump(exclude_defaults=True)
    assert dumped == data
