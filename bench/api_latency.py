"""The deployment API's request latency (issue 13): p50 / p95 per kind of request.

A real ``deployflow serve`` process (the API beside the intake) on a local dev server, a
worker in this process (real rollout workflows, stub router activities), and one canary
held at its pause so reads and verbs have a running rollout to act on. Requests go one at
a time over one keep-alive connection, as a CI job or a bot would send them:

- ``whoami``: authentication and the rate limit only, no Temporal;
- ``list``: ``GET /api/v1/rollouts`` (a visibility query);
- ``get``: ``GET /api/v1/rollouts/S/E`` (describe + the ``status`` query, answered by the worker);
- ``health``: the same plus history's last known good version;
- ``pause/resume``: ``POST .../pause`` and ``.../resume`` alternately (an Update the worker
  validates and applies: the round trip of a verb);
- ``invalid spec``: ``POST /api/v1/rollouts`` with a spec whose ``setWeight`` is 150 (422,
  no Temporal).

    .venv/bin/python bench/api_latency.py [--requests 200] [--address HOST:PORT]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import yaml
from common import (
    REPO,
    STUB_ROUTER,
    canary_rollout,
    connect_or_start,
    exit_now,
    machine,
    run_stamp,
    summary,
)
from temporalio.worker import Worker

from workflows.rollouts.registry import BY_STRATEGY

TOKEN = "bench-token-0123456789abcdef"


async def serve(address: str, queue: str, directory: Path, port: int) -> asyncio.subprocess.Process:
    (directory / "tokens.yaml").write_text(
        yaml.safe_dump(
            {"tokens": [{"name": "bench", "scopes": ["read", "operate"], "token": TOKEN}]}
        )
    )
    (directory / "runbooks.yaml").write_text(
        "apiVersion: deployflow/v1\nkind: Runbook\nmetadata: {name: none}\n"
        "spec: {match: {alertname: NeverFires}, steps: [{page: {}}]}\n"
    )
    env = {**os.environ, "TEMPORAL_ADDRESS": address, "DEPLOYFLOW_TASK_QUEUE": queue}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "starters.cli", "serve",
        "--runbooks", str(directory / "runbooks.yaml"),
        "--listen", f"127.0.0.1:{port}",
        "--api-tokens", str(directory / "tokens.yaml"),
        "--api-rate", "1000000/minute",
        "--insecure-no-auth",
        env=env, cwd=REPO, stdout=asyncio.subprocess.DEVNULL,
        stderr=(directory / "serve.log").open("wb"),
    )  # fmt: skip


async def timed(
    session: aiohttp.ClientSession, method: str, url: str, expect: int, **kw: object
) -> float:
    started = time.perf_counter()
    async with session.request(method, url, **kw) as resp:  # type: ignore[arg-type]
        await resp.read()
        took = time.perf_counter() - started
        if resp.status != expect:
            raise SystemExit(
                f"{method} {url}: {resp.status}, expected {expect}: {await resp.text()}"
            )
    return took


async def main(requests: int, address: str | None) -> None:
    print(f"machine: {machine()}")
    client, env = await connect_or_start(address)
    target = client.service_client.config.target_host
    queue, environment = f"bench-api-{run_stamp()}", f"bench{run_stamp()}"
    steps = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 100}]
    spec = canary_rollout(environment, steps).model_dump(mode="json", by_alias=True)
    bad = json.loads(json.dumps(spec))
    bad["spec"]["strategy"]["canary"]["steps"][0]["setWeight"] = 150
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        port = 20000 + os.getpid() % 20000
        process = await serve(target, queue, Path(tmp), port)
        base = f"http://127.0.0.1:{port}/api/v1"
        rollout = f"{base}/rollouts/bench/{environment}"
        try:
            async with (
                Worker(
                    client,
                    task_queue=queue,
                    workflows=list(BY_STRATEGY.values()),
                    activities=STUB_ROUTER,
                ),
                aiohttp.ClientSession(headers=headers) as session,
            ):
                for _ in range(100):  # up within 10 s
                    try:
                        await timed(session, "GET", f"{base}/whoami", 200)
                        break
                    except aiohttp.ClientConnectionError:
                        await asyncio.sleep(0.1)
                await timed(session, "POST", f"{base}/rollouts", 201, data=json.dumps(spec))
                for _ in range(200):
                    async with session.get(rollout) as resp:
                        if ((await resp.json()).get("status") or {}).get("phase") == "Paused":
                            break
                    await asyncio.sleep(0.05)
                kinds = {
                    "whoami": ("GET", f"{base}/whoami", 200, {}),
                    "list": ("GET", f"{base}/rollouts", 200, {}),
                    "get": ("GET", rollout, 200, {}),
                    "health": ("GET", f"{rollout}/health", 200, {}),
                    "invalid spec": ("POST", f"{base}/rollouts", 422, {"data": json.dumps(bad)}),
                }
                for name, (method, url, expect, extra) in kinds.items():
                    for _ in range(5):  # warm up
                        await timed(session, method, url, expect, **extra)
                    took = [
                        await timed(session, method, url, expect, **extra) for _ in range(requests)
                    ]
                    print(f"{name:<14} {summary(took, 'ms', 1000)}")
                verbs = []
                for n in range(requests):
                    verb = "pause" if n % 2 == 0 else "resume"
                    verbs.append(await timed(session, "POST", f"{rollout}/{verb}", 200, data="{}"))
                print(f"{'pause/resume':<14} {summary(verbs, 'ms', 1000)}")
                await timed(session, "POST", f"{rollout}/abort", 200, data="{}")
        finally:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 30)
            if env is not None:
                await env.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--address", help="a running Temporal server (default: start a dev server)")
    options = parser.parse_args()
    asyncio.run(main(options.requests, options.address))
    exit_now(0)
