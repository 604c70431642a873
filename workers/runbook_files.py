"""Runbooks from a YAML file or a directory of them: ``deployflow serve --runbooks`` and the
worker's ``DEPLOYFLOW_RUNBOOKS`` (``workers/rollout_incident.py``) read them the same way."""

from __future__ import annotations

from pathlib import Path

from workers.usage import read_text
from workflows.core.spec import SpecError
from workflows.incidents.spec import Runbook, load_runbooks


def load_runbook_path(path: Path) -> list[Runbook]:
    """Runbooks from a YAML file, or from every ``*.yaml``/``*.yml`` in a directory (by
    name, so the first match is predictable); names must be unique across files."""
    files = (
        sorted(p for p in path.glob("*") if p.suffix in (".yaml", ".yml"))
        if path.is_dir()
        else [path]
    )
    if not files:
        raise SpecError(str(path), ["(top level): no *.yaml or *.yml file in this directory"])
    runbooks: list[Runbook] = []
    problems: list[str] = []
    for file in files:
        text = read_text(file, f"--runbooks: cannot read {file}")
        try:
            runbooks += load_runbooks(text, str(file))
        except SpecError as exc:
            problems += [f"{file.name}: {p}" if path.is_dir() else p for p in exc.problems]
    names = [r.name for r in runbooks]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"metadata.name: runbook {name!r} is defined in more than one file")
    if problems:
        raise SpecError(str(path), problems)
    return runbooks
