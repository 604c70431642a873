"""Reading spec files for the CLI, and `lint` for every kind of spec."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from starters.errors import EXIT_INVALID, EXIT_OK
from workers.usage import read_text
from workflows.core.spec import SpecError

T = TypeVar("T")


def read(path: str, load: Callable[[str, str], T]) -> T:
    """``load(text, source)`` of the file at ``path``; an unreadable file is a UsageError."""
    return load(read_text(Path(path), f"FILE {path}"), path)


def lint(
    args: argparse.Namespace,
    load: Callable[[str, str], T],
    summary: Callable[[T], tuple[str, str]],
) -> int:
    """Validate ``args.file``: ``summary`` gives (workflow id, one line) for a valid spec."""
    try:
        spec = read(args.file, load)
    except SpecError as exc:
        if args.json:
            print(json.dumps({"valid": False, "file": args.file, "problems": exc.problems}))
            return EXIT_INVALID
        raise
    workflow_id, line = summary(spec)
    if args.json:
        print(json.dumps({"valid": True, "file": args.file, "workflowId": workflow_id}))
    else:
        print(f"{args.file}: valid — {line}")
    return EXIT_OK
