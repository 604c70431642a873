"""With the codec on, Temporal holds ciphertext: the worker and the CLI (real processes and
the worker's own loop) run a rollout whose history shows only ``binary/encrypted`` payloads,
and `deployflow codec-server` decodes them for the UI and `temporal workflow show`."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from tests.fixtures.cli import REPO, run_cli
from tests.fixtures.harness import poll
from tests.fixtures.nginx import stop_process
from tests.fixtures.parts import free_port, require_binary
from tests.fixtures.specs import worker_running, write_canary
from workers.codec import ENCODING, EncryptionCodec
from workers.codec_keys import parse_keys
from workers.config import TemporalConfig
from workflows.rollouts.spec import load_rollout

pytestmark = pytest.mark.integration

UI_ORIGIN = "http://localhost:8233"
TOKEN = "codec-token-" + uuid.uuid4().hex


def key_line(key_id: str) -> str:
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


@dataclass
class Encrypted:
    address: str
    keys_file: Path
    old_key: str  # the key line a previous rotation encrypted with (still in keys_file)
    env: dict[str, str]  # for the CLI and worker: the dev server, the keys, a task queue
    workflow_id: str
    codec_url: str


def payloads_json(payloads: list[Payload]) -> dict[str, object]:
    return json_format.MessageToDict(Payloads(payloads=payloads))


def encodable_payloads(event: object) -> Iterator[Payload]:
    """Every Payload inside a history event that goes through the data converter: all but
    search attributes (plaintext for visibility) and the SDK's patch markers (code names)."""
    if isinstance(event, Payload):
        yield event
        return
    if getattr(event, "DESCRIPTOR", None) is None:
        return
    for field, value in event.ListFields():
        if field.message_type is None or field.name == "search_attributes":
            continue
        if field.message_type.GetOptions().map_entry:
            values = [v for k, v in value.items() if k != "patch-data"]
        elif field.is_repeated:
            values = list(value)
        else:
            values = [value]
        for item in values:
            yield from encodable_payloads(item)


@pytest.fixture
def codec_server(tmp_path: Path) -> Iterator[tuple[str, Path, str]]:
    """`deployflow codec-server` on a free port with two keys (new first); yields its URL,
    the key file and the old key's line."""
    old = key_line("2026-05")
    keys_file = tmp_path / "codec-keys"
    keys_file.write_text(f"{key_line('2026-11')}\n{old}\n")
    keys_file.chmod(0o600)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEPLOYFLOW_CODEC")}
    env |= {"DEPLOYFLOW_CODEC_KEYS": str(keys_file), "DEPLOYFLOW_CODEC_SERVER_TOKEN": TOKEN}
    command = [
        sys.executable,
        "-m",
        "starters.cli",
        "codec-server",
        "--listen",
        f"127.0.0.1:{port}",
    ]
    log = tmp_path / "codec-server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--cors-origin", UI_ORIGIN], env=env, cwd=REPO, stdout=out, stderr=out
        )
    try:
        yield f"http://127.0.0.1:{port}", keys_file, old
    finally:
        stop_process(process)
        assert TOKEN not in log.read_text()


@pytest_asyncio.fixture
async def encrypted(
    temporal_env: WorkflowEnvironment, codec_server, nginx_factory, tmp_path: Path
) -> AsyncIterator[Encrypted]:
    """A rollout run to completion by a worker and the CLI that both have the keys."""
    url, keys_file, old = codec_server
    address = temporal_env.client.service_client.config.target_host
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "DEPLOYFLOW_CODEC"))
    }
    env |= {
        "TEMPORAL_ADDRESS": address,
        "DEPLOYFLOW_TASK_QUEUE": f"codec-{uuid.uuid4().hex[:8]}",
        "DEPLOYFLOW_CODEC_KEYS": str(keys_file),
    }
    config = TemporalConfig.from_env(env=env)
    spec = write_canary(nginx_factory(), tmp_path)
    async with worker_running(config):
        code, out, err = await run_cli(env, "rollout", "start", str(spec), "--wait", timeout=90)
    assert code == 0, err
    assert "Promoted" in out
    started = re.search(r"started (\S+) ", err)
    assert started, err
    await wait_until_answering(url)
    yield Encrypted(address, keys_file, old, env, started.group(1), url)


async def wait_until_answering(url: str) -> None:
    async def answers() -> bool:
        try:
            async with aiohttp.ClientSession() as session, session.options(url + "/decode"):
                return True
        except aiohttp.ClientConnectionError:
            return False

    await poll(answers, "codec server listening", deadline_s=20)


async def post(
    url: str, body: object, **headers: str
) -> tuple[int, dict[str, object], dict[str, str]]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=body, headers=headers) as response,
    ):
        return response.status, await response.json(), dict(response.headers)


async def test_history_holds_only_ciphertext_and_the_codec_server_decodes_it(
    encrypted: Encrypted, temporal_env: WorkflowEnvironment
):
    plain_client = temporal_env.client  # the pydantic converter, no codec: sees what is stored
    history = await plain_client.get_workflow_handle(encrypted.workflow_id).fetch_history()
    payloads = [p for event in history.events for p in encodable_payloads(event)]
    assert len(payloads) > 10
    assert {p.metadata["encoding"] for p in payloads} == {ENCODING}
    assert {p.metadata["encryption-key-id"] for p in payloads} == {b"2026-11"}
    assert not [p for p in payloads if b"checkout" in p.data or b"setWeight" in p.data]

    started = history.events[0].workflow_execution_started_event_attributes
    service = started.search_attributes.indexed_fields["DeployService"]
    assert json.loads(service.data) == "checkout"  # search attributes stay plaintext

    body = payloads_json(list(started.input.payloads))
    status, decoded, headers = await post(
        encrypted.codec_url + "/decode",
        body,
        Authorization=f"Bearer {TOKEN}",
        **{"X-Namespace": "default", "Origin": UI_ORIGIN},
    )
    assert status == 200, decoded
    assert headers["Access-Control-Allow-Origin"] == UI_ORIGIN
    [rollout] = json_format.ParseDict(decoded, Payloads()).payloads
    assert rollout.metadata["encoding"] == b"json/plain"
    assert json.loads(rollout.data)["spec"]["service"] == "checkout"


async def test_the_codec_server_refuses_callers_without_the_token(encrypted: Encrypted):
    body = payloads_json([])
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        status, answer, response_headers = await post(
            encrypted.codec_url + "/decode", body, **headers
        )
        assert status == 401, answer
        assert response_headers["WWW-Authenticate"].startswith("Bearer")


async def test_the_codec_server_answers_the_ui_preflight_only_for_its_origin(encrypted: Encrypted):
    request_headers = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,authorization,x-namespace",
    }
    async with aiohttp.ClientSession() as session:
        async with session.options(
            encrypted.codec_url + "/decode", headers={"Origin": UI_ORIGIN, **request_headers}
        ) as allowed:
            assert allowed.status == 200
            assert allowed.headers["Access-Control-Allow-Origin"] == UI_ORIGIN
            assert allowed.headers["Access-Control-Allow-Credentials"] == "true"
            allowed_headers = allowed.headers["Access-Control-Allow-Headers"].lower()
            assert {"authorization", "content-type", "x-namespace"} <= set(
                allowed_headers.split(",")
            )
        async with session.options(
            encrypted.codec_url + "/decode",
            headers={"Origin": "http://evil.example", **request_headers},
        ) as refused:
            assert refused.status == 403
            assert "Access-Control-Allow-Origin" not in refused.headers


async def test_the_codec_server_encrypts_with_the_new_key_and_still_decrypts_the_old(
    encrypted: Encrypted,
):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'{"weights": [50, 50]}')
    status, encoded, _ = await post(encrypted.codec_url + "/encode", payloads_json([plain]), **auth)
    assert status == 200, encoded
    [sealed] = json_format.ParseDict(encoded, Payloads()).payloads
    assert sealed.metadata["encryption-key-id"] == b"2026-11"
    [by_old_key] = await EncryptionCodec(parse_keys(encrypted.old_key, "old")).encode([plain])
    status, decoded, _ = await post(
        encrypted.codec_url + "/decode", payloads_json([sealed, by_old_key]), **auth
    )
    assert status == 200, decoded
    assert list(json_format.ParseDict(decoded, Payloads()).payloads) == [plain, plain]
    unknown = await EncryptionCodec(parse_keys(key_line("2025-01"), "gone")).encode([plain])
    status, answer, _ = await post(encrypted.codec_url + "/decode", payloads_json(unknown), **auth)
    assert status == 400
    assert "encrypted with key '2025-01', which this process does not have" in str(answer["error"])


async def test_temporal_workflow_show_prints_ciphertext_and_plaintext_through_the_codec_server(
    encrypted: Encrypted,
):
    temporal = require_binary("temporal", str(Path(sys.executable).parent))
    show = [
        temporal,
        "workflow",
        "show",
        "-w",
        encrypted.workflow_id,
        "--address",
        encrypted.address,
    ]
    codec = ["--codec-endpoint", encrypted.codec_url, "--codec-auth", f"Bearer {TOKEN}"]

    async def run(*args: str) -> str:
        done = await asyncio.to_thread(
            subprocess.run, [*show, *args], capture_output=True, text=True, timeout=30, check=True
        )
        return done.stdout

    raw, decoded = await run(), await run(*codec)
    assert "step 0: setWeight 50" in decoded  # the result, as the Temporal CLI prints it
    assert "setWeight" not in raw
    assert "binary/encrypted" in raw
    raw_json, decoded_json = await run("--output", "json"), await run("--output", "json", *codec)
    encrypted_encoding = base64.b64encode(ENCODING).decode()
    assert encrypted_encoding in raw_json
    assert encrypted_encoding not in decoded_json


async def test_the_plain_json_cli_decrypts_what_it_reads(encrypted: Encrypted):
    # `rollout status` reads the result with the SDK's default converter (no pydantic), and
    # still through the codec: the result is there, in plaintext.
    code, out, err = await run_cli(encrypted.env, "rollout", "status", encrypted.workflow_id)
    assert code == 0, err
    assert out.startswith(f"{encrypted.workflow_id}: Promoted — ")


async def test_the_cli_with_another_key_says_which_key_it_lacks(encrypted: Encrypted):
    env = encrypted.env | {"DEPLOYFLOW_CODEC_KEYS": "", "DEPLOYFLOW_CODEC_KEY": key_line("2025-01")}
    code, _, err = await run_cli(env, "rollout", "status", encrypted.workflow_id)
    assert code == 2, err
    assert (
        "encrypted with key '2026-11', which this process does not have (its keys: 2025-01)" in err
    )
    assert "Traceback" not in err


async def test_a_worker_without_the_key_fails_the_task_naming_the_key(
    temporal_env: WorkflowEnvironment, nginx_factory, tmp_path
):
    queue = f"nokey-{uuid.uuid4().hex[:8]}"
    address = temporal_env.client.service_client.config.target_host
    with_key = TemporalConfig(
        address=address, task_queue=queue, codec_keys=parse_keys(key_line("2026-11"), "test")
    )
    client: Client = await with_key.connect()
    rollout = load_rollout(write_canary(nginx_factory(), tmp_path).read_text())
    handle = await client.start_workflow(
        "CanaryRollout", rollout, id=f"nokey-{uuid.uuid4().hex[:8]}", task_queue=queue
    )
    async with worker_running(TemporalConfig(address=address, task_queue=queue)):

        async def task_failed() -> str | None:
            async for event in handle.fetch_history_events():
                if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                    return event.workflow_task_failed_event_attributes.failure.message
            return None

        message = await poll(task_failed, "a workflow task failed", deadline_s=30)
    await handle.terminate("test over")
    assert "encrypted with key '2026-11', which this process does not have" in message
