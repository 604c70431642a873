"""The error that means "the user asked for something wrong" — a flag, a variable, a file —
in whichever process reads it: printed as one line, exit code 2 (the API answers 400).

It lives below ``starters`` because the worker reads flags and files too
(``starters/errors.py`` builds the CLI's ``NotFound`` and ``Conflict`` on it).
"""

from __future__ import annotations

from pathlib import Path


class UsageError(Exception):
    """Invalid input: printed as one line, exit code 2 (the API answers 400)."""


def read_text(path: Path, label: str) -> str:
    """The UTF-8 text of ``path``; ``UsageError`` (``label: why``) if it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{label}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{label}: not UTF-8 text (byte {exc.start})") from None
