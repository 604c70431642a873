"""Imports run one way: ``starters → workers → workflows → activities``, and no module
imports itself round a loop.

Read from the source (``ast``), so lazy imports inside functions count: a command that
imports its module only when it runs still depends on it. ``if TYPE_CHECKING:`` imports
do not count (they never run), nor does a command named as text (``Handler("m:f")``).
``starters`` may import ``workers`` for what every process shares (``workers.config``: how
to connect; the codec; ``workers.usage``, ``workers.listen``, ``workers.runbook_files``:
flags, files and ports read the same way); ``workers`` never imports ``starters``, and
``activities`` never imports ``workflows``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAYERS = ("activities", "workflows", "workers", "starters")
"""Bottom first: a package may import the ones before it, never one after it."""


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {
    module_name(path): path for layer in LAYERS for path in sorted((REPO / layer).rglob("*.py"))
}


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(name: str) -> set[str]:
    """The project modules ``name`` imports (a package when no module of that name exists)."""
    tree = ast.parse(MODULES[name].read_text(), str(MODULES[name]))
    found: set[str] = set()
    skipped = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and _type_checking_only(node)
        for statement in node.body
        for n in ast.walk(statement)
    }
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {
                f"{node.module}.{alias.name}"
                if f"{node.module}.{alias.name}" in MODULES
                else node.module
                for alias in node.names
            }
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: imports_of(name) for name in MODULES}


def layer(module: str) -> int:
    return LAYERS.index(module.partition(".")[0])


def upward_edges(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{source} → {target}"
        for source, targets in graph.items()
        for target in targets
        if layer(target) > layer(source)
    )


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_package_imports_one_above_it():
    assert upward_edges(GRAPH) == []


def test_no_modules_import_each_other_round_a_loop():
    assert cycles(GRAPH) == []


@pytest.mark.parametrize(
    ("graph", "upward", "loops"),
    [
        (
            {"workers.remediation": {"starters.emergency"}},
            ["workers.remediation → starters.emergency"],
            [],
        ),
        (
            {"activities.x": {"workflows.y"}, "workflows.y": set()},
            ["activities.x → workflows.y"],
            [],
        ),
        (
            {
                "starters.serve": {"starters.serve_command"},
                "starters.serve_command": {"starters.serve"},
            },
            [],
            [["starters.serve", "starters.serve_command"]],
        ),
        ({"starters.cli": {"workers.config"}, "workers.config": {"workflows.core.names"}}, [], []),
    ],
)
def test_the_checks_can_fail(graph, upward, loops):
    """Each check finds what it is for: an upward edge, a loop; a downward chain passes."""
    assert (upward_edges(graph), cycles(graph)) == (upward, loops)


def test_lazy_imports_count_and_type_checking_ones_do_not():
    assert "starters.serve" not in GRAPH["starters.serve_command"]  # lazily, via Handler text
    assert "workflows.rollouts.spec" not in GRAPH["workflows.analysis.plan"]  # TYPE_CHECKING
    assert "workers.logging_setup" in GRAPH["starters.cli"]  # imported inside a function
