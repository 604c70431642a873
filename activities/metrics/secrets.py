"""Secrets for metric providers, resolved on the worker by name and never sent anywhere else.

An AnalysisTemplate arg ``valueFrom: {secretKeyRef: {name: token-secret, key: apiToken}}``
is looked up where the measurement runs, in this order:

1. the environment variable ``DEPLOYFLOW_SECRET_TOKEN_SECRET_APITOKEN`` (``name`` and
   ``key`` upper-cased, every other character than A-Z and 0-9 as ``_``);
2. the file ``$DEPLOYFLOW_SECRETS_DIR/token-secret/apiToken`` (default directory
   ``/etc/deployflow/secrets``: a Kubernetes Secret mounted as a volume has this shape),
   one trailing newline removed.

The workflow only ever holds the reference (``{{args.api-token}}`` stays unrendered in the
provider spec it sends); ``render_secrets`` fills it in inside the activity, and
``redact`` takes the values back out of anything the activity returns or logs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pydantic import Field

from activities.model import Model

SECRETS_DIR = Path("/etc/deployflow/secrets")
REDACTED = "***"
_NOT_ALNUM = re.compile(r"[^A-Z0-9]")
_SEGMENT = r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$"


class SecretKeyRef(Model):
    """Argo's ``secretKeyRef``: a key of a named secret (here: on the worker)."""

    name: str = Field(pattern=_SEGMENT, max_length=253)
    key: str = Field(pattern=_SEGMENT, max_length=253)

    @property
    def env_name(self) -> str:
        return f"DEPLOYFLOW_SECRET_{_env_part(self.name)}_{_env_part(self.key)}"

    def describe(self) -> str:
        return f"secret {self.name}/{self.key}"


class SecretMissing(Exception):
    """The worker has no such secret; the message says where it looked (never a value)."""


def resolve(ref: SecretKeyRef, env: Mapping[str, str] | None = None) -> str:
    """The secret's value from the environment or the secrets directory."""
    env = os.environ if env is None else env
    if ref.env_name in env:
        return env[ref.env_name]
    directory = Path(env.get("DEPLOYFLOW_SECRETS_DIR") or SECRETS_DIR)
    path = directory / ref.name / ref.key
    try:
        return path.read_text(encoding="utf-8").removesuffix("\n")
    except (OSError, UnicodeDecodeError):
        raise SecretMissing(
            f"{ref.describe()} is not on this worker: set {ref.env_name} or write {path}"
        ) from None


def render_secrets(value: Any, secrets: Mapping[str, str]) -> Any:
    """``value`` (JSON-shaped) with ``{{args.NAME}}`` replaced by ``secrets[NAME]``."""
    if isinstance(value, str):
        return _placeholder(secrets).sub(lambda m: secrets[m.group(1)], value) if secrets else value
    if isinstance(value, list):
        return [render_secrets(v, secrets) for v in value]
    if isinstance(value, dict):
        return {k: render_secrets(v, secrets) for k, v in value.items()}
    return value


def redact(text: str, values: list[str]) -> str:
    """``text`` with every secret value (and its URL-encoded form) replaced by ``***``."""
    for secret in sorted((v for v in values if v), key=len, reverse=True):
        text = text.replace(secret, REDACTED).replace(quote(secret, safe=""), REDACTED)
    return text


def redact_value(value: Any, values: list[str]) -> Any:
    """``redact`` applied to every string in a JSON-shaped ``value``."""
    if isinstance(value, str):
        return redact(value, values)
    if isinstance(value, list):
        return [redact_value(v, values) for v in value]
    if isinstance(value, dict):
        return {k: redact_value(v, values) for k, v in value.items()}
    return value


def _placeholder(secrets: Mapping[str, str]) -> re.Pattern[str]:
    names = "|".join(re.escape(n) for n in sorted(secrets, key=len, reverse=True))
    return re.compile(r"\{\{\s*args\.(" + names + r")\s*\}\}")


def _env_part(text: str) -> str:
    return _NOT_ALNUM.sub("_", text.upper())
