"""The deployment API's HTTP layer without Temporal: its OpenAPI document, its tokens, and
hostile requests, which must be a 4xx, never a 500, and never reach Temporal.

The app runs in-process (aiohttp's test server, real HTTP on 127.0.0.1) with a ``connect``
that counts its calls and fails like an unreachable Temporal: a request that gets as far
as Temporal is counted, so "nothing was started" is a count of zero.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate
from structlog.testing import capture_logs
from temporalio.client import Client

from starters import serve
from starters.api import ROUTES, Api
from starters.api.openapi import OPENAPI_PATH
from starters.api.routing import PREFIX
from starters.api.tokens import Tokens, load_tokens, parse_tokens
from workers.config import TemporalConfig
from workflows.core.spec import SpecError

DATA = Path(__file__).resolve().parents[1] / "data"
CI_TOKEN = "ci-token-0123456789abcdef"
READER_TOKEN = "reader-token-0123456789ab"
TOKENS = parse_tokens(
    yaml.safe_dump(
        {
            "tokens": [
                {"name": "ci", "scopes": ["read", "operate"], "token": CI_TOKEN},
                {
                    "name": "reader",
                    "scopes": ["read"],
                    "sha256": hashlib.sha256(READER_TOKEN.encode()).hexdigest(),
                },
            ]
        }
    ),
    "tokens.yaml",
)
HYPOTHESIS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SPEC = {
    "apiVersion": "deployflow/v1",
    "kind": "Rollout",
    "metadata": {"name": "checkout"},
    "spec": {
        "service": "checkout",
        "environment": "staging",
        "version": "v2",
        "router": {
            "nginx": {
                "upstream": "app",
                "configPath": "/x.conf",
                "stable": ["127.0.0.1:1"],
                "canary": ["127.0.0.1:2"],
            }
        },
        "strategy": {"canary": {"steps": [{"setWeight": 50}]}},
    },
}


class Unreachable:
    """Temporal as an unreachable server; ``calls`` counts who got that far."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, identity: str | None = None) -> Client:
        self.calls += 1
        raise ConnectionError("Temporal is unreachable at stub:7233")


@pytest_asyncio.fixture(loop_scope="session")
async def temporal() -> Unreachable:
    return Unreachable()


@pytest_asyncio.fixture(loop_scope="session")
async def http(temporal: Unreachable) -> AsyncIterator[TestClient[Any, Any]]:
    api = Api(temporal, TemporalConfig(), TOKENS, max_body_bytes=64 * 1024)
    app = serve.build_app(temporal, [], None, max_body_bytes=64 * 1024, api=api)
    client: TestClient[Any, Any] = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    yield client
    await client.close()


def bearer(token: str = CI_TOKEN, content_type: str = "application/json") -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": content_type}


async def test_the_openapi_document_is_valid_and_lists_every_route(http):
    async with http.get(OPENAPI_PATH) as resp:  # no token needed to read the contract
        assert resp.status == 200
        document = await resp.json()
    validate(document)
    documented = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }
    registered = {
        (route.method, route.resource.canonical)
        for route in http.server.app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith(PREFIX)
        and route.resource.canonical != OPENAPI_PATH
        and route.method != "HEAD"
    }
    assert documented == registered
    assert len(registered) == len(ROUTES)
    operation = document["paths"][f"{PREFIX}/pipelines/{{name}}/approve"]["post"]
    assert operation["security"] == [{"bearer": ["approve"]}]
    assert set(operation["responses"]) >= {"200", "401", "403", "404", "409", "422", "429"}


@pytest.mark.parametrize(
    ("path", "method", "token", "status", "error"),
    [
        ("/rollouts", "GET", None, 401, "a Bearer token is required"),
        ("/rollouts", "GET", "x" * 30, 401, "the Bearer token is not one of the API's tokens"),
        (
            "/rollouts",
            "POST",
            READER_TOKEN,
            403,
            "the token 'reader' lacks the 'operate' scope (it has: read)",
        ),
        (
            "/pipelines/p/approve",
            "POST",
            CI_TOKEN,
            403,
            "the token 'ci' lacks the 'approve' scope (it has: operate, read)",
        ),
    ],
)
async def test_authentication_and_scopes_answer_401_and_403_with_clear_bodies(
    http, temporal, path, method, token, status, error
):
    before = temporal.calls
    headers = bearer(token) if token else {}
    async with http.request(method, PREFIX + path, headers=headers, data="{}") as resp:
        assert resp.status == status
        assert (await resp.json())["error"] == error
        assert resp.headers["WWW-Authenticate"].startswith('Bearer realm="deployflow-api"')
    assert temporal.calls == before


async def test_a_valid_spec_reaches_temporal_and_an_unreachable_one_is_503(http, temporal):
    before = temporal.calls
    async with http.post(f"{PREFIX}/rollouts", headers=bearer(), data=json.dumps(SPEC)) as resp:
        assert resp.status == 503
        assert (await resp.json())["error"].startswith("Temporal is unreachable, retry later")
    assert temporal.calls == before + 1  # so the hostile-body tests below can count on it


async def test_tokens_never_reach_the_log(http):
    with capture_logs() as logs:
        for token in (CI_TOKEN, READER_TOKEN, "a-wrong-token-0123456789"):
            async with http.get(f"{PREFIX}/whoami", headers=bearer(token)) as resp:
                await resp.read()
    assert [entry.get("caller") for entry in logs if entry["event"] == "request"] == [
        "ci",
        "reader",
        None,
    ]
    text = json.dumps(logs, default=str)
    assert CI_TOKEN not in text
    assert READER_TOKEN not in text
    assert "a-wrong-token" not in text


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)


def mutated_spec() -> st.SearchStrategy[Any]:
    """The valid spec with one field replaced by something hostile."""
    paths = [
        ("spec", "strategy", "canary", "steps"),
        ("spec", "router"),
        ("spec", "version"),
        ("metadata",),
        ("kind",),
        ("spec", "service"),
    ]

    def mutate(path: tuple[str, ...], value: Any) -> Any:
        spec = json.loads(json.dumps(SPEC))
        node = spec
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        return spec

    return st.builds(mutate, st.sampled_from(paths), json_values)


BODIES = (
    st.binary(max_size=300).map(lambda b: (b, "application/json"))
    | st.binary(max_size=300).map(lambda b: (b, "application/yaml"))
    | json_values.map(lambda v: (json.dumps(v).encode(), "application/json"))
    | mutated_spec().map(lambda v: (json.dumps(v).encode(), "application/json"))
    | mutated_spec().map(lambda v: (yaml.safe_dump(v).encode(), "application/yaml"))
    | st.sampled_from(["text/html", "multipart/form-data", ""]).map(lambda t: (b"{}", t))
)


@HYPOTHESIS
@given(body=BODIES, route=st.sampled_from(["/rollouts", "/pipelines"]))
async def test_hostile_spec_bodies_are_a_4xx_and_start_nothing(http, temporal, body, route):
    before = temporal.calls
    data, content_type = body
    async with http.post(
        PREFIX + route, headers=bearer(content_type=content_type), data=data
    ) as resp:
        answer = await resp.json()
        assert 400 <= resp.status < 500, answer
        assert answer["error"]
    assert temporal.calls == before


@HYPOTHESIS
@given(
    body=json_values.filter(lambda v: v != {} and v is not None),
    path=st.sampled_from(
        [
            "/rollouts/checkout/staging/promote",
            "/rollouts/checkout/staging/abort",
            "/rollouts/checkout/staging/checks",
            "/rollbacks/checkout/staging",
            "/incidents/incident-x/acknowledge",
        ]
    ),
    query=st.dictionaries(
        st.sampled_from(["limit", "all", "commitTime"]), st.text(max_size=10), max_size=2
    ),
)
async def test_hostile_verb_bodies_never_get_a_500(http, temporal, body, path, query):
    async with http.post(
        PREFIX + path, headers=bearer(), data=json.dumps(body), params=query
    ) as resp:
        answer = await resp.json()
    # A body the model accepts ({"reason": "x"}) goes on to Temporal, which is unreachable.
    assert resp.status in (400, 415, 422, 503), answer


async def test_an_oversized_body_is_413(http, temporal):
    before = temporal.calls
    async with http.post(f"{PREFIX}/rollouts", headers=bearer(), data=b" " * (65 * 1024)) as resp:
        assert resp.status == 413
    assert temporal.calls == before


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("tokens: []", "tokens: List should have at least 1 item after validation, not 0"),
        (
            "tokens: [{name: ci, scopes: [read], token: short}]",
            "tokens[0].token: String should have at least 16 characters",
        ),
        (
            "tokens: [{name: ci, scopes: [deploy], token: 0123456789abcdefgh}]",
            "tokens[0].scopes[0]: Input should be 'read', 'operate' or 'approve'",
        ),
        ("tokens: [{name: ci, scopes: [read]}]", "tokens[0]: set exactly one of token, sha256"),
        (
            "[{name: a, scopes: [read], token: 0123456789abcdefgh}, {name: a, scopes: [read], token: 0123456789abcdefgX}]",
            "tokens: the name 'a' is used twice",
        ),
    ],
)
def test_a_bad_token_file_names_the_field_and_never_the_secret(text, problem):
    with pytest.raises(SpecError) as raised:
        parse_tokens(text, "tokens.yaml")
    assert raised.value.problems == [problem]
    assert "0123456789abcdefgh" not in str(raised.value)


def test_tokens_come_from_the_file_or_the_environment(tmp_path):
    path = tmp_path / "tokens.yaml"
    path.write_text(f"[{{name: ci, scopes: [read], token: {CI_TOKEN}}}]")
    assert load_tokens(str(path), {}).names == ["ci"]
    assert load_tokens(None, {"DEPLOYFLOW_API_TOKENS": path.read_text()}).names == ["ci"]
    assert len(load_tokens(None, {})) == 0
    tokens = load_tokens(str(path), {})
    assert tokens.caller(CI_TOKEN) is not None
    assert tokens.caller(CI_TOKEN + "x") is None
    assert isinstance(tokens, Tokens)
