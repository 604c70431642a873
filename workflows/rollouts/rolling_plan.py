"""Rolling-update batches from ``maxUnavailable`` / ``maxSurge``, rounded as Kubernetes does.

A percentage of ``maxUnavailable`` rounds down and one of ``maxSurge`` rounds up (a
Deployment's rules). VMs have no spare hosts to surge onto, so a batch is
``maxUnavailable`` hosts; with ``maxUnavailable: 0`` the surge budget is used instead (one
host at a time for the default ``maxSurge``), and those hosts are out of rotation while
they are updated. Both resolving to 0 would never make progress and is refused.
"""

from __future__ import annotations

import math
import re

_PERCENT = re.compile(r"^(\d{1,3})%$")


def parse_int_or_percent(value: int | str) -> int | str:
    """Validate an Argo/Kubernetes IntOrString: a count ``>= 0`` or ``"0%"``..``"100%"``."""
    if isinstance(value, bool):
        raise ValueError(f"expected a count or a percentage like 25%, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"must not be negative, got {value}")
        return value
    match = _PERCENT.match(value.strip())
    if match is None or int(match.group(1)) > 100:
        if value.strip().isdigit():
            return int(value.strip())
        raise ValueError(f"expected a count or a percentage 0%..100%, got {value!r}")
    return value.strip()


def resolve(value: int | str, total: int, *, round_up: bool) -> int:
    """The host count ``value`` stands for out of ``total``."""
    if isinstance(value, int):
        return min(value, total)
    share = int(value.rstrip("%")) * total / 100
    return min(total, math.ceil(share) if round_up else math.floor(share))


def batch_size(total: int, max_unavailable: int | str, max_surge: int | str) -> int:
    unavailable = resolve(max_unavailable, total, round_up=False)
    surge = resolve(max_surge, total, round_up=True)
    if unavailable == 0 and surge == 0:
        raise ValueError(
            f"maxUnavailable {max_unavailable!r} and maxSurge {max_surge!r} both allow 0 of "
            f"{total} hosts: the update could never start"
        )
    return unavailable or surge


def plan_batches(
    hosts: list[str], max_unavailable: int | str, max_surge: int | str
) -> list[list[str]]:
    """``hosts`` in order, cut into batches of ``batch_size``."""
    if not hosts:
        return []
    size = batch_size(len(hosts), max_unavailable, max_surge)
    return [hosts[i : i + size] for i in range(0, len(hosts), size)]
