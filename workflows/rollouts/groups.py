"""``spec.groups``: the groups a service belongs to, for rollback by scope.

```yaml
spec:
  service: orders
  groups: [backend, payments]
```

``deployflow rollback --scope backend --env production`` rolls back every service whose
newest rollout in that environment lists ``backend``; ``--scope all`` every service. A group
is a name like a service's (lowercase letters, digits, dashes); ``all`` is the scope of every
service, so no group may be called that.
"""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import AfterValidator

from workflows.core.spec import Name

ALL: Final = "all"


def _distinct(groups: list[str]) -> list[str]:
    if ALL in groups:
        raise ValueError(f"{ALL!r} is reserved: `--scope {ALL}` already means every service")
    repeated = sorted({g for g in groups if groups.count(g) > 1})
    if repeated:
        raise ValueError(f"{', '.join(repeated)} listed twice")
    return groups


Groups = Annotated[list[Name], AfterValidator(_distinct)]


def in_scope(scope: str, groups: list[str]) -> bool:
    """Whether a service in ``groups`` is in ``scope`` (a group name, or ``all``)."""
    return scope == ALL or scope in groups
