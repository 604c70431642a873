"""HAProxy, pure: the backend file, per-server weights, the runtime commands a change
takes, and reading what HAProxy says it runs (``show servers state``). No I/O."""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from dataclasses import dataclass

from activities.routing.base import ServerState, Weights
from activities.routing.files import header_lines
from activities.routing.spec import server_names, split_address

MAX_WEIGHT = 256
# srv_admin_state bits (HAProxy's enum srv_admin): forced, inherited and DNS maintenance;
# forced and inherited drain. 0x04 only records that the config said ``disabled``.
_ADMIN_MAINT = 0x01 | 0x02 | 0x20
_ADMIN_DRAIN = 0x08 | 0x10


def server_weights(weights: Weights, n_stable: int, n_canary: int) -> tuple[int, int]:
    """Per-server HAProxy weights ``(stable, canary)``, each 0..256, for a side split.

    As for NGINX, each side's percentage times the other side's server count (reduced by
    their common divisor) keeps the split exact for unequal pools. When the larger of the
    two exceeds 256 (3 stable + 1 canary at 90 % canary: 10 and 270), both are scaled so it
    is 256 and rounded, a side above 0 % keeping at least 1: that split is approximate,
    and floored by the weight of 1 (1 % to 7 canary servers against 1 stable server is
    7 x 1 against 256, 2.7 %). Either way a side's weight never falls when its share
    rises, which the raise-before-lower order of :func:`plan_weights` relies on.
    """
    common = math.gcd(n_stable, n_canary)
    stable, canary = weights.stable * (n_canary // common), weights.canary * (n_stable // common)
    top = max(stable, canary)
    if top <= MAX_WEIGHT:
        return stable, canary

    def scaled(weight: int) -> int:
        return 0 if weight == 0 else max(1, (weight * MAX_WEIGHT + top // 2) // top)

    return scaled(stable), scaled(canary)


def side_weights(stable: list[str], canary: list[str], weights: Weights) -> dict[str, int]:
    """``{server name: weight}`` for every server of both sides."""
    per_stable, per_canary = server_weights(weights, len(stable), len(canary))
    names = server_names(stable, canary)
    return {names[a]: per_stable for a in stable} | {names[a]: per_canary for a in canary}


def render_backend(
    backend: str,
    stable: list[str],
    canary: list[str],
    weights: Weights,
    states: Mapping[str, ServerState] | None = None,
) -> str:
    """The router-owned file: header lines (read back) and one ``backend`` section.

    ``balance roundrobin`` because runtime weight changes need a dynamic algorithm. DRAIN
    and MAINT servers are ``disabled``; their weight is kept for when they are READY again.
    """
    states = {a: ServerState(s) for a, s in (states or {}).items() if a in stable + canary}
    names = server_names(stable, canary)
    weight_of = side_weights(stable, canary, weights)
    lines = [
        *header_lines(weights, states),
        "# Managed by deployflow: rewritten on every change, do not edit.",
        f"backend {backend}",
        "    balance roundrobin",
    ]
    for address in stable + canary:
        name = names[address]
        disabled = " disabled" if states.get(address, ServerState.READY) != "ready" else ""
        lines.append(f"    server {name} {address} weight {weight_of[name]}{disabled}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class LiveServer:
    """One row of ``show servers state``: what HAProxy runs now."""

    name: str
    addr: str
    port: int
    fqdn: str | None
    weight: int
    state: ServerState

    def serves(self, address: str) -> bool:
        """Whether this server is the spec's ``address`` (by IP, or by configured name)."""
        host, port = split_address(address)
        if port != self.port:
            return False
        try:
            return ipaddress.ip_address(host) == ipaddress.ip_address(self.addr)
        except ValueError:
            return host.lower() == (self.fqdn or "").lower()


def parse_servers_state(reply: str) -> dict[str, LiveServer]:
    """``{name: LiveServer}`` from a ``show servers state <backend>`` reply (format 1)."""
    lines = reply.strip().splitlines()
    if len(lines) < 2 or lines[0] != "1" or not lines[1].startswith("# "):
        raise ValueError(f"not a 'show servers state' reply: {reply[:200]!r}")
    columns = lines[1][2:].split()
    servers: dict[str, LiveServer] = {}
    for line in lines[2:]:
        row = dict(zip(columns, line.split(), strict=False))
        admin = int(row["srv_admin_state"])
        state = (
            ServerState.MAINT
            if admin & _ADMIN_MAINT
            else ServerState.DRAIN
            if admin & _ADMIN_DRAIN
            else ServerState.READY
        )
        servers[row["srv_name"]] = LiveServer(
            name=row["srv_name"],
            addr=row["srv_addr"],
            port=int(row["srv_port"]),
            fqdn=None if row.get("srv_fqdn", "-") == "-" else row["srv_fqdn"],
            weight=int(row["srv_uweight"]),
            state=state,
        )
    return servers


def plan_weights(backend: str, live: Mapping[str, int], wanted: Mapping[str, int]) -> list[str]:
    """``set weight`` commands taking ``live`` to ``wanted``: every raise before any lower.

    Raising first means each server's weight stays at or above the lower of its old and
    new value throughout, so a shift never passes through a moment where neither side
    serves, and the split in between lies between the old one and the new one.
    """
    raises = [n for n, w in wanted.items() if w > live[n]]
    lowers = [n for n, w in wanted.items() if w < live[n]]
    return [f"set weight {backend}/{n} {wanted[n]}" for n in raises + lowers]


def plan_states(
    backend: str, live: Mapping[str, ServerState], wanted: Mapping[str, ServerState]
) -> list[str]:
    """``set server ... state`` commands: servers coming back first, then those leaving."""
    changed = [n for n, s in wanted.items() if s != live[n]]
    order = sorted(changed, key=lambda n: wanted[n] != ServerState.READY)  # stable sort
    return [f"set server {backend}/{n} state {wanted[n]}" for n in order]
