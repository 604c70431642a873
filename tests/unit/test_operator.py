"""Who a command records as ``by``: the same answer for rollouts, incidents and monitors."""

from __future__ import annotations

import getpass

import pytest

from starters.operator import named, who


def test_deployflow_user_is_who_runs_the_command(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DEPLOYFLOW_USER", "alice")
    assert (who(), named()) == ("alice", "alice")


def test_without_it_the_login_name(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("DEPLOYFLOW_USER", raising=False)
    monkeypatch.setenv("LOGNAME", "bob")  # getpass reads LOGNAME first
    assert (who(), named()) == ("bob", None)


def test_an_empty_deployflow_user_counts_as_unset(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DEPLOYFLOW_USER", "")
    monkeypatch.setenv("LOGNAME", "bob")
    assert (who(), named()) == ("bob", None)


def test_without_either_unknown(monkeypatch: pytest.MonkeyPatch):
    def no_passwd_entry() -> str:
        raise KeyError("getpwuid(): uid not found: 1000")

    monkeypatch.delenv("DEPLOYFLOW_USER", raising=False)
    monkeypatch.setattr(getpass, "getuser", no_passwd_entry)
    assert who() == "unknown"
