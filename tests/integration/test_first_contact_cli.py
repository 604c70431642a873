"""A new user's first rollouts, through the CLI as a subprocess, on the dev server with a
real worker and a real NGINX whose upstream file they wrote by hand: a matching one is
taken over and the rollout goes through; anything that fails says its root cause, in text
and in --json, for `rollout start --wait`, `pipeline start --wait` and `rollback`."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from activities.routing.adoption import backup_path
from tests.fixtures.cli import run_cli
from tests.fixtures.harness import poll
from tests.fixtures.nginx import NginxFactory, NginxServer
from tests.integration.test_nginx_router import answers
from tests.integration.test_router_adoption import hand_write_nginx, snapshot

pytestmark = pytest.mark.integration

FOREIGN = "(RouterConfigForeign)"


@dataclass
class VM:
    """An NGINX with a hand-written upstream in front of v1 (stable) and v2 (canary)."""

    nginx: NginxServer
    stable: str
    canary: str
    env: dict[str, str]
    tmp_path: Path

    def router(self, stable: str | None = None, **overrides: Any) -> dict[str, Any]:
        spec = self.nginx.router_spec(stable=[stable or self.stable], canary=[self.canary])
        return {"nginx": spec.model_dump(mode="json") | overrides}

    def write(self, document: dict[str, Any]) -> str:
        path = self.tmp_path / f"{document['kind'].lower()}-{uuid.uuid4().hex[:6]}.yaml"
        path.write_text(yaml.safe_dump(document))
        return str(path)

    def rollout(self, version: str, router: dict[str, Any], environment: str) -> str:
        return self.write(
            {
                "apiVersion": "deployflow/v1",
                "kind": "Rollout",
                "metadata": {"name": "checkout"},
                "spec": {
                    "service": "checkout",
                    "environment": environment,
                    "version": version,
                    "progressDeadlineSeconds": 60,
                    "router": router,
                    "strategy": {"canary": {"steps": [{"setWeight": 50}, {"setWeight": 100}]}},
                },
            }
        )

    async def cli(self, *args: str) -> tuple[int, str, str]:
        return await run_cli(self.env, *args, timeout=120)


@pytest.fixture
def vm(
    nginx_factory: NginxFactory,
    http_backend: Callable[[str], str],
    worker_queue: tuple[str, str],
    tmp_path: Path,
) -> VM:
    stable, canary = http_backend("v1"), http_backend("v2")
    nginx = nginx_factory()
    hand_write_nginx(
        nginx,
        f"# checkout, by hand\nupstream app {{\n    server {stable};\n    server {canary} down;\n}}\n",
    )
    address, queue = worker_queue
    env = {**os.environ, "TEMPORAL_ADDRESS": address, "DEPLOYFLOW_TASK_QUEUE": queue}
    return VM(nginx, stable, canary, env, tmp_path)


def environment() -> str:
    return f"it{uuid.uuid4().hex[:6]}"


async def test_a_rollout_takes_a_hand_written_upstream_over_and_promotes(vm: VM):
    original = vm.nginx.config_path.read_text()

    code, out, err = await vm.cli(
        "rollout", "start", vm.rollout("v2", vm.router(), environment()), "--wait"
    )

    assert code == 0, (out, err)
    assert "Promoted" in out
    assert vm.nginx.config_path.read_text().startswith("# deployflow: stable=0 canary=100")
    assert backup_path(vm.nginx.config_path).read_text() == original
    for _ in range(50):  # the reload's new workers take over within ~0.1 s
        if set(answers(vm.nginx, 5)) == {"v2"}:
            break
    assert set(answers(vm.nginx, 20)) == {"v2"}


async def test_a_rollout_on_a_mismatching_upstream_says_what_is_in_it_and_what_to_do(
    vm: VM, http_backend: Callable[[str], str]
):
    other = http_backend("other")
    spec = vm.rollout("v2", vm.router(stable=other), environment())
    before = snapshot(vm.nginx.config_path)

    code, out, err = await vm.cli("rollout", "start", spec, "--wait")

    assert code == 1, (out, err)
    assert f"upstream file {vm.nginx.config_path} was not written by deployflow" in out
    assert f"upstream app lists {vm.stable}, {vm.canary} (down)" in out
    assert f"{vm.stable} is in neither the stable nor the canary list" in out
    assert "`deployflow router adopt <spec file>`" in out
    assert out.rstrip().endswith(FOREIGN)
    code, out, err = await vm.cli("rollout", "start", spec, "--wait", "--json")
    assert code == 1, (out, err)
    document = json.loads(out)
    assert f"it lacks the stable server {other}" in document["reason"]
    assert document["reason"].endswith(FOREIGN)
    assert snapshot(vm.nginx.config_path) == before
    assert set(answers(vm.nginx, 10)) == {"v1"}


async def test_a_rolled_back_rollout_prints_its_reason_and_the_file_stays_as_written(vm: VM):
    broken = ["sh", "-c", "echo 'nginx: [emerg] unexpected end of file' >&2; exit 1"]
    spec = vm.rollout("v2", vm.router(testCommand=broken), environment())
    before = snapshot(vm.nginx.config_path)

    code, out, err = await vm.cli("rollout", "start", spec, "--wait")
    assert code == 1, (out, err)
    assert (
        "RolledBack — step 0 (setWeight 50) failed: nginx: [emerg] unexpected end of file "
        "(RouterConfigRejected)"
    ) in out
    code, out, err = await vm.cli("rollout", "start", spec, "--wait", "--json")
    assert code == 1, (out, err)
    result = json.loads(out)
    assert (result["outcome"], result["reason"]) == (
        "RolledBack",
        "step 0 (setWeight 50) failed: nginx: [emerg] unexpected end of file "
        "(RouterConfigRejected)",
    )
    assert snapshot(vm.nginx.config_path)[0] == before[0]
    assert not backup_path(vm.nginx.config_path).exists()


async def test_a_pipeline_stage_on_a_mismatching_upstream_prints_the_root_cause(
    vm: VM, http_backend: Callable[[str], str]
):
    service = f"svc-{uuid.uuid4().hex[:6]}"
    router = vm.router(stable=http_backend("other"))
    pipeline = vm.write(
        {
            "apiVersion": "deployflow/v1",
            "kind": "Pipeline",
            "metadata": {"name": service},
            "spec": {
                "service": service,
                "stages": [
                    {
                        "environment": "staging",
                        "rollout": {
                            "router": router,
                            "strategy": {"canary": {"steps": [{"setWeight": 100}]}},
                        },
                    }
                ],
            },
        }
    )

    code, out, err = await vm.cli("pipeline", "start", pipeline, "--version", "v2", "--wait")
    assert code == 1, (out, err)
    assert "staging: rollout Aborted: could not read the router: upstream file" in out
    assert f"upstream file {vm.nginx.config_path} was not written by deployflow" in out
    assert out.rstrip().endswith(FOREIGN)
    code, out, err = await vm.cli(
        "pipeline", "start", pipeline, "--version", "v3", "--wait", "--json"
    )
    assert code == 1, (out, err)
    assert json.loads(out)["reason"].endswith(FOREIGN)


async def test_an_emergency_rollback_that_cannot_happen_prints_why(vm: VM):
    env = environment()
    for version in ("v2", "v3"):  # live: v3 (canary list); idle: v2 (stable list)
        code, out, err = await vm.cli(
            "rollout", "start", vm.rollout(version, vm.router(), env), "--wait"
        )
        assert code == 0, (out, err)

    async def both_listed() -> bool:
        code, out, err = await vm.cli("history", "checkout", "--env", env, "--json")
        assert code == 0, err
        return len(json.loads(out)) == 2

    # Visibility lists both shortly after they close.
    await poll(both_listed, "both rollouts in history", 20, every_s=0.2)

    code, out, err = await vm.cli("rollback", "checkout", "--env", env, "--to", "v1")
    assert code == 1, (out, err)
    assert f"rollback-checkout-{env}: failed — " in out
    assert "(RollbackImpossible)" in out
    code, out, err = await vm.cli("rollback", "checkout", "--env", env, "--to", "v1", "--json")
    assert code == 1, (out, err)
    document = json.loads(out)
    assert (document["outcome"], document["errorType"]) == ("Failed", "RollbackImpossible")
    assert document["causes"][-1]["error"] == "ApplicationError"
    assert "v1" in document["reason"]
