"""Argv templates, as the command platform and command migrations take them: ``{name}``
placeholders inside single argv elements (nothing goes through a shell), checked when a
spec is read and filled in right before the command runs. ``{{`` and ``}}`` are braces."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from string import Formatter

from activities.errors import PLACEHOLDER_MISSING, failure


def placeholders(arg: str, allowed: Collection[str], known: str) -> list[str]:
    """Placeholder names in one argv element; ``ValueError`` for any name not in ``allowed``
    (``known`` ends that message: what the command takes)."""
    try:
        parsed = list(Formatter().parse(arg))
    except ValueError as e:
        raise ValueError(f"{e} (write {{{{ or }}}} for a literal brace)") from None
    names = []
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in allowed:
            raise ValueError(f"unknown placeholder {{{name}}} ({known})")
        if spec or conversion:
            raise ValueError(f"{{{name}}} takes no conversion or format spec")
        names.append(name)
    return names


def render(argv: Sequence[str], values: Mapping[str, str | None], field: str) -> list[str]:
    """``argv`` with placeholders filled in; ``PlaceholderMissing`` when one has no value."""
    rendered = []
    for index, arg in enumerate(argv):
        parts = []
        for literal, name, _spec, _conversion in Formatter().parse(arg):
            parts.append(literal)
            if name is not None:
                value = values.get(name)
                if value is None:
                    raise failure(PLACEHOLDER_MISSING, f"{field}[{index}]: {{{name}}} has no value")
                parts.append(value)
        rendered.append("".join(parts))
    return rendered
