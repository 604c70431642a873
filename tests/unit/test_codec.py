"""The payload codec: AES-GCM with key ids, rotation, clear errors, plaintext passed through."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workers.codec import ENCODING, KEY_ID, EncryptionCodec, data_converter
from workers.codec_keys import CodecKeyError, CodecKeys, keys_from_env, parse_keys
from workers.main import WORKFLOWS

HISTORIES = sorted((Path(__file__).parents[1] / "histories").glob("*.json"))


def key_line(key_id: str, size: int = 32) -> tuple[str, bytes]:
    key = os.urandom(size)
    return f"{key_id}:{base64.b64encode(key).decode()}", key


def keys(*ids: str) -> CodecKeys:
    return parse_keys("\n".join(key_line(i)[0] for i in ids), "test")


def json_payload(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=text.encode())


async def test_a_payload_is_encrypted_whole_and_decrypts_to_itself():
    codec = EncryptionCodec(keys("2026-11"))
    original = json_payload('{"service": "checkout", "token": "s3cret"}')
    [sealed] = await codec.encode([original])
    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID] == b"2026-11"
    assert set(sealed.metadata) == {"encoding", KEY_ID}  # the inner encoding is sealed too
    assert b"checkout" not in sealed.data
    assert b"s3cret" not in sealed.data
    [opened] = await codec.decode([sealed])
    assert opened == original


async def test_the_same_payload_encrypts_differently_each_time():
    codec = EncryptionCodec(keys("k1"))
    first, second = await codec.encode([json_payload("1"), json_payload("1")])
    assert first.data != second.data


async def test_rotation_new_key_encrypts_and_old_key_still_decrypts():
    old_line, _ = key_line("old")
    new_line, _ = key_line("new")
    before = EncryptionCodec(parse_keys(old_line, "before"))
    [written_before] = await before.encode([json_payload('"v1"')])
    after = EncryptionCodec(parse_keys(f"{new_line}\n{old_line}\n", "after"))
    [written_after] = await after.encode([json_payload('"v2"')])
    assert written_after.metadata[KEY_ID] == b"new"
    assert [p.data for p in await after.decode([written_before, written_after])] == [
        b'"v1"',
        b'"v2"',
    ]
    with pytest.raises(
        CodecKeyError, match=r"key 'new', which this process does not have \(its keys: old\)"
    ):
        await before.decode([written_after])


async def test_a_different_key_under_the_same_id_is_a_clear_error():
    [sealed] = await EncryptionCodec(keys("k1")).encode([json_payload("1")])
    with pytest.raises(CodecKeyError, match="does not decrypt with key 'k1'"):
        await EncryptionCodec(keys("k1")).decode([sealed])


async def test_an_altered_ciphertext_is_refused():
    codec = EncryptionCodec(keys("k1"))
    [sealed] = await codec.encode([json_payload('"weights 50/50"')])
    flipped = bytearray(sealed.data)
    flipped[-1] ^= 1
    altered = Payload(metadata=sealed.metadata, data=bytes(flipped))
    with pytest.raises(CodecKeyError, match="or the payload was altered"):
        await codec.decode([altered])


async def test_without_keys_payloads_stay_plaintext_and_ciphertext_is_a_clear_error():
    codec = EncryptionCodec(None)
    plain = json_payload("1")
    assert await codec.encode([plain]) == [plain]
    [sealed] = await EncryptionCodec(keys("k1")).encode([plain])
    with pytest.raises(CodecKeyError, match="set DEPLOYFLOW_CODEC_KEYS or DEPLOYFLOW_CODEC_KEY"):
        await codec.decode([sealed])


async def test_plaintext_payloads_pass_through_decode():
    codec = EncryptionCodec(keys("k1"))
    plain = [json_payload('"old history"'), Payload(metadata={"encoding": b"binary/null"})]
    assert await codec.decode(plain) == plain


@pytest.mark.parametrize(
    "history",
    [WorkflowHistory.from_json(p.stem, p.read_text()) for p in HISTORIES],
    ids=[p.stem for p in HISTORIES],
)
async def test_recorded_plaintext_histories_replay_with_the_codec_on(history: WorkflowHistory):
    replayer = Replayer(workflows=list(WORKFLOWS), data_converter=data_converter(keys("k1")))
    await replayer.replay_workflow(history)


def test_a_key_file_lists_the_encrypt_key_first(tmp_path):
    first, first_key = key_line("2026-11")
    second, second_key = key_line("2026-05", size=16)
    path = tmp_path / "keys"
    path.write_text(f"# newest first\n{first}\n\n  {second}  \n")
    loaded = keys_from_env({"DEPLOYFLOW_CODEC_KEYS": str(path)})
    assert loaded is not None
    assert loaded.encrypt_id == "2026-11"
    assert dict(loaded.keys) == {"2026-11": first_key, "2026-05": second_key}
    assert first_key.hex() not in repr(loaded)
    assert "2026-11" in repr(loaded)


def test_one_key_from_the_environment():
    line, key = key_line("only")
    loaded = keys_from_env({"DEPLOYFLOW_CODEC_KEY": line})
    assert loaded == CodecKeys("only", {"only": key})
    assert keys_from_env({}) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("k1", "keys, line 1: expected ID:BASE64KEY"),
        ("bad id:AAAA", "keys, line 1: expected ID:BASE64KEY"),
        ("k1:not base64!", "keys, line 1: the key of 'k1' is not base64"),
        (
            f"k1:{base64.b64encode(b'short').decode()}",
            "the key of 'k1' is 5 bytes; AES needs 16, 24 or 32",
        ),
        ("# only a comment\n", "keys: no key"),
    ],
)
def test_a_bad_key_file_names_the_line_and_never_the_key(text, message):
    with pytest.raises(CodecKeyError, match=message) as raised:
        parse_keys(text, "keys")
    assert "not base64!" not in str(raised.value)
    assert "c2hvcnQ=" not in str(raised.value)


def test_a_key_id_twice_is_refused():
    line, _ = key_line("k1")
    with pytest.raises(CodecKeyError, match="keys, line 3: key id 'k1' appears twice"):
        parse_keys(f"{line}\n\n{line}", "keys")


def test_the_environment_names_what_is_wrong(tmp_path):
    line, _ = key_line("k1")
    with pytest.raises(
        CodecKeyError, match="DEPLOYFLOW_CODEC_KEYS or DEPLOYFLOW_CODEC_KEY, not both"
    ):
        keys_from_env({"DEPLOYFLOW_CODEC_KEYS": "/x", "DEPLOYFLOW_CODEC_KEY": line})
    missing = tmp_path / "missing"
    with pytest.raises(CodecKeyError, match=f"cannot read {missing}: No such file or directory"):
        keys_from_env({"DEPLOYFLOW_CODEC_KEYS": str(missing)})
    with pytest.raises(CodecKeyError, match="one key only"):
        keys_from_env({"DEPLOYFLOW_CODEC_KEY": f"{line}\n{key_line('k2')[0]}"})
