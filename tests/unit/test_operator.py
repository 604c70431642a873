"""Who a command records as ``by``: the same answer for rollouts, incidents and monitors."""

from __future__ import annotations

import getpass

import pytest

from starters.operator import who


def test_deployflow_user_is_who_runs_the_command(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DEPLOYFLOW_USER", "alice")
    assert who() == "alice"


def test_without_it_the_login_name(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("DEPLOYFLOW_USER", raising=False)
    monkeypatch.setenv("LOGNAME", "bob")  # getpass reads LOGNAME first
    assert who() == "bob"


def test_without_either_unknown(monkeypatch: pytest.MonkeyPatch):
    def no_passwd_entry() -> str:
        raise KeyError("getpwuid(): uid not found: 1000")

    monkeypatch.delenv("DEPLOYFLOW_USER", raising=False)
    monkeypatch.setattr(getpass, "getuser", no_passwd_entry)
    assert who() == "unknown"
