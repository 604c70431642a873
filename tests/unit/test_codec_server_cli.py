"""`deployflow codec-server` refuses to start, with one line and exit 2, when it could not
serve safely: no keys, no token, an origin that is not one."""

from __future__ import annotations

import base64
import os

import pytest

from starters.cli import main

KEY = f"k1:{base64.b64encode(os.urandom(32)).decode()}"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("DEPLOYFLOW_CODEC"):
            monkeypatch.delenv(name)


def test_without_keys_it_does_not_start(capsys):
    assert main(["codec-server", "--insecure-no-auth"]) == 2
    assert "no keys: set DEPLOYFLOW_CODEC_KEYS or DEPLOYFLOW_CODEC_KEY" in capsys.readouterr().err


def test_without_a_token_it_does_not_start(monkeypatch, capsys):
    monkeypatch.setenv("DEPLOYFLOW_CODEC_KEY", KEY)
    assert main(["codec-server"]) == 2
    assert "DEPLOYFLOW_CODEC_SERVER_TOKEN is not set" in capsys.readouterr().err


def test_an_empty_token_file_or_a_bad_origin_is_refused(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("DEPLOYFLOW_CODEC_KEY", KEY)
    token = tmp_path / "token"
    token.write_text("\n")
    assert main(["codec-server", "--token-file", str(token)]) == 2
    assert f"--token-file: {token} is empty" in capsys.readouterr().err
    token.write_text("t0ken\n")
    assert (
        main(["codec-server", "--token-file", str(token), "--cors-origin", "localhost:8233"]) == 2
    )
    assert "--cors-origin: expected e.g. http://localhost:8233" in capsys.readouterr().err


def test_a_bad_key_is_named_without_starting(monkeypatch, capsys):
    monkeypatch.setenv("DEPLOYFLOW_CODEC_KEY", "k1:AAAA")
    assert main(["codec-server", "--insecure-no-auth"]) == 2
    err = capsys.readouterr().err
    assert "DEPLOYFLOW_CODEC_KEY, line 1: the key of 'k1' is 3 bytes" in err
    assert "AAAA" not in err
