"""The payload codec's keys, read from the environment by workers, the CLI and the servers.

``DEPLOYFLOW_CODEC_KEYS`` names a key file: one ``ID:BASE64KEY`` a line (``#`` comments and
blank lines allowed), AES keys of 16, 24 or 32 bytes. The first key encrypts; every key
decrypts, so rotating is "put the new key first, keep the old ones until nothing needs them".
``DEPLOYFLOW_CODEC_KEY`` holds a single ``ID:BASE64KEY`` instead. Neither set: payloads are
written in plaintext. Errors name the variable, the file and the line, never a key.

This module is light (no ``cryptography``, no Temporal) so the CLI can read keys at start-up.
"""

from __future__ import annotations

import binascii
import os
import re
from base64 import b64decode
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

KEYS_FILE_ENV: Final = "DEPLOYFLOW_CODEC_KEYS"
KEY_ENV: Final = "DEPLOYFLOW_CODEC_KEY"
KEY_SIZES: Final = (16, 24, 32)
_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class CodecKeyError(Exception):
    """The codec's keys are misconfigured, or a payload needs a key this process lacks."""


@dataclass(frozen=True)
class CodecKeys:
    """Key id → AES key; ``encrypt_id`` is the one new payloads are encrypted with."""

    encrypt_id: str
    keys: Mapping[str, bytes] = field(repr=False)

    @property
    def ids(self) -> list[str]:
        return list(self.keys)


def parse_keys(text: str, source: str) -> CodecKeys:
    """Keys from ``ID:BASE64KEY`` lines; ``source`` names where they came from in errors."""
    keys: dict[str, bytes] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{source}, line {number}"
        key_id, sep, encoded = line.partition(":")
        key_id = key_id.strip()
        if not sep or not _KEY_ID.fullmatch(key_id):
            raise CodecKeyError(
                f"{where}: expected ID:BASE64KEY with an ID of letters, digits, '.', '_', '-'"
            )
        if key_id in keys:
            raise CodecKeyError(f"{where}: key id {key_id!r} appears twice")
        try:
            key = b64decode(encoded.strip(), validate=True)
        except binascii.Error:
            raise CodecKeyError(f"{where}: the key of {key_id!r} is not base64") from None
        if len(key) not in KEY_SIZES:
            raise CodecKeyError(
                f"{where}: the key of {key_id!r} is {len(key)} bytes; AES needs 16, 24 or 32"
            )
        keys[key_id] = key
    if not keys:
        raise CodecKeyError(f"{source}: no key (expected ID:BASE64KEY lines)")
    return CodecKeys(encrypt_id=next(iter(keys)), keys=keys)


def keys_from_env(env: Mapping[str, str] | None = None) -> CodecKeys | None:
    """The keys ``DEPLOYFLOW_CODEC_KEYS`` or ``DEPLOYFLOW_CODEC_KEY`` give, else ``None``."""
    env = os.environ if env is None else env
    path = env.get(KEYS_FILE_ENV, "").strip()
    single = env.get(KEY_ENV, "").strip()
    if path and single:
        raise CodecKeyError(f"set {KEYS_FILE_ENV} or {KEY_ENV}, not both")
    if single:
        keys = parse_keys(single, KEY_ENV)
        if len(keys.keys) > 1:
            raise CodecKeyError(f"{KEY_ENV}: one key only; several go in a {KEYS_FILE_ENV} file")
        return keys
    if not path:
        return None
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise CodecKeyError(f"{KEYS_FILE_ENV}: cannot read {path}: {reason}") from None
    return parse_keys(text, f"{KEYS_FILE_ENV} {path}")
