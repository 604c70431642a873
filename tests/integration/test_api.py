"""The deployment API over real HTTP: a `deployflow serve` process on the dev server, a real
worker running canaries on a real NGINX, scoped tokens for CI, a reader and two approvers.
What happened is read back from Temporal itself (memo, who sent the update, results)."""

from __future__ import annotations

import asyncio
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode

from tests.fixtures.api import TOKENS, ApiClient
from tests.fixtures.harness import poll, worker
from tests.fixtures.parts import require_binary
from tests.workflows.harness import Stubs
from tests.workflows.test_pipeline import stage
from workers.main import ACTIVITY_THREADS, build_worker
from workflows.promotion.pipeline import PromotionPipeline
from workflows.rollouts.registry import BY_STRATEGY

pytestmark = pytest.mark.integration


def canary_spec(nginx, stable: str, canary: str, environment: str) -> dict[str, Any]:
    router = nginx.router_spec(stable=[stable], canary=[canary]).model_dump(mode="json")
    return {
        "apiVersion": "deployflow/v1",
        "kind": "Rollout",
        "metadata": {"name": "checkout"},
        "spec": {
            "service": "checkout",
            "environment": environment,
            "version": "v2",
            "progressDeadlineSeconds": 120,
            "router": {"nginx": router},
            "healthCheck": {"tcp": {}, "periodSeconds": 0.2, "successThreshold": 1},
            "smokeTests": [{"name": "root", "path": "/", "bodyContains": "v"}],
            "strategy": {
                "canary": {"steps": [{"setWeight": 50}, {"pause": {}}, {"setWeight": 100}]}
            },
        },
    }


async def plain_client(temporal_env) -> Client:
    address = temporal_env.client.service_client.config.target_host
    return await Client.connect(address, data_converter=pydantic_data_converter)


async def not_started(client: Client, workflow_id: str) -> bool:
    try:
        await client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        return exc.status == RPCStatusCode.NOT_FOUND
    return False


async def update_identities(client: Client, workflow_id: str) -> list[str]:
    identities = []
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            attrs = event.workflow_execution_update_accepted_event_attributes
            identities.append(attrs.accepted_request.meta.identity)
    return identities


async def test_ci_starts_follows_and_promotes_a_rollout_then_rolls_it_back(
    temporal_env, serve_api, nginx_factory, http_backend
):
    client = await plain_client(temporal_env)
    queue = f"api-{uuid.uuid4().hex[:8]}"
    environment = f"api{uuid.uuid4().hex[:6]}"
    stable, canary = http_backend("v1"), http_backend("v2")
    spec = canary_spec(nginx_factory(stable=[stable], canary=[canary]), stable, canary, environment)
    path = f"/api/v1/rollouts/checkout/{environment}"
    committed = (datetime.now(UTC) - timedelta(hours=3)).replace(microsecond=0)
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        async with build_worker(client, queue, executor):
            api: ApiClient = await serve_api(queue)
            status, started = await api.call(
                "POST",
                "/api/v1/rollouts",
                yaml_text=yaml.safe_dump(spec),
                params={"commitTime": committed.isoformat()},
            )
            assert status == 201, started
            assert started["workflowId"] == f"rollout-checkout-{environment}"

            status, again = await api.call("POST", "/api/v1/rollouts", body=spec)
            assert status == 409
            assert "already running" in again["error"]

            stream = asyncio.create_task(api.events(path + "/events", who="reader"))

            async def paused() -> dict[str, Any] | None:
                _, view = await api.call("GET", path, who="reader")
                return view if (view.get("status") or {}).get("phase") == "Paused" else None

            view = await poll(paused, "the canary paused for promotion", 60)
            assert view["status"]["weights"] == {"stable": 50, "canary": 50}
            _, health = await api.call("GET", path + "/health", who="reader")
            assert health["next"] == {
                "mayProceed": True,
                "action": "promote",
                "reason": health["next"]["reason"],
            }
            assert health["version"] == "v2"
            assert health["running"] is True

            status, checked = await api.call("POST", path + "/checks", body={"kind": "health"})
            assert status == 200, checked
            assert checked["passed"] is True
            assert sorted(r["target"] for r in checked["health"]) == sorted([stable, canary])
            status, smoke = await api.call(
                "POST", path + "/checks", body={"kind": "smoke", "pool": "canary"}
            )
            assert (status, smoke["passed"], smoke["smoke"][0]["target"]) == (200, True, canary)

            status, denied = await api.call("POST", path + "/promote", who="reader", body={})
            assert status == 403
            assert "operate" in denied["error"]
            status, answer = await api.call(
                "POST", path + "/promote", body={"reason": "looks good"}
            )
            assert status == 200, answer

            events = await asyncio.wait_for(stream, 60)
            kinds = [e[0] for e in events]
            assert kinds[-1] == "end"
            assert events[-1][2]["outcome"] == "Promoted"
            assert "status" in kinds
            timeline = [e[2] for e in events if e[0] == "timeline"]
            assert [int(e[1]) for e in events if e[0] == "timeline"] == list(range(len(timeline)))
            assert any(t["message"] == "promoted by ci: looks good" for t in timeline)

            # A follower reconnecting after event 2 gets only what came after it.
            resumed = await api.events(path + "/events", who="reader", last_event_id=2)
            assert [e[2] for e in resumed if e[0] == "timeline"] == timeline[3:]

            _, done = await api.call("GET", path, who="reader")
            assert done["result"]["outcome"] == "Promoted"
            assert done["running"] is False
            handle = client.get_workflow_handle(started["workflowId"])
            memo = await (await handle.describe()).memo()
            assert memo == {"commitTime": committed.isoformat(), "startedBy": "ci"}
            assert await update_identities(client, started["workflowId"]) == ["ci"]

            status, verb = await api.call("POST", path + "/abort", body={})
            assert status in (404, 409), verb

            status, rollback = await api.call(
                "POST", f"/api/v1/rollbacks/checkout/{environment}", body={"to": "v1"}
            )
            assert status == 202, rollback
            assert rollback["target"] == "v1"

            async def rolled_back() -> dict[str, Any] | None:
                _, view = await api.call("GET", f"/api/v1/rollbacks/checkout/{environment}")
                return view if not view["running"] else None

            finished = await poll(rolled_back, "the emergency rollback finished", 60)
            assert finished["result"]["version"] == "v1", finished


async def test_bad_requests_are_refused_with_the_field_and_start_nothing(
    temporal_env, serve_api, nginx
):
    client = await plain_client(temporal_env)
    api: ApiClient = await serve_api(f"api-{uuid.uuid4().hex[:8]}", "--api-rate", "40/minute")
    environment = f"api{uuid.uuid4().hex[:6]}"
    spec = canary_spec(nginx, "127.0.0.1:1", "127.0.0.1:2", environment)

    status, body = await api.call("GET", "/api/v1/rollouts", who=None)
    assert status == 401
    assert body["error"] == "a Bearer token is required"
    async with api.session.get(
        api.base + "/api/v1/rollouts", headers={"Authorization": "Bearer not-a-token-at-all"}
    ) as resp:
        assert resp.status == 401
        assert "invalid_token" in resp.headers["WWW-Authenticate"]

    spec["spec"]["strategy"]["canary"]["steps"][0] = {"setWeight": 150}
    status, body = await api.call("POST", "/api/v1/rollouts", yaml_text=yaml.safe_dump(spec))
    assert status == 422
    assert any(p.startswith("spec.strategy.canary.steps[0].setWeight:") for p in body["problems"])
    status, body = await api.call("POST", "/api/v1/rollouts", who="reader", body=spec)
    assert status == 403
    status, body = await api.call(
        "POST", "/api/v1/rollouts", body=spec, params={"commitTime": "yesterday"}
    )
    assert status == 400
    assert body["error"].startswith("commitTime:")
    assert await not_started(client, f"rollout-checkout-{environment}")

    status, body = await api.call("GET", f"/api/v1/rollouts/checkout/{environment}")
    assert status == 404
    status, body = await api.call("GET", "/api/v1/rollouts", params={"limit": "0"})
    assert status == 400
    assert body["error"].startswith("limit:")
    # No rollout of the service in history, so no version to go back to: the plan's refusal.
    status, body = await api.call("POST", f"/api/v1/rollbacks/checkout/{environment}", body={})
    assert status == 400, body
    assert body["error"].startswith("--to: history knows no other good version")
    assert await not_started(client, f"rollback-checkout-{environment}")
    status, body = await api.call("GET", "/api/v1/incidents", who="reader")
    assert status == 200
    assert isinstance(body, list)
    status, body = await api.call("GET", "/api/v1/incidents/incident-nothing-here", who="reader")
    assert status == 404
    status, body = await api.call("GET", "/api/v1/whoami", who="alice")
    assert body == {"name": "alice", "scopes": ["approve", "read"]}

    # 40/minute for each caller: the reader runs out, ci does not.
    statuses = [(await api.call("GET", "/api/v1/whoami", who="reader"))[0] for _ in range(45)]
    assert statuses.count(429) >= 5
    assert statuses[0] == 200
    assert (await api.call("GET", "/api/v1/whoami", who="ci"))[0] == 200


async def test_an_approvers_token_approves_a_gate_only_as_that_approver(temporal_env, serve_api):
    client = await plain_client(temporal_env)
    queue = f"api-{uuid.uuid4().hex[:8]}"
    service = f"svc-{uuid.uuid4().hex[:6]}"
    spec = {
        "apiVersion": "deployflow/v1",
        "kind": "Pipeline",
        "metadata": {"name": service},
        "spec": {
            "service": service,
            "stages": [
                stage("staging"),
                stage("production", approval={"approvers": ["alice"], "minApprovals": 1}),
            ],
        },
    }
    stubs = Stubs()
    async with worker(
        client, [PromotionPipeline, *BY_STRATEGY.values()], stubs.activities(), task_queue=queue
    ):
        api: ApiClient = await serve_api(queue)
        status, started = await api.call(
            "POST", "/api/v1/pipelines", yaml_text=yaml.safe_dump(spec), params={"version": "v7"}
        )
        assert status == 202, started
        path = f"/api/v1/pipelines/{service}"

        async def gated() -> dict[str, Any] | None:
            _, view = await api.call("GET", path, who="reader")
            next_stage = view.get("next") or {}
            return view if next_stage.get("state") == "awaiting-approval" else None

        view = await poll(gated, "production waiting for an approval", 60)
        assert view["next"]["environment"] == "production"
        assert view["next"]["mayStart"] is False
        gates = {g["gate"]: g for g in view["next"]["gates"]}
        assert gates["upstream"]["passed"] is True
        assert gates["approval"] == {
            "gate": "approval",
            "passed": False,
            "reason": "0 of 1 approval(s) from alice",
            "until": None,
        }

        status, body = await api.call("POST", path + "/approve", who="ci", body={})
        assert status == 403  # operate is not approve
        status, body = await api.call(
            "POST", path + "/approve", who="alice", body={"approver": "bob"}
        )
        assert status == 403
        assert "only as 'alice'" in body["error"]
        status, body = await api.call("POST", path + "/approve", who="bob", body={})
        assert status == 409, body  # the gate does not list bob
        status, body = await api.call(
            "POST", path + "/approve", who="alice", body={"comment": "ok"}
        )
        assert status == 200, body

        events = await api.events(path + "/events", who="reader")
        assert events[-1][0] == "end"
        assert events[-1][2]["outcome"] == "Succeeded"
        approvals = events[-1][2]["stages"][1]["approvals"]
        assert [(a["approver"], a["decision"]) for a in approvals] == [("alice", "approved")]
        assert "alice" in await update_identities(client, started["workflowId"])


async def test_schemathesis_finds_no_500_and_no_answer_outside_the_openapi_document(
    serve_api, tmp_path
):
    """Schemathesis (PyPI) generates requests for every operation of the served document,
    valid and invalid, with a token that holds every scope; no worker runs, so nothing a
    request starts can progress."""
    schemathesis = require_binary("schemathesis", str(Path(sys.executable).parent))
    api: ApiClient = await serve_api(f"api-{uuid.uuid4().hex[:8]}", "--api-rate", "100000/minute")
    # 503 is the API's documented answer when no worker answers a query or a verb within
    # 10 s, which is every verb on a rollout this run starts (no worker polls here); any
    # other 5xx still fails the check.
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        '[checks.not_a_server_error]\nexpected-statuses = ["2xx", "3xx", "4xx", "503"]\n'
    )
    process = await asyncio.create_subprocess_exec(
        schemathesis, "--config-file", str(config), "run", f"{api.base}/api/v1/openapi.json",
        "--header", f"Authorization: Bearer {TOKENS['root'][0]}",
        "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
        "response_schema_conformance",
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", "15",
        "--generation-deterministic",
        "--request-timeout", "20",
        "--workers", "2",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), 400)
    report = out.decode()
    assert process.returncode == 0, report[-6000:]


async def test_a_run_no_worker_answers_for_is_shown_as_unreadable_not_held(
    temporal_env, serve_api, nginx
):
    """With no worker polling, the server would hold a query or an update until its own
    deadline, and an on-demand check for ever (schemathesis runs timed out on a rollout's
    health, verbs and checks this way); the API bounds all three."""
    api: ApiClient = await serve_api(f"api-{uuid.uuid4().hex[:8]}")
    environment = f"api{uuid.uuid4().hex[:6]}"
    spec = canary_spec(nginx, "127.0.0.1:1", "127.0.0.1:2", environment)
    status, started = await api.call("POST", "/api/v1/rollouts", body=spec)
    assert status == 201, started
    path = f"/api/v1/rollouts/checkout/{environment}"

    status, view = await api.call("GET", path, who="reader")
    assert status == 200, view
    assert view["running"] is True
    assert "status" not in view or view["status"] is None
    assert view["unreadable"] == "no deployflow worker answered within 10 s (is one polling?)"

    status, health = await api.call("GET", path + "/health", who="reader")
    assert status == 200, health
    assert health["running"] is True

    status, paused = await api.call("POST", path + "/pause", body={})
    assert status == 503, paused
    assert paused["error"] == "no deployflow worker answered within 10 s (is one polling?)"

    status, checked = await api.call("POST", path + "/checks", body={})
    assert status == 503, checked  # an on-demand check no worker picks up is not held
    assert checked["error"] == "no deployflow worker answered within 10 s (is one polling?)"
