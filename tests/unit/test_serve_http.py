"""`deployflow serve`'s HTTP layer: hostile input is a 4xx and never reaches Temporal.

The app runs in-process (aiohttp's test server, real HTTP on 127.0.0.1) with a recording
``deliver`` and ``connect`` in place of Temporal, so each test can count what got through.
What happens in Temporal is tests/integration/test_serve_intake.py's business.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from starters import serve, serve_command
from starters.errors import UsageError
from workers.listen import parse_listen
from workers.runbook_files import load_runbook_path
from workflows.core.spec import SpecError
from workflows.incidents.intake import Delivery
from workflows.incidents.models import AlertNotification
from workflows.incidents.spec import Runbook, load_runbooks

DATA = Path(__file__).resolve().parents[1] / "data" / "alertmanager"
FIRING = json.loads((DATA / "firing.json").read_text())
TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
LIMIT = 64 * 1024
PATH = serve.ALERTMANAGER_PATH
RUNBOOK = """
apiVersion: deployflow/v1
kind: Runbook
metadata: {name: checkout-errors}
spec:
  match: {alertname: CheckoutHighErrorRate}
  steps:
    - page: {}
"""
RUNBOOKS = load_runbooks(RUNBOOK)
HYPOTHESIS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@dataclass
class Temporal:
    """Stands in for Temporal: records connects and deliveries; ``fail`` makes both raise."""

    connects: int = 0
    delivered: list[tuple[str, AlertNotification, list[Runbook], str | None]] = field(
        default_factory=list
    )
    connect_error: BaseException | None = None
    deliver_error: BaseException | None = None
    hang: bool = False

    async def connect(self) -> Client:
        self.connects += 1
        if self.connect_error is not None:
            raise self.connect_error
        return cast(Client, object())

    async def deliver(
        self,
        client: Client,
        task_queue: str,
        notification: AlertNotification,
        runbooks: list[Runbook],
        ui_base: str | None,
    ) -> Delivery:
        if self.hang:
            await asyncio.Event().wait()
        if self.deliver_error is not None:
            raise self.deliver_error
        self.delivered.append((task_queue, notification, runbooks, ui_base))
        return Delivery("incident-x-1", "started-or-signalled", "runbook checkout-errors")

    @property
    def calls(self) -> int:
        return self.connects + len(self.delivered)


async def start(temporal: Temporal, **options: Any) -> TestClient[Any, Any]:
    settings: dict[str, Any] = {
        "runbooks": list(RUNBOOKS),
        "token": TOKEN,
        "max_body_bytes": LIMIT,
        "task_queue": "incidents",
        "ui_base": "http://ui:8233",
    } | options
    app = serve.build_app(temporal.connect, deliver=temporal.deliver, **settings)
    client: TestClient[Any, Any] = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    return client


@pytest_asyncio.fixture(loop_scope="session")
async def temporal() -> Temporal:
    return Temporal()


@pytest_asyncio.fixture(loop_scope="session")
async def http(temporal: Temporal) -> AsyncIterator[TestClient[Any, Any]]:
    client = await start(temporal)
    yield client
    await client.close()


async def post(
    http: TestClient[Any, Any], body: bytes | Any, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with http.post(PATH, data=data, headers=AUTH if headers is None else headers) as resp:
        answer = await resp.json(content_type=None)
        return resp.status, answer


# -- the happy path -------------------------------------------------------------------


async def test_a_firing_notification_is_delivered_with_the_runbooks_and_ui(http, temporal):
    status, body = await post(http, FIRING)

    assert (status, body) == (
        200,
        {
            "incidents": [
                {
                    "workflowId": "incident-x-1",
                    "action": "started-or-signalled",
                    "reason": "runbook checkout-errors",
                }
            ]
        },
    )
    [(task_queue, notification, runbooks, ui_base)] = temporal.delivered
    assert (task_queue, ui_base) == ("incidents", "http://ui:8233")
    assert notification.group_key == FIRING["groupKey"]
    assert [r.name for r in runbooks] == ["checkout-errors"]


async def test_content_type_parameters_are_accepted(http, temporal):
    headers = AUTH | {"Content-Type": "application/json; charset=utf-8"}

    assert (await post(http, FIRING, headers))[0] == 200


async def test_healthz_answers_without_a_token(http):
    async with http.get("/healthz") as resp:
        assert resp.status == 200
        assert await resp.json() == {"status": "ok", "runbooks": 1}


async def test_runbooks_replaced_in_place_are_used_by_the_next_request(temporal):
    runbooks = list(RUNBOOKS)
    client = await start(temporal, runbooks=runbooks)
    try:
        runbooks[:] = []
        await post(client, FIRING)
    finally:
        await client.close()

    [(_, _, seen, _)] = temporal.delivered
    assert seen == []


# -- authentication ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("authorization", "challenge"),
    [
        (None, 'Bearer realm="deployflow"'),
        ("", 'Bearer realm="deployflow"'),
        ("Bearer", 'Bearer realm="deployflow"'),
        (f"Basic {TOKEN}", 'Bearer realm="deployflow"'),
        ("Bearer wrong", 'Bearer realm="deployflow", error="invalid_token"'),
        (f"Bearer {TOKEN}x", 'Bearer realm="deployflow", error="invalid_token"'),
        ("Bearer s3cret-tokén", 'Bearer realm="deployflow", error="invalid_token"'),
    ],
)
async def test_a_missing_or_wrong_token_is_401_with_a_bearer_challenge(
    http, temporal, authorization, challenge
):
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    async with http.post(PATH, data=json.dumps(FIRING), headers=headers) as resp:
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"] == challenge
    assert temporal.calls == 0


async def test_the_scheme_is_case_insensitive(http):
    headers = AUTH | {"Authorization": f"bearer {TOKEN}"}

    assert (await post(http, FIRING, headers))[0] == 200


@HYPOTHESIS
@given(st.text(alphabet=st.characters(exclude_categories=["Cc", "Cs"]), max_size=80))
async def test_any_other_authorization_header_is_401(http, temporal, authorization):
    if authorization.strip() in (f"Bearer {TOKEN}", f"bearer {TOKEN}"):
        return
    headers = {"Content-Type": "application/json", "Authorization": authorization}

    status, _ = await post(http, FIRING, headers)

    assert status == 401
    assert temporal.calls == 0


async def test_without_a_token_anyone_may_post(temporal):
    client = await start(temporal, token=None)
    try:
        status, _ = await post(client, FIRING, {"Content-Type": "application/json"})
    finally:
        await client.close()

    assert status == 200


async def test_the_access_log_never_shows_the_token(http):
    with capture_logs() as logs:
        await post(http, FIRING)
        await post(http, FIRING, AUTH | {"Authorization": "Bearer not-the-token"})

    requests = [e for e in logs if e["event"] == "request"]
    assert [(e["method"], e["path"], e["status"]) for e in requests] == [
        ("POST", PATH, 200),
        ("POST", PATH, 401),
    ]
    assert requests[0]["incidents"] == [
        {
            "workflowId": "incident-x-1",
            "action": "started-or-signalled",
            "reason": "runbook checkout-errors",
        }
    ]
    assert requests[1]["error"] == "the Bearer token is wrong"
    assert TOKEN not in repr(logs)
    assert "not-the-token" not in repr(logs)


# -- what the body may be --------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/jsonx"]
)
async def test_a_body_that_is_not_json_by_its_content_type_is_415(http, temporal, content_type):
    status, body = await post(http, FIRING, AUTH | {"Content-Type": content_type})

    assert status == 415
    assert body == {"error": f"Content-Type must be application/json, not {content_type}"}
    assert temporal.calls == 0


async def test_a_body_of_exactly_the_limit_is_read_and_one_byte_more_is_413(http, temporal):
    text = json.dumps(FIRING).encode()
    padded = text + b" " * (LIMIT - len(text))

    assert (await post(http, padded))[0] == 200
    status, body = await post(http, padded + b" ")

    assert (status, body) == (413, {"error": f"the body is larger than {LIMIT} bytes"})
    assert len(temporal.delivered) == 1


async def test_a_chunked_body_over_the_limit_is_413(http, temporal):
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(LIMIT // 1024 + 1):
            yield b" " * 1024

    async with http.post(PATH, data=chunks(), headers=AUTH) as resp:
        assert resp.status == 413
    assert temporal.calls == 0


async def test_a_schema_problem_is_400_naming_the_field(http, temporal):
    body = copy.deepcopy(FIRING)
    body["version"] = "3"
    del body["alerts"][0]["labels"]

    status, answer = await post(http, body)

    assert (status, answer) == (
        400,
        {
            "error": "not an Alertmanager webhook (version 4)",
            "problems": ["version: Input should be '4'", "alerts[0].labels: Field required"],
        },
    )
    assert temporal.calls == 0


@HYPOTHESIS
@given(st.binary(max_size=2048))
async def test_arbitrary_bytes_are_400_and_reach_no_one(http, temporal, body):
    status, answer = await post(http, body)

    assert status == 400, answer
    assert answer["problems"]
    assert temporal.calls == 0


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
# Invalid by construction: the intake takes only ``version: "4"``, and no body here has it
# (without the filter, a payload-shaped draw of every real value is a valid payload, 200).
# The other keys keep their real values often enough to reach their own checks.
NOT_4 = JSON.filter(lambda value: value != "4")
PAYLOAD_SHAPED = st.fixed_dictionaries(
    {},
    optional={
        key: NOT_4 if key == "version" else st.just(value) | JSON for key, value in FIRING.items()
    },
)
NOT_A_PAYLOAD = JSON.filter(lambda body: not isinstance(body, dict) or body.get("version") != "4")


@HYPOTHESIS
@given(NOT_A_PAYLOAD | PAYLOAD_SHAPED)
async def test_arbitrary_json_is_400_and_reaches_no_one(http, temporal, body):
    status, answer = await post(http, body)

    assert status == 400, answer
    assert temporal.calls == 0


def paths(value: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every path into ``value`` (JSON), containers and leaves."""
    found: list[tuple[str | int, ...]] = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, inner in value.items():
            found += paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += paths(inner, (*prefix, index))
    return found


def spelled(path: tuple[str | int, ...]) -> str:
    """The path as the intake's problems spell it: ``alerts[0].labels.service``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


DELETE = object()
REPLACEMENTS = (
    st.just(DELETE)
    | st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.lists(st.integers(), max_size=3)
    | st.dictionaries(st.text(max_size=5), st.integers(), max_size=3)
    | st.integers(min_value=1, max_value=LIMIT + 1024).map(lambda n: "x" * n)
)


@HYPOTHESIS
@given(st.sampled_from(paths(FIRING)), REPLACEMENTS)
@example(("alerts", 0), DELETE)
@example(("alerts", 0, "labels", "alertname"), 7)
@example(("groupKey",), "x" * (LIMIT + 1))
async def test_a_valid_payload_broken_at_any_path_is_refused_there_or_still_delivered(
    http, temporal, path, replacement
):
    body = copy.deepcopy(FIRING)
    *parents, last = path
    container = body
    for part in parents:
        container = container[part]
    if replacement is DELETE:
        del container[last]
    else:
        container[last] = replacement
    before = len(temporal.delivered)

    status, answer = await post(http, body)

    assert status in (200, 400, 413), answer
    assert len(temporal.delivered) - before == (1 if status == 200 else 0)
    if status == 400:
        named = [spelled(path)]
        if replacement is DELETE:  # the last alert deleted leaves ``alerts`` invalid
            named.append(spelled(path[:-1]) or "(top level)")
        prefixes = tuple(f"{where}{end}" for where in named for end in ":.[")
        assert any(p.startswith(prefixes) for p in answer["problems"]), (named, answer)


# -- when Temporal cannot take it -------------------------------------------------------------


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        (
            "connect_error",
            RuntimeError("Failed client connect: Server connection error: tcp connect error"),
        ),
        ("deliver_error", RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b"")),
        ("deliver_error", RPCError("deadline", RPCStatusCode.DEADLINE_EXCEEDED, b"")),
    ],
)
async def test_temporal_unreachable_is_503_so_alertmanager_retries(failure, message):
    temporal = Temporal(**{failure: message})
    client = await start(temporal)
    try:
        status, body = await post(client, FIRING)
    finally:
        await client.close()

    assert status == 503
    assert body == {"error": f"Temporal is unreachable, retry later: {message}"}


async def test_temporal_not_answering_in_time_is_503():
    client = await start(Temporal(hang=True), deliver_timeout=0.2)
    try:
        status, body = await post(client, FIRING)
    finally:
        await client.close()

    assert (status, body) == (
        503,
        {"error": "Temporal is unreachable, retry later: no answer in time"},
    )


async def test_a_bug_is_a_500_that_shows_no_internals_and_is_logged():
    client = await start(Temporal(deliver_error=KeyError("internal detail")))
    try:
        with capture_logs() as logs:
            status, body = await post(client, FIRING)
    finally:
        await client.close()

    assert (status, body) == (500, {"error": "internal error, see the server's log"})
    [failure] = [e for e in logs if e["event"] == "request failed"]
    assert failure["exc_info"] is True


# -- starting the server -----------------------------------------------------------------------


def test_runbooks_load_from_a_directory_in_name_order(tmp_path):
    (tmp_path / "b.yml").write_text(RUNBOOK.replace("checkout-errors", "b-runbook"))
    (tmp_path / "a.yaml").write_text(RUNBOOK.replace("checkout-errors", "a-runbook"))
    (tmp_path / "notes.txt").write_text("not yaml")

    assert [r.name for r in load_runbook_path(tmp_path)] == ["a-runbook", "b-runbook"]


def test_invalid_runbooks_name_file_and_field(tmp_path):
    (tmp_path / "a.yaml").write_text(RUNBOOK)
    (tmp_path / "b.yaml").write_text(RUNBOOK.replace("- page: {}", "- pag: {}"))
    (tmp_path / "c.yaml").write_text(RUNBOOK)

    with pytest.raises(SpecError) as caught:
        load_runbook_path(tmp_path)

    assert caught.value.problems == [
        "b.yaml: document 1: spec.steps[0].pag: Extra inputs are not permitted",
        "metadata.name: runbook 'checkout-errors' is defined in more than one file",
    ]


def test_an_empty_runbook_directory_is_an_error(tmp_path):
    with pytest.raises(SpecError, match=r"no \*\.yaml or \*\.yml file"):
        load_runbook_path(tmp_path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9095", ("127.0.0.1", 9095)),
        ("[::1]:80", ("::1", 80)),
        ("0.0.0.0:1", ("0.0.0.0", 1)),
    ],
)
def test_listen_addresses(text, expected):
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["9095", ":9095", "host:", "host:http", "host:0", "host:65536"])
def test_bad_listen_addresses_are_usage_errors(text):
    with pytest.raises(UsageError, match="--listen: expected HOST:PORT"):
        parse_listen(text)


def test_the_token_is_required_unless_auth_is_explicitly_off(monkeypatch):
    monkeypatch.delenv(serve.TOKEN_ENV, raising=False)
    with pytest.raises(UsageError, match="DEPLOYFLOW_WEBHOOK_TOKEN is not set"):
        serve.webhook_token(insecure_no_auth=False)
    assert serve.webhook_token(insecure_no_auth=True) is None

    monkeypatch.setenv(serve.TOKEN_ENV, " from-a-file\n")
    assert serve.webhook_token(insecure_no_auth=True) == "from-a-file"


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="deployflow")
    serve_command.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["serve", *argv])


def test_the_cli_defaults(tmp_path):
    args = parse("--runbooks", str(tmp_path))

    assert (args.listen, args.max_body_bytes, args.insecure_no_auth, args.ui_url) == (
        "127.0.0.1:9095",
        1024 * 1024,
        False,
        None,
    )
    assert args.needs_client is False


def test_invalid_runbooks_stop_serve_before_it_listens(tmp_path, monkeypatch):
    monkeypatch.setenv(serve.TOKEN_ENV, TOKEN)
    (tmp_path / "r.yaml").write_text(RUNBOOK.replace("page: {}", "page: {severity: loud}"))
    args = parse("--runbooks", str(tmp_path / "r.yaml"), "--listen", "127.0.0.1:1")

    with pytest.raises(SpecError) as caught:
        args.func(args)

    assert caught.value.problems == [
        "document 1: spec.steps[0].page.severity: "
        "Input should be 'critical', 'error', 'warning' or 'info'"
    ]
