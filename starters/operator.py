"""Who runs a command, for the record: the ``by`` of an operator verb, a schedule's note."""

from __future__ import annotations

import getpass
import os


def who() -> str:
    """``DEPLOYFLOW_USER`` (CI sets it to the person behind a job), else the login name,
    else ``unknown`` (a container without a passwd entry)."""
    try:
        return os.environ.get("DEPLOYFLOW_USER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
