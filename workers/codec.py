"""AES-GCM payload encryption, so Temporal's database and history hold ciphertext.

Each payload (its metadata and data, serialised) is encrypted whole into a new payload with
encoding ``binary/encrypted``, the key id in ``encryption-key-id`` and a fresh 96-bit nonce
before the ciphertext. Decoding passes any other payload through untouched: histories
written before encryption was turned on still replay and read. Search attributes are not
payloads the codec sees: they stay plaintext, as Temporal's visibility needs them.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec

from workers.codec_keys import KEY_ENV, KEYS_FILE_ENV, CodecKeyError, CodecKeys

ENCODING: Final = b"binary/encrypted"
KEY_ID: Final = "encryption-key-id"
NONCE_BYTES: Final = 12


class EncryptionCodec(PayloadCodec):
    """Encrypts with ``keys.encrypt_id``, decrypts with any key of ``keys``; with no keys it
    writes plaintext and refuses (clearly) to read ciphertext."""

    def __init__(self, keys: CodecKeys | None) -> None:
        self._encrypt_id = keys.encrypt_id.encode() if keys else None
        self._ciphers = {i: AESGCM(k) for i, k in keys.keys.items()} if keys else {}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        if self._encrypt_id is None:
            return list(payloads)
        cipher = self._ciphers[self._encrypt_id.decode()]
        encoded = []
        for payload in payloads:
            nonce = os.urandom(NONCE_BYTES)
            sealed = cipher.encrypt(nonce, payload.SerializeToString(), None)
            encoded.append(
                Payload(
                    metadata={"encoding": ENCODING, KEY_ID: self._encrypt_id},
                    data=nonce + sealed,
                )
            )
        return encoded

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._open(p) for p in payloads]

    def _open(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID, b"").decode("utf-8", "replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            known = ", ".join(sorted(self._ciphers)) or f"none: set {KEYS_FILE_ENV} or {KEY_ENV}"
            raise CodecKeyError(
                f"a payload is encrypted with key {key_id!r}, which this process does not "
                f"have (its keys: {known})"
            )
        try:
            plain = cipher.decrypt(payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], None)
        except InvalidTag:
            raise CodecKeyError(
                f"a payload does not decrypt with key {key_id!r}: the key with that id is "
                "not the one it was encrypted with, or the payload was altered"
            ) from None
        return Payload.FromString(plain)


def data_converter(
    keys: CodecKeys | None, base: DataConverter = pydantic_data_converter
) -> DataConverter:
    """``base`` (the pydantic converter every deployflow workflow expects) with the codec."""
    return dataclasses.replace(base, payload_codec=EncryptionCodec(keys))
