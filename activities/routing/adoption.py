"""Taking over a router file deployflow did not write (first contact on a VM).

A hand-written upstream/backend whose servers are the spec's stable list -- the canary
servers absent, ``down``/``disabled`` or at weight 0 -- is what deployflow calls stable
100 %: the router reads it so, and its first write replaces it with deployflow's own file,
the original kept beside it (``.NAME.pre-deployflow``, hidden so that ``include
conf.d/*`` globs and HAProxy's ``-f DIR`` leave it out). A rollout only does that when
nothing is lost; ``deployflow router adopt`` shows what would be, and takes it over anyway
on ``--apply``. Anything else is refused with ``RouterConfigForeign``: what the file holds,
what the spec expects, what to do.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import structlog

from activities.errors import ROUTER_CONFIG_FOREIGN, failure
from activities.routing.base import ServerState, Weights
from activities.routing.files import (
    parse_states_line,
    parse_weights_line,
    read_file,
    write_atomically,
)
from activities.routing.handwritten import (
    NGINX_DEFAULT_PORT,
    ForeignConfig,
    HandWrittenBlock,
    address_key,
    parse_haproxy_backend,
    parse_nginx_upstream,
)

log = structlog.get_logger()

Kind = Literal["nginx", "haproxy"]
STABLE_ONLY = Weights(stable=100, canary=0)
ADOPT_HINT = "`deployflow router adopt <spec file>`"


@dataclass(frozen=True)
class Adoption:
    """A hand-written block that matches the spec; ``losses`` is what the rewrite drops."""

    block: HandWrittenBlock
    losses: tuple[str, ...]


@dataclass(frozen=True)
class Recorded:
    """What a router file says: the split and server states deployflow reads from it, and
    the takeover the next write makes when someone else wrote it."""

    weights: Weights
    states: dict[str, ServerState] = field(default_factory=dict)
    adoption: Adoption | None = None


def recorded(
    kind: Kind,
    path: Path,
    content: str | None,
    name: str,
    stable: list[str],
    canary: list[str],
    *,
    accept_losses: bool = False,
) -> Recorded:
    """The file's split (stable 100 % when missing or adopted); ``RouterConfigForeign``
    when it is hand-written and cannot be taken over (with losses, unless accepted)."""
    if content is None:
        return Recorded(STABLE_ONLY)
    weights = parse_weights_line(content)
    if weights is not None:
        return Recorded(weights, parse_states_line(content))
    what = f"{'upstream' if kind == 'nginx' else 'backend'} file {path}"
    try:
        block = (parse_nginx_upstream if kind == "nginx" else parse_haproxy_backend)(content, name)
        adoption = check_adoptable(block, stable, canary, kind)
    except ForeignConfig as exc:
        raise failure(
            ROUTER_CONFIG_FOREIGN,
            f"{what} was not written by deployflow and cannot be taken over: {exc}. "
            f"Check with {ADOPT_HINT}; or move the file away and write a fresh one "
            "with `deployflow router init <spec file>`",
        ) from None
    if adoption.losses and not accept_losses:
        raise failure(
            ROUTER_CONFIG_FOREIGN,
            f"{what} was not written by deployflow; its servers are the spec's stable list, "
            f"but deployflow's file would not keep: {'; '.join(adoption.losses)}. "
            f"{ADOPT_HINT} shows the file it would write, and --apply takes it over "
            f"(the original kept as {backup_path(path)})",
        )
    return Recorded(STABLE_ONLY, adoption=adoption)


def check_adoptable(
    block: HandWrittenBlock, stable: list[str], canary: list[str], kind: Kind
) -> Adoption:
    """``block`` as stable 100 %, or ``ForeignConfig`` saying what differs from the spec."""
    default_port = NGINX_DEFAULT_PORT if kind == "nginx" else None
    spec_side = {address_key(a): "stable" for a in stable} | {
        address_key(a): "canary" for a in canary
    }
    seen: dict[tuple[str, int] | None, str] = {}
    problems = []
    for server in block.servers:
        key = address_key(server.address, default_port)
        side = spec_side.get(key)
        if key is not None and key in seen:
            problems.append(f"{server.address} is listed twice (also as {seen[key]})")
        seen[key] = server.address
        if key is None:
            problems.append(f"{server.address} is not a host:port deployflow can compare")
        elif side is None:
            problems.append(f"{server.address} is in neither the stable nor the canary list")
        elif server.backup:
            problems.append(f"{server.address} is a backup server (deployflow lists none)")
        elif side == "stable" and not server.serves:
            problems.append(f"stable server {server.address} takes no traffic in the file")
        elif side == "canary" and server.serves:
            problems.append(f"canary server {server.address} takes traffic in the file")
    missing = [a for a in stable if address_key(a) not in seen]
    if missing:
        servers = "server" if len(missing) == 1 else "servers"
        problems.append(f"it lacks the stable {servers} {', '.join(missing)}")
    if problems:
        live = [s.address for s in block.servers if s.serves]
        raise ForeignConfig(
            f"{block.kind} {block.name} lists {_servers(block)}; the spec expects the "
            f"stable list {stable} taking traffic and the canary list {canary} "
            f"{'absent or down' if kind == 'nginx' else 'absent, disabled or at weight 0'}: "
            + "; ".join(problems)
            + _swapped_hint(live, stable, canary)
            + ". Make the spec's stable list the servers that take traffic now (or edit "
            "the file to match the spec)"
        )
    return Adoption(block, _losses(block, stable))


def _servers(block: HandWrittenBlock) -> str:
    return ", ".join(s.describe() for s in block.servers) or "no servers"


def _swapped_hint(live: list[str], stable: list[str], canary: list[str]) -> str:
    keys = {address_key(a, NGINX_DEFAULT_PORT) for a in live}
    if live and keys == {address_key(a) for a in canary}:
        return " (the file serves the spec's canary list: are stable and canary swapped?)"
    return ""


def _losses(block: HandWrittenBlock, stable: list[str]) -> tuple[str, ...]:
    """What deployflow's file would not say that this block says."""
    losses = [f"{d!r}" for d in block.dropped]
    for server in block.servers:
        losses += [f"{p!r} on {server.address}" for p in server.dropped]
    weights = {s.address: s.weight or 1 for s in block.servers if s.serves}
    if len(set(weights.values())) > 1:
        unequal = ", ".join(f"{a} {w}" for a, w in weights.items())
        losses.append(f"unequal weights ({unequal}): every server of a side gets the same")
    return tuple(losses)


def backup_path(path: Path) -> Path:
    """Where the original of an adopted file is kept: beside it, hidden."""
    return path.with_name(f".{path.name}.pre-deployflow")


@contextlib.contextmanager
def keeping_original(path: Path, original: str | None, adoption: Adoption | None) -> Iterator[None]:
    """Around the write that takes the hand-written ``original`` over: copy it to
    :func:`backup_path` first, and remove the copy again if the change fails and the
    original is back in place. Does nothing for a file deployflow wrote."""
    if adoption is None or original is None:
        yield
        return
    backup = backup_path(path)
    existing = read_file(backup)
    if existing is not None and existing != original:
        raise failure(
            ROUTER_CONFIG_FOREIGN,
            f"{backup} exists and differs from {path}: move it away before deployflow "
            "takes the file over",
        )
    write_atomically(backup, original)
    try:
        yield
    except BaseException:
        if existing is None and read_file(path) == original:
            backup.unlink(missing_ok=True)
        raise
    log.warning(
        "router_file_adopted",
        path=str(path),
        backup=str(backup),
        losses=list(adoption.losses),
    )
