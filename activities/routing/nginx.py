"""NGINX router: owns one file holding one ``upstream`` block, shifts traffic by weights.

A change is rendered, written atomically, checked with ``nginx -t`` and only then applied
with ``nginx -s reload``. A rejected config or a failed reload puts the previous file back.
A worker killed between the write and the reload leaves a file nginx never loaded, so the
file alone cannot say what runs: after each successful reload the content's digest is
written to ``.NAME.applied`` beside it, and a retry that finds the wanted content but
another digest there tests and reloads again instead of skipping. (With no digest file yet,
the file is trusted, as before digests existed.)

Weights are per side: every server of a side gets that side's percentage as its NGINX
``weight``. With equal server counts on both sides that is exactly the requested split;
with unequal counts the split is by total weight (2 stable servers at 95 and 1 canary at
5 send 5/195 of requests to the canary). NGINX's minimum weight is 1, so a side at 0 %
keeps its servers listed but marked ``down``.

Per-server states live in the same file (a ``# deployflow-servers:`` header line, so they
read back) and render DRAIN and MAINT alike as ``down``: NGINX OSS has no drain, but a
reload is graceful, so requests already in flight finish on the old workers while the new
ones send nothing to the server.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import structlog

from activities.errors import ROUTER_COMMAND_FAILED, ROUTER_CONFIG_REJECTED
from activities.routing.adoption import Recorded, keeping_original, recorded
from activities.routing.base import ServerState, Weights, merge_states
from activities.routing.files import (
    header_lines,
    lock_for,
    parse_states_line,
    parse_weights_line,
    read_file,
    restore,
    run_command,
    write_atomically,
)
from activities.routing.spec import NginxRouterSpec

log = structlog.get_logger()


def render_upstream(
    upstream: str,
    stable: list[str],
    canary: list[str],
    weights: Weights,
    states: Mapping[str, ServerState] | None = None,
) -> str:
    """The complete upstream file for ``weights``; the header lines are what is read back.

    Each server's weight is its side's percentage times the other side's server count, so
    the split holds however many servers each side has (2 stable + 1 canary at 5 % is
    ``95*1`` per stable server and ``5*2`` for the canary: 10/200 = 5 %). Servers in
    ``states`` as DRAIN or MAINT are ``down``; the rest are READY.
    """
    states = {a: ServerState(s) for a, s in (states or {}).items() if a in stable + canary}
    per_server = {"stable": weights.stable * len(canary), "canary": weights.canary * len(stable)}
    lines = [
        *header_lines(weights, states),
        "# Managed by deployflow: rewritten on every traffic shift, do not edit.",
        f"upstream {upstream} {{",
    ]
    for servers, side in ((stable, "stable"), (canary, "canary")):
        weight = per_server[side]
        for address in servers:
            ready = states.get(address, ServerState.READY) == ServerState.READY
            state = f"weight={weight}" if weight > 0 and ready else "down"
            lines.append(f"    server {address} {state};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def parse_weights(content: str) -> Weights | None:
    """Weights from a file written by :func:`render_upstream`, or None if it is not one."""
    return parse_weights_line(content)


def parse_server_states(content: str) -> dict[str, ServerState]:
    """The servers a file written by :func:`render_upstream` holds out of rotation."""
    return parse_states_line(content)


class NginxRouter:
    """Weights and server rotation over an upstream file, ``nginx -t`` and ``nginx -s reload``.

    A hand-written file whose servers are the spec's stable list reads as stable 100 %
    and is taken over by the first write (see :mod:`activities.routing.adoption`).
    """

    def __init__(self, spec: NginxRouterSpec) -> None:
        self.spec = spec
        self.path = Path(spec.config_path)

    def set_weights(self, weights: Weights) -> None:
        """Apply ``weights``, keeping server states; no-op if the file already says this
        (a hand-written one says stable 100 %)."""
        with lock_for(self.path):
            previous = read_file(self.path)
            current = self._recorded(previous)
            as_written = current.adoption is not None and weights == current.weights
            content = self._render(weights, current.states)
            changed = not as_written and self._apply(previous, content, current)
        log.info(
            "nginx_weights_set" if changed else "nginx_weights_unchanged",
            path=str(self.path),
            **weights.model_dump(),
        )

    def get_weights(self) -> Weights:
        """Weights in the file; 100 % stable if it is missing or a hand-written one."""
        return self._recorded(read_file(self.path)).weights

    def set_server_states(self, states: Mapping[str, ServerState]) -> None:
        """Mark servers ``down`` (DRAIN, MAINT) or back at their side's weight (READY)."""
        with lock_for(self.path):
            previous = read_file(self.path)
            current = self._recorded(previous)
            merged = merge_states(current.states, states, self.spec.servers)
            changed = self._apply(previous, self._render(current.weights, merged), current)
        log.info(
            "nginx_server_states_set" if changed else "nginx_server_states_unchanged",
            path=str(self.path),
            states={address: str(state) for address, state in states.items()},
        )

    def get_server_states(self) -> dict[str, ServerState]:
        """Every listed server's state in the file (READY unless set otherwise)."""
        current = self._recorded(read_file(self.path))
        return merge_states(current.states, {}, self.spec.servers)

    def adopt(self) -> bool:
        """Make the file deployflow's at the split it holds: a missing one is written at
        stable 100 %, a hand-written one taken over whatever it loses. False when the file
        already is deployflow's, as it would write it."""
        with lock_for(self.path):
            previous = read_file(self.path)
            current = self._recorded(previous, accept_losses=True)
            return self._apply(previous, self._render(current.weights, current.states), current)

    def _recorded(self, content: str | None, *, accept_losses: bool = False) -> Recorded:
        spec = self.spec
        return recorded(
            "nginx",
            self.path,
            content,
            spec.upstream,
            spec.stable,
            spec.canary,
            accept_losses=accept_losses,
        )

    def _render(self, weights: Weights, states: Mapping[str, ServerState]) -> str:
        spec = self.spec
        return render_upstream(spec.upstream, spec.stable, spec.canary, weights, states)

    def _apply(self, previous: str | None, content: str, current: Recorded) -> bool:
        """Write, test and reload ``content``; False if nginx already runs it.

        The caller holds the path lock. A rejected test or failed reload restores
        ``previous`` and re-raises. Taking a hand-written file over keeps its original.
        """
        applied = self.path.with_name(f".{self.path.name}.applied")
        digest = hashlib.sha256(content.encode()).hexdigest()
        last = read_file(applied)
        # No digest yet: the file predates the digests (or was written by hand), trust it.
        if previous == content and last in (digest, None):
            return False
        with keeping_original(self.path, previous, current.adoption):
            write_atomically(self.path, content)
            try:
                run_command("nginx", "test", self.spec.test_command, ROUTER_CONFIG_REJECTED)
                run_command("nginx", "reload", self.spec.reload_command, ROUTER_COMMAND_FAILED)
            except BaseException:
                if previous != content:
                    self._restore(previous)
                raise
        write_atomically(applied, digest)
        return True

    def _restore(self, previous: str | None) -> None:
        restore(self.path, previous)
        log.warning("nginx_config_restored", path=str(self.path), removed=previous is None)
