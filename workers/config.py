"""Where Temporal is and how to reach it, read by workers, the CLI and the servers (never by
workflows). Every deployflow process connects through ``TemporalConfig.connect``.

The connection comes from Temporal's own environment configuration, as the ``temporal`` CLI
reads it (``temporalio.envconfig``): ``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``,
``TEMPORAL_API_KEY``, ``TEMPORAL_TLS*`` and a profile (``TEMPORAL_PROFILE``, or ``--profile``)
of the TOML file at ``TEMPORAL_CONFIG_FILE`` (default ``~/.config/temporalio/temporal.toml``).
deployflow's own knobs: ``DEPLOYFLOW_TASK_QUEUE``, ``DEPLOYFLOW_UI_URL`` and the payload
codec's keys (``workers/codec_keys.py``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workers.codec_keys import CodecKeys, keys_from_env
from workflows.core import names

if TYPE_CHECKING:
    from temporalio.client import Client
    from temporalio.envconfig import ClientConfigTLS

TASK_QUEUE = "deployflow"
_TLS_FILES = {  # field of ClientConfigTLS: (what it is, what its PEM must contain)
    "server_root_ca_cert": ("server CA certificate", b"-----BEGIN CERTIFICATE-----"),
    "client_cert": ("client certificate", b"-----BEGIN CERTIFICATE-----"),
    "client_private_key": ("client key", b"PRIVATE KEY-----"),
}
_TLS_FAILURES = (  # what the SDK's transport error says → what it means
    (
        "CertificateRequired",
        "the server requires a client certificate "
        "(TEMPORAL_TLS_CLIENT_CERT_PATH, TEMPORAL_TLS_CLIENT_KEY_PATH)",
    ),
    (
        "UnknownIssuer",
        "its certificate is not signed by a CA this client trusts "
        "(TEMPORAL_TLS_SERVER_CA_CERT_PATH, else the system's CAs)",
    ),
    (
        "NotValidForName",
        "its certificate is not valid for the name this client expects "
        "(TEMPORAL_TLS_SERVER_NAME, else the host of the address)",
    ),
)
# A TLS 1.3 server judges the client's certificate (or its absence) after the client thinks
# the handshake is done: the refusal arrives as an alert or as a closed connection.
_HANDSHAKE_ABORTED = (
    "fatal alert: UnknownCA",
    "fatal alert: BadCertificate",
    "connection closed",
    "broken pipe",
    "connection reset",
)


class TemporalConfigError(Exception):
    """The Temporal client configuration (profile, TOML file, variables) is invalid."""


class TemporalConnectError(ConnectionError):
    """Temporal cannot be reached: a certificate cannot be read, the TLS handshake or the
    credentials were refused, or nothing answers. The message names the file or server."""


@dataclass(frozen=True)
class TemporalConfig:
    address: str = "localhost:7233"
    namespace: str = "default"
    task_queue: str = TASK_QUEUE
    ui_url: str = "http://localhost:8233"
    connect_options: Mapping[str, Any] = field(default_factory=dict, repr=False)
    """More ``Client.connect`` arguments (``tls``, ``api_key``, ``rpc_metadata``): secrets."""
    codec_keys: CodecKeys | None = None

    @classmethod
    def from_env(
        cls, profile: str | None = None, env: Mapping[str, str] | None = None
    ) -> TemporalConfig:
        """The connection of ``profile`` (else ``TEMPORAL_PROFILE``, else ``default``) with
        the variables applied over it; each setting falls back to the local dev server's.
        TLS files are read here, so a missing one is reported before anything connects."""
        from temporalio.envconfig import ClientConfigProfile

        env = os.environ if env is None else env
        try:
            loaded = ClientConfigProfile.load(profile=profile, override_env_vars=dict(env))
        except RuntimeError as exc:  # the SDK's ConfigError
            raise TemporalConfigError(f"Temporal client configuration: {exc}") from None
        if loaded.tls is not None:
            loaded = dataclasses.replace(loaded, tls=_read_tls_files(loaded.tls))
        options: dict[str, Any] = dict(loaded.to_client_connect_config())
        return cls(
            address=options.pop("target_host", None) or cls.address,
            namespace=options.pop("namespace", None) or cls.namespace,
            task_queue=env.get("DEPLOYFLOW_TASK_QUEUE") or cls.task_queue,
            ui_url=(env.get("DEPLOYFLOW_UI_URL") or cls.ui_url).rstrip("/"),
            connect_options=options,
            codec_keys=keys_from_env(env),
        )

    @property
    def security(self) -> str:
        """``mTLS``, ``TLS`` or ``plaintext``, plus ``+ API key``: for logs and errors."""
        tls = self.connect_options.get("tls")
        kind = "plaintext" if not tls else "mTLS" if getattr(tls, "client_cert", None) else "TLS"
        return f"{kind} + API key" if self.connect_options.get("api_key") else kind

    def describe(self) -> dict[str, object]:
        """What a log line may say about this connection (no secrets)."""
        return {
            "address": self.address,
            "namespace": self.namespace,
            "task_queue": self.task_queue,
            "security": self.security,
            "codec_keys": self.codec_keys.ids if self.codec_keys else None,
        }

    def workflow_url(self, workflow_id: str, run_id: str | None = None) -> str:
        """The run's page in the Temporal UI."""
        return names.workflow_url(self.ui_url, self.namespace, workflow_id, run_id)

    async def connect(self, identity: str | None = None, *, plain_payloads: bool = False) -> Client:
        """A client with the pydantic data converter every deployflow workflow expects (and
        the payload codec); ``identity`` (e.g. an approver's name) is what history records
        as the caller. Failing to connect raises ``TemporalConnectError``.

        ``plain_payloads``: the SDK's default converter (with the codec) instead, for CLI
        commands that read and send payloads as plain JSON (the same JSON the models
        write). They then import neither pydantic nor a model module (~0.1 s).
        """
        # Imported here: every CLI call reads its TemporalConfig, `--help` needs none of it.
        from temporalio.client import Client
        from temporalio.converter import DataConverter
        from temporalio.service import RPCError, RPCStatusCode

        from workers.codec import data_converter

        base = DataConverter.default if plain_payloads else None
        try:
            return await Client.connect(
                self.address,
                namespace=self.namespace,
                data_converter=data_converter(self.codec_keys, base),
                identity=identity,
                **self.connect_options,
            )
        except RPCError as exc:
            if exc.status in (RPCStatusCode.UNAUTHENTICATED, RPCStatusCode.PERMISSION_DENIED):
                raise TemporalConnectError(
                    f"Temporal at {self.address} ({self.security}) refused the credentials: "
                    f"{exc.message}"
                ) from None
            if exc.status != RPCStatusCode.UNAVAILABLE:
                raise
            raise TemporalConnectError(self._unreachable(exc.message)) from None
        except RuntimeError as exc:  # "Failed client connect: ..."
            raise TemporalConnectError(self._unreachable(str(exc))) from None

    def _unreachable(self, reason: str) -> str:
        for marker, meaning in _TLS_FAILURES:
            if marker in reason:
                return f"the TLS handshake with Temporal at {self.address} failed: {meaning}"
        aborted = any(m in reason for m in _HANDSHAKE_ABORTED)
        if aborted and self.security.startswith("mTLS"):
            return (
                f"the TLS handshake with Temporal at {self.address} failed: the server does "
                "not accept this client certificate (TEMPORAL_TLS_CLIENT_CERT_PATH)"
            )
        if aborted and self.security.startswith("TLS"):
            return (
                f"Temporal at {self.address} closed the connection during the TLS handshake: "
                "does it require a client certificate? (TEMPORAL_TLS_CLIENT_CERT_PATH, "
                "TEMPORAL_TLS_CLIENT_KEY_PATH)"
            )
        return f"Temporal is unreachable at {self.address} ({self.security}): {reason}"


def _read_tls_files(tls: ClientConfigTLS) -> ClientConfigTLS:
    """``tls`` with its certificate and key files read, so an unreadable one is an error
    that names it (the SDK would raise a bare OSError while connecting)."""
    contents: dict[str, bytes] = {}
    for name, (what, marker) in _TLS_FILES.items():
        source = getattr(tls, name)
        if not isinstance(source, Path):
            continue
        try:
            data = source.read_bytes()
        except OSError as exc:
            raise TemporalConnectError(
                f"cannot read the TLS {what} {source}: {exc.strerror}"
            ) from None
        if marker not in data:
            raise TemporalConnectError(f"the TLS {what} {source} is not a PEM {what}")
        contents[name] = data
    if (tls.client_cert is None) != (tls.client_private_key is None):
        raise TemporalConfigError(
            "a TLS client certificate needs its key and a key its certificate "
            "(TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH)"
        )
    return dataclasses.replace(tls, **contents)  # type: ignore[arg-type]
