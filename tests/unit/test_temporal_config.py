"""Reading the connection as the `temporal` CLI does (temporalio.envconfig), plus deployflow's
own knobs; errors that name what is wrong; no secret in a repr or a log line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.tls import make_certs
from workers.config import TemporalConfig, TemporalConfigError, TemporalConnectError

NO_FILE = {"TEMPORAL_CONFIG_FILE": "/nonexistent/temporal.toml"}


def test_defaults_are_the_local_dev_server():
    config = TemporalConfig.from_env(env=NO_FILE)
    assert (config.address, config.namespace, config.task_queue) == (
        "localhost:7233",
        "default",
        "deployflow",
    )
    assert config.security == "plaintext"
    assert config.codec_keys is None


def test_an_api_key_turns_tls_on_and_stays_out_of_reprs_and_logs():
    env = NO_FILE | {
        "TEMPORAL_ADDRESS": "ns.acct.tmprl.cloud:7233",
        "TEMPORAL_NAMESPACE": "ns.acct",
        "TEMPORAL_API_KEY": "sk-very-secret",
        "DEPLOYFLOW_TASK_QUEUE": "prod",
        "DEPLOYFLOW_UI_URL": "https://cloud.temporal.io/",
    }
    config = TemporalConfig.from_env(env=env)
    assert config.security == "TLS + API key"
    assert config.connect_options["tls"] is True
    assert config.workflow_url("w") == "https://cloud.temporal.io/namespaces/ns.acct/workflows/w"
    assert "sk-very-secret" not in repr(config)
    assert "sk-very-secret" not in repr(config.describe())


def test_a_profile_of_the_toml_file_with_variables_over_it(tmp_path: Path):
    certs = make_certs(tmp_path)
    path = tmp_path / "temporal.toml"
    path.write_text(
        f"""
[profile.prod]
address = "temporal.internal:7233"
namespace = "deploys"
[profile.prod.tls]
server_name = "temporal.internal"
client_cert_path = "{certs.client_cert}"
client_key_path = "{certs.client_key}"
"""
    )
    env = {"TEMPORAL_CONFIG_FILE": str(path), "TEMPORAL_NAMESPACE": "deploys-eu"}
    config = TemporalConfig.from_env("prod", env=env)
    assert (config.address, config.namespace, config.security) == (
        "temporal.internal:7233",
        "deploys-eu",
        "mTLS",
    )
    tls = config.connect_options["tls"]
    assert tls.domain == "temporal.internal"
    assert tls.client_cert == certs.client_cert.read_bytes()
    assert certs.client_key.read_text() not in repr(config)
    assert TemporalConfig.from_env(env=env | {"TEMPORAL_PROFILE": "prod"}).security == "mTLS"


def test_an_unknown_profile_or_a_broken_file_is_a_config_error(tmp_path: Path):
    path = tmp_path / "temporal.toml"
    path.write_text("[profile.prod]\naddress = \n")
    with pytest.raises(TemporalConfigError, match="TOML parse error"):
        TemporalConfig.from_env(env={"TEMPORAL_CONFIG_FILE": str(path)})
    path.write_text('[profile.prod]\naddress = "x:1"\n')
    with pytest.raises(TemporalConfigError, match="Profile 'staging' not found"):
        TemporalConfig.from_env("staging", env={"TEMPORAL_CONFIG_FILE": str(path)})


def test_tls_files_are_read_up_front_and_named_when_they_are_wrong(tmp_path: Path):
    certs = make_certs(tmp_path)
    base = NO_FILE | {
        "TEMPORAL_TLS_CLIENT_CERT_PATH": str(certs.client_cert),
        "TEMPORAL_TLS_CLIENT_KEY_PATH": str(certs.client_key),
    }
    missing = tmp_path / "missing-ca.pem"
    with pytest.raises(
        TemporalConnectError,
        match=f"cannot read the TLS server CA certificate {missing}: No such file",
    ):
        TemporalConfig.from_env(env=base | {"TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(missing)})
    with pytest.raises(
        TemporalConnectError, match=f"the TLS client key {certs.ca} is not a PEM client key"
    ):
        TemporalConfig.from_env(env=base | {"TEMPORAL_TLS_CLIENT_KEY_PATH": str(certs.ca)})
    with pytest.raises(TemporalConfigError, match="a TLS client certificate needs its key"):
        TemporalConfig.from_env(
            env=NO_FILE | {"TEMPORAL_TLS_CLIENT_CERT_PATH": str(certs.client_cert)}
        )
