"""The CLI and the worker on a TLS-only and an mTLS-only Temporal (HAProxy terminating TLS in
front of the dev server, certificates made by the test), configured as every Temporal tool
is: TEMPORAL_* variables or a profile of the TOML config file."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from tests.fixtures.cli import run_cli
from tests.fixtures.specs import worker_running, write_canary
from tests.fixtures.tls import TLSProxy
from workers.config import TemporalConfig, TemporalConnectError

pytestmark = pytest.mark.integration


def cli_env(variables: dict[str, str], queue: str | None = None) -> dict[str, str]:
    """The test's environment without any Temporal or codec settings of its own, plus
    ``variables``."""
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "DEPLOYFLOW_CODEC"))
    }
    base["TEMPORAL_CONFIG_FILE"] = "/nonexistent/temporal.toml"  # not the user's own file
    if queue:
        base["DEPLOYFLOW_TASK_QUEUE"] = queue
    return base | variables


def assert_refused(code: int, err: str, *phrases: str) -> None:
    assert code == 3, err
    assert "Traceback" not in err
    for phrase in phrases:
        assert phrase in err, err


async def test_cli_and_worker_run_a_rollout_through_mtls(
    temporal_tls: TLSProxy, nginx_factory, tmp_path
):
    variables = temporal_tls.env(temporal_tls.mtls_address, client=True)
    queue = f"mtls-{uuid.uuid4().hex[:8]}"
    config = TemporalConfig.from_env(env=cli_env(variables, queue))
    assert config.security == "mTLS"
    spec = write_canary(nginx_factory(), tmp_path)
    async with worker_running(config):
        code, out, err = await run_cli(
            cli_env(variables, queue), "rollout", "start", str(spec), "--wait", timeout=90
        )
    assert code == 0, err
    assert "Promoted" in out


async def test_cli_lists_rollouts_over_tls_without_a_client_certificate(temporal_tls: TLSProxy):
    code, _, err = await run_cli(
        cli_env(temporal_tls.env(temporal_tls.tls_address)), "rollout", "list"
    )
    assert code == 0, err


async def test_cli_without_a_client_certificate_is_refused_by_the_mtls_server(
    temporal_tls: TLSProxy,
):
    address = temporal_tls.mtls_address
    code, _, err = await run_cli(cli_env(temporal_tls.env(address)), "rollout", "list")
    assert_refused(code, err, address, "client certificate")


async def test_cli_with_a_certificate_from_another_ca_is_refused(temporal_tls: TLSProxy):
    certs = temporal_tls.certs
    variables = temporal_tls.env(temporal_tls.mtls_address) | {
        "TEMPORAL_TLS_CLIENT_CERT_PATH": str(certs.other_client_cert),
        "TEMPORAL_TLS_CLIENT_KEY_PATH": str(certs.other_client_key),
    }
    code, _, err = await run_cli(cli_env(variables), "rollout", "list")
    assert_refused(code, err, temporal_tls.mtls_address, "does not accept this client certificate")


async def test_cli_refuses_a_server_whose_certificate_another_ca_signed(temporal_tls: TLSProxy):
    variables = temporal_tls.env(
        temporal_tls.mtls_address, ca=temporal_tls.certs.other_ca, client=True
    )
    code, _, err = await run_cli(cli_env(variables), "rollout", "list")
    assert_refused(code, err, temporal_tls.mtls_address, "not signed by a CA this client trusts")


async def test_cli_refuses_a_server_certificate_for_another_name(temporal_tls: TLSProxy):
    variables = temporal_tls.env(temporal_tls.tls_address) | {
        "TEMPORAL_TLS_SERVER_NAME": "temporal.example.com"
    }
    code, _, err = await run_cli(cli_env(variables), "rollout", "list")
    assert_refused(code, err, temporal_tls.tls_address, "not valid for the name")


async def test_an_unreadable_certificate_is_named(temporal_tls: TLSProxy, tmp_path: Path):
    missing = tmp_path / "nope" / "client.pem"
    variables = temporal_tls.env(temporal_tls.mtls_address, client=True) | {
        "TEMPORAL_TLS_CLIENT_CERT_PATH": str(missing)
    }
    code, _, err = await run_cli(cli_env(variables), "rollout", "list")
    assert_refused(code, err, f"cannot read the TLS client certificate {missing}")


async def test_a_profile_of_the_config_file_selects_the_secured_endpoint(
    temporal_tls: TLSProxy, tmp_path: Path
):
    certs = temporal_tls.certs
    config_file = tmp_path / "temporal.toml"
    config_file.write_text(
        f"""
[profile.default]
address = "127.0.0.1:1"

[profile.shared]
address = "{temporal_tls.mtls_address}"
namespace = "default"
[profile.shared.tls]
server_ca_cert_path = "{certs.ca}"
client_cert_path = "{certs.client_cert}"
client_key_path = "{certs.client_key}"
"""
    )
    env = cli_env({}) | {"TEMPORAL_CONFIG_FILE": str(config_file)}
    code, _, err = await run_cli(env, "--profile", "shared", "rollout", "list")
    assert code == 0, err
    code, _, err = await run_cli(env | {"TEMPORAL_PROFILE": "shared"}, "rollout", "list")
    assert code == 0, err
    code, _, err = await run_cli(env, "rollout", "list")  # the default profile: nothing there
    assert_refused(code, err, "Temporal is unreachable at 127.0.0.1:1")
    code, _, err = await run_cli(env, "--profile", "staging", "rollout", "list")
    assert code == 2, err
    assert "Profile 'staging' not found" in err
    assert "Traceback" not in err


async def test_the_worker_without_a_client_certificate_stops_with_exit_3(temporal_tls: TLSProxy):
    address = temporal_tls.mtls_address
    code, _, err = await run_cli(cli_env(temporal_tls.env(address)), "worker", timeout=30)
    assert_refused(code, err, address, "client certificate")


async def test_run_worker_refuses_a_server_signed_by_another_ca(temporal_tls: TLSProxy):
    variables = temporal_tls.env(
        temporal_tls.mtls_address, ca=temporal_tls.certs.other_ca, client=True
    )
    config = TemporalConfig.from_env(env=cli_env(variables))
    with pytest.raises(TemporalConnectError, match="not signed by a CA this client trusts"):
        async with worker_running(config):
            pass
