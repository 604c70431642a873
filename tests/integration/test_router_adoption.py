"""First contact with a real NGINX and HAProxy whose router file a person wrote: the
routers take a matching one over, refuse anything else, and `deployflow router adopt|init`
shows and writes deployflow's file (the CLI as a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio.exceptions import ApplicationError

from activities.errors import ROUTER_CONFIG_FOREIGN
from activities.routing.adoption import backup_path
from activities.routing.base import Weights
from activities.routing.haproxy.router import HAProxyRouter
from activities.routing.nginx import NginxRouter
from tests.fixtures.cli import run_cli
from tests.fixtures.haproxy import HAProxyFactory, HAProxyServer
from tests.fixtures.nginx import NginxFactory, NginxServer
from tests.integration.test_nginx_router import answers

pytestmark = pytest.mark.integration

STABLE_100 = Weights(stable=100, canary=0)


def hand_write_nginx(server: NginxServer, text: str) -> None:
    """Replace the upstream file by ``text`` and reload nginx with it, as a person would."""
    before = server.workers()
    server.config_path.write_text(text)
    subprocess.run(server.reload_command, check=True)
    server.wait_workers_replaced(before)


def snapshot(path: Path) -> tuple[str, int, int]:
    """What "untouched" means: same text, same inode, same modification time."""
    stat = path.stat()
    return path.read_text(), stat.st_ino, stat.st_mtime_ns


def spec_file(tmp_path: Path, router: dict[str, Any]) -> Path:
    path = tmp_path / "rollout.yaml"
    rollout = {
        "apiVersion": "deployflow/v1",
        "kind": "Rollout",
        "metadata": {"name": "checkout"},
        "spec": {
            "service": "checkout",
            "environment": "production",
            "version": "v2",
            "router": router,
            "strategy": {"canary": {"steps": [{"setWeight": 50}]}},
        },
    }
    path.write_text(yaml.safe_dump(rollout))
    return path


async def deployflow(*args: str) -> tuple[int, str, str]:
    return await run_cli(dict(os.environ), *args, timeout=60)


@pytest.fixture
def pair(http_backend: Callable[[str], str]) -> tuple[str, str]:
    return http_backend("stable"), http_backend("canary")


@pytest.fixture
def nginx_by_hand(nginx_factory: NginxFactory, pair: tuple[str, str]) -> NginxServer:
    """NGINX running an upstream written by hand: the stable server, the canary down."""
    server = nginx_factory()
    stable, canary = pair
    hand_write_nginx(
        server,
        f"# written by ops\nupstream app {{\n    server {stable};  # v1\n"
        f"    server {canary} down;\n}}\n",
    )
    return server


def test_a_hand_written_nginx_upstream_is_taken_over_by_the_first_shift(
    nginx_by_hand: NginxServer, pair: tuple[str, str]
):
    original = nginx_by_hand.config_path.read_text()
    router = NginxRouter(nginx_by_hand.router_spec(stable=[pair[0]], canary=[pair[1]]))

    assert router.get_weights() == STABLE_100
    router.set_weights(STABLE_100)  # what the file already says: left as written
    assert nginx_by_hand.config_path.read_text() == original
    before = nginx_by_hand.workers()
    router.set_weights(Weights.canary_at(50))
    nginx_by_hand.wait_workers_replaced(before)

    assert nginx_by_hand.config_path.read_text().startswith("# deployflow: stable=50 canary=50")
    assert backup_path(nginx_by_hand.config_path).read_text() == original
    assert set(answers(nginx_by_hand, 20)) == {"stable", "canary"}
    assert router.get_weights() == Weights.canary_at(50)


def test_a_mismatching_nginx_upstream_is_refused_and_left_untouched(
    nginx_by_hand: NginxServer, http_backend: Callable[[str], str], pair: tuple[str, str]
):
    other = http_backend("other")
    router = NginxRouter(nginx_by_hand.router_spec(stable=[other], canary=[pair[1]]))
    before = snapshot(nginx_by_hand.config_path)

    for call in (router.get_weights, lambda: router.set_weights(Weights.canary_at(50))):
        with pytest.raises(ApplicationError) as refused:
            call()
        assert refused.value.type == ROUTER_CONFIG_FOREIGN
        assert refused.value.non_retryable
        assert f"upstream file {nginx_by_hand.config_path} was not written by deployflow" in (
            refused.value.message
        )
        assert f"upstream app lists {pair[0]}, {pair[1]} (down)" in refused.value.message
        assert f"{pair[0]} is in neither the stable nor the canary list" in refused.value.message

    assert snapshot(nginx_by_hand.config_path) == before
    assert not backup_path(nginx_by_hand.config_path).exists()
    assert set(answers(nginx_by_hand, 10)) == {"stable"}


async def test_router_adopt_shows_then_applies_a_takeover_that_loses_settings(
    nginx_by_hand: NginxServer, pair: tuple[str, str], tmp_path: Path
):
    stable, canary = pair
    hand_write_nginx(
        nginx_by_hand,
        f"upstream app {{\n keepalive 8;\n server {stable};\n server {canary} down;\n}}\n",
    )
    original = nginx_by_hand.config_path.read_text()
    spec = nginx_by_hand.router_spec(stable=[stable], canary=[canary])
    path = spec_file(tmp_path, {"nginx": spec.model_dump(mode="json")})
    with pytest.raises(ApplicationError, match="would not keep: 'keepalive 8;'"):
        NginxRouter(spec).get_weights()  # a rollout would not lose it unasked

    code, out, err = await deployflow("router", "adopt", str(path))
    assert code == 0, err
    assert "not kept: 'keepalive 8;'" in out
    assert f"    server {stable} weight=100;" in out
    assert nginx_by_hand.config_path.read_text() == original  # only shown

    before = nginx_by_hand.workers()
    code, out, err = await deployflow("router", "adopt", str(path), "--apply", "--json")
    assert code == 0, err
    report = json.loads(out)
    nginx_by_hand.wait_workers_replaced(before)
    assert (report["found"], report["applied"], report["notKept"]) == (
        "hand-written",
        True,
        ["'keepalive 8;'"],
    )
    assert nginx_by_hand.config_path.read_text() == report["content"]
    assert report["backup"] == str(backup_path(nginx_by_hand.config_path))
    assert backup_path(nginx_by_hand.config_path).read_text() == original
    assert NginxRouter(spec).get_weights() == STABLE_100
    assert set(answers(nginx_by_hand, 10)) == {"stable"}

    code, out, err = await deployflow("router", "adopt", str(path))
    assert code == 0, err
    assert "already deployflow's (stable 100 % / canary 0 %): nothing to do" in out


async def test_router_adopt_leaves_the_original_untouched_when_the_test_command_fails(
    nginx_by_hand: NginxServer, pair: tuple[str, str], tmp_path: Path
):
    spec = nginx_by_hand.router_spec(stable=[pair[0]], canary=[pair[1]])
    router = spec.model_dump(mode="json") | {
        "testCommand": ["sh", "-c", "echo 'nginx: [emerg] unknown directive' >&2; exit 1"]
    }
    path = spec_file(tmp_path, {"nginx": router})
    before = snapshot(nginx_by_hand.config_path)

    code, out, err = await deployflow("router", "adopt", str(path), "--apply")

    assert code == 1, (out, err)
    assert f"{nginx_by_hand.config_path} left as it was: nginx: [emerg] unknown directive" in err
    assert "(RouterConfigRejected)" in err
    assert snapshot(nginx_by_hand.config_path)[0] == before[0]
    assert not backup_path(nginx_by_hand.config_path).exists()
    assert set(answers(nginx_by_hand, 10)) == {"stable"}


async def test_router_adopt_refuses_a_mismatch_with_exit_2_and_the_message(
    nginx_by_hand: NginxServer, pair: tuple[str, str], tmp_path: Path
):
    spec = nginx_by_hand.router_spec(stable=[pair[1]], canary=[pair[0]])  # swapped
    path = spec_file(tmp_path, {"nginx": spec.model_dump(mode="json")})

    code, out, err = await deployflow("router", "adopt", str(path), "--apply")
    assert code == 2
    assert "cannot be taken over" in err
    assert "are stable and canary swapped?" in err
    code, out, _ = await deployflow("router", "adopt", str(path), "--json")
    assert code == 2
    assert json.loads(out)["errorType"] == ROUTER_CONFIG_FOREIGN
    code, _, err = await deployflow("router", "init", str(path))
    assert code == 2
    assert "exists and was not written by deployflow: `deployflow router adopt" in err


async def test_router_init_writes_a_fresh_file_where_there_is_none(
    nginx_by_hand: NginxServer, pair: tuple[str, str], tmp_path: Path
):
    spec = nginx_by_hand.router_spec(stable=[pair[0]], canary=[pair[1]])
    path = spec_file(tmp_path, {"nginx": spec.model_dump(mode="json")})
    nginx_by_hand.config_path.unlink()

    code, out, err = await deployflow("router", "adopt", str(path))
    assert code == 2
    assert "does not exist: nothing to adopt; `deployflow router init" in err
    code, out, err = await deployflow("router", "init", str(path))
    assert code == 0, err
    assert "does not exist" in out
    assert not nginx_by_hand.config_path.exists()
    before = nginx_by_hand.workers()
    code, out, err = await deployflow("router", "init", str(path), "--apply")
    assert code == 0, err
    nginx_by_hand.wait_workers_replaced(before)

    assert "written at stable 100 %" in out
    assert nginx_by_hand.config_path.read_text().startswith("# deployflow: stable=100 canary=0")
    assert set(answers(nginx_by_hand, 10)) == {"stable"}


HAPROXY_BY_HAND = """\
# written by ops
backend app
    balance roundrobin
    server web1 {stable} weight 1
    server web2 {canary} weight 0
"""


@pytest.fixture
def haproxy_by_hand(haproxy_factory: HAProxyFactory, pair: tuple[str, str]) -> HAProxyServer:
    stable, canary = pair
    text = HAPROXY_BY_HAND.format(stable=stable, canary=canary)
    return haproxy_factory(stable=[stable], canary=[canary], backend_text=text)


def served_by(server: HAProxyServer, n: int) -> Counter[str]:
    return Counter(server.get()[2] for _ in range(n))


def test_a_hand_written_haproxy_backend_is_taken_over_with_a_reload(
    haproxy_by_hand: HAProxyServer,
):
    original = haproxy_by_hand.config_path.read_text()
    spec = haproxy_by_hand.router_spec(reload_command=haproxy_by_hand.reload_command)
    router = HAProxyRouter(spec)

    assert router.get_weights() == STABLE_100
    assert haproxy_by_hand.get()[1] == "web1"  # still the hand-written backend
    router.set_weights(Weights.canary_at(50))

    assert backup_path(haproxy_by_hand.config_path).read_text() == original
    assert router.get_weights() == Weights.canary_at(50)
    assert {haproxy_by_hand.get()[1] for _ in range(10)} == {"stable-1", "canary-1"}
    assert set(served_by(haproxy_by_hand, 10)) == {"stable", "canary"}


async def test_without_reload_command_haproxy_takeover_is_left_to_router_adopt(
    haproxy_by_hand: HAProxyServer, tmp_path: Path
):
    spec = haproxy_by_hand.router_spec()
    before = snapshot(haproxy_by_hand.config_path)
    with pytest.raises(ApplicationError) as refused:
        HAProxyRouter(spec).set_weights(Weights.canary_at(50))
    assert refused.value.type == ROUTER_CONFIG_FOREIGN
    assert "set router.haproxy.reloadCommand" in refused.value.message
    assert snapshot(haproxy_by_hand.config_path) == before

    path = spec_file(tmp_path, {"haproxy": spec.model_dump(mode="json")})
    code, out, err = await deployflow("router", "adopt", str(path), "--apply")
    assert code == 0, err
    assert "reload HAProxy to run it (no reloadCommand)" in out
    assert backup_path(haproxy_by_hand.config_path).read_text() == before[0]
    haproxy_by_hand.reload()
    HAProxyRouter(spec).set_weights(Weights.canary_at(50))  # runtime API only, no reload

    assert set(served_by(haproxy_by_hand, 10)) == {"stable", "canary"}
