"""The database URL: read from the worker's environment, never written anywhere.

Specs name the environment variable (``urlEnv: DATABASE_URL``); the URL itself, with its
password, stays on the worker: it is not part of workflow inputs, logs, errors or history.
Everything that might echo it (a driver's error message) goes through :func:`redact`.
"""

from __future__ import annotations

import os
import re
from typing import Final
from urllib.parse import parse_qsl, unquote, urlsplit

from activities.errors import INVALID_SPEC, failure

ENV_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
REDACTED: Final = "***"


def database_url(env_name: str) -> str:
    """The URL in the worker's ``env_name``; ``InvalidSpec`` naming the variable when unset."""
    url = os.environ.get(env_name, "").strip()
    if not url:
        raise failure(INVALID_SPEC, f"environment variable {env_name} is not set on this worker")
    return url


def display(url: str) -> str:
    """``scheme://user@host:port/database``: enough to tell databases apart in a log line."""
    try:
        parts = urlsplit(url)
        user = f"{parts.username}@" if parts.username else ""
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<database url>"
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"


def redact(text: str, url: str) -> str:
    """``text`` with ``url`` (as the redacted :func:`display`) and its password removed.

    The password is removed however it appears: as in the URL (percent-encoded), decoded,
    or as a ``password=`` query parameter."""
    secrets = set()
    try:
        parts = urlsplit(url)
        if parts.password:
            secrets |= {parts.password, unquote(parts.password)}
        secrets |= {v for k, v in parse_qsl(parts.query) if k.lower() == "password" and v}
    except ValueError:
        pass
    text = text.replace(url, display(url))
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text
