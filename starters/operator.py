"""Who runs a command, for the record: the ``by`` of an operator verb, a schedule's note,
the operator of an emergency rollback."""

from __future__ import annotations

import getpass
import os
from typing import Final

USER_ENV: Final = "DEPLOYFLOW_USER"
"""CI sets it to the person behind a job."""


def named() -> str | None:
    """``DEPLOYFLOW_USER``, or None when it is unset or empty."""
    return os.environ.get(USER_ENV) or None


def who() -> str:
    """``DEPLOYFLOW_USER``, else the login name, else ``unknown`` (a container without a
    passwd entry)."""
    try:
        return named() or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
