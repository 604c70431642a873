"""HAProxy router: shifts traffic over the runtime API, persists it in a router-owned file.

HAProxy loads the router's file beside its main config (``haproxy -f main.cfg -f
backend.cfg``); the file holds one ``backend`` section whose servers are named by side and
position in the spec: ``stable-1``, ``stable-2``, ... ``canary-1``, ... (reordering a list
renames servers, which the running HAProxy sees as a different backend; see below).

A change runs in this order, holding a per-file lock:

1. render the file; if it differs from the one on disk, ``checkCommand`` validates it
   (``haproxy -c -f <main> -f {config}`` with the candidate in place of ``{config}``; it
   catches what the spec cannot, such as an unresolvable host, and costs ~100 ms before
   the shift, not during it): a rejection is non-retryable ``RouterConfigRejected`` and
   nothing changes; ``checkCommand: null`` skips it;
2. one admin-socket session in interactive mode: ``show servers state`` (what HAProxy
   runs now), the ``set weight`` / ``set server ... state`` commands that differ from it
   -- the side gaining traffic raised before the side losing it is lowered, so capacity
   never drops to zero mid-shift -- then ``show servers state`` again to read back;
3. the file is replaced atomically, so a reload keeps the new weights.

Errors: a socket that cannot be reached or a read-back that differs is retryable
``RouterCommandFailed``; HAProxy refusing a command (its error reply, e.g. "Permission
denied" on a socket below ``level admin``) is non-retryable ``RouterConfigRejected``; a
backend HAProxy does not run, or whose servers are not the spec's (added, removed,
reordered, other address), is non-retryable ``InvalidSpec``
unless ``reloadCommand`` is set, in which case the file is written, HAProxy reloaded and
the change continues once the socket shows the new servers. Weight changes never reload.

Per-side percentages become per-server weights 0..256 (see :func:`server_weights`).
``get_weights`` and ``get_server_states`` read the live runtime state; if the socket is
down they raise (retryable) rather than report the file, which may not be what runs.

Runtime states are HAProxy's own: DRAIN gives the server no new connections (those bound
to it by a stick table or cookie still arrive) while requests in flight finish; MAINT takes
it out of rotation. In the file, MAINT and DRAIN are both ``disabled`` (HAProxy has no
config keyword for drain); the ``# deployflow-servers:`` header keeps which is which. So
after a reload a drained server is in maintenance -- the new process has nothing in flight
to let finish -- and reads back as MAINT until ``set_server_states`` sets DRAIN again.
Weights and MAINT survive a reload exactly.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import structlog

from activities.errors import (
    INVALID_SPEC,
    ROUTER_COMMAND_FAILED,
    ROUTER_CONFIG_FOREIGN,
    ROUTER_CONFIG_REJECTED,
    failure,
)
from activities.routing.adoption import ADOPT_HINT, Recorded, keeping_original, recorded
from activities.routing.base import ServerState, Weights, merge_states
from activities.routing.files import lock_for, read_file, restore, run_command, write_atomically
from activities.routing.haproxy.plan import (
    LiveServer,
    plan_states,
    plan_weights,
    render_backend,
    side_weights,
)
from activities.routing.haproxy.runtime import (
    RuntimeSession,
    await_backend,
    live_servers,
    send,
)
from activities.routing.spec import CONFIG_PLACEHOLDER, HAProxyRouterSpec

log = structlog.get_logger()

RELOAD_TIMEOUT_S = 10.0


class HAProxyRouter:
    """Weights and server rotation over HAProxy's runtime API plus a router-owned backend file."""

    def __init__(self, spec: HAProxyRouterSpec) -> None:
        self.spec = spec
        self.path = Path(spec.config_path)
        self.names = spec.names

    def set_weights(self, weights: Weights) -> None:
        """Shift traffic at runtime (raise before lower), then persist it to the file."""
        spec = self.spec
        wanted = side_weights(spec.stable, spec.canary, weights)
        with lock_for(self.path):
            previous = read_file(self.path)
            current = self._recorded(previous)
            if current.adoption is not None and weights == current.weights:
                log.info("haproxy_weights_unchanged", backend=spec.backend, hand_written=True)
                return  # the hand-written backend already is stable 100 %
            commands = self._change(
                previous,
                current,
                self._render(weights, current.states),
                "weights",
                lambda live: plan_weights(
                    spec.backend, {n: s.weight for n, s in live.items()}, wanted
                ),
                wanted,
                lambda server: server.weight,
            )
        log.info(
            "haproxy_weights_set", backend=spec.backend, commands=commands, **weights.model_dump()
        )

    def get_weights(self) -> Weights:
        """The live split, read over the socket.

        The file's recorded percentages when the running weights are exactly what they
        map to (the mapping is not one-to-one once scaled); otherwise, e.g. after a manual
        ``set weight``, the canary servers' share of the total weight, rounded.
        """
        spec = self.spec
        current = self._recorded(read_file(self.path))
        if current.adoption is not None:  # HAProxy runs the hand-written backend: stable
            return current.weights
        with self._session(None, None) as (_, live):
            running = {n: s.weight for n, s in live.items()}
        if running == side_weights(spec.stable, spec.canary, current.weights):
            return current.weights
        canary = sum(running[self.names[a]] for a in spec.canary)
        total = sum(running.values())
        if total == 0:
            return current.weights
        return Weights.canary_at(round(100 * canary / total))

    def set_server_states(self, states: Mapping[str, ServerState]) -> None:
        """Drain, take out or bring back single servers at runtime, then persist."""
        spec = self.spec
        with lock_for(self.path):
            previous = read_file(self.path)
            current = self._recorded(previous)
            merged = merge_states(current.states, states, spec.servers)
            wanted = {self.names[a]: ServerState(s) for a, s in states.items()}
            commands = self._change(
                previous,
                current,
                self._render(current.weights, merged),
                "states",
                lambda live: plan_states(
                    spec.backend, {n: s.state for n, s in live.items()}, wanted
                ),
                wanted,
                lambda server: str(server.state),
            )
        log.info(
            "haproxy_server_states_set",
            backend=spec.backend,
            commands=commands,
            states={a: str(s) for a, s in states.items()},
        )

    def get_server_states(self) -> dict[str, ServerState]:
        """Every listed server's live state, by address."""
        if self._recorded(read_file(self.path)).adoption is not None:
            return dict.fromkeys(self.spec.servers, ServerState.READY)
        with self._session(None, None) as (_, live):
            return {a: live[n].state for a, n in self.names.items()}

    def adopt(self) -> bool:
        """Make the file deployflow's at the split it holds: a missing one is written at
        stable 100 %, a hand-written one taken over whatever it loses. Checked first;
        HAProxy is reloaded with it when ``reloadCommand`` is set (else the operator
        reloads). False when the file already is deployflow's, as it would write it."""
        spec = self.spec
        with lock_for(self.path):
            previous = read_file(self.path)
            current = recorded(
                "haproxy",
                self.path,
                previous,
                spec.backend,
                spec.stable,
                spec.canary,
                accept_losses=True,
            )
            content = self._render(current.weights, current.states)
            if content == previous:
                return False
            self._check(content)
            with keeping_original(self.path, previous, current.adoption):
                if spec.reload_command is None:
                    write_atomically(self.path, content)
                else:
                    session, _ = self._reload(previous, content, "taking the file over")
                    session.close()
        return True

    def _recorded(self, content: str | None) -> Recorded:
        """What the file records; a hand-written one only if HAProxy can be reloaded with
        deployflow's (its servers get new names, which the runtime API cannot give)."""
        spec = self.spec
        current = recorded("haproxy", self.path, content, spec.backend, spec.stable, spec.canary)
        if current.adoption is not None and spec.reload_command is None:
            raise failure(
                ROUTER_CONFIG_FOREIGN,
                f"backend file {self.path} was not written by deployflow; its servers are "
                "the spec's stable list, and taking it over renames them (stable-1, ...), "
                "which needs HAProxy reloaded: set router.haproxy.reloadCommand, or run "
                f"{ADOPT_HINT} --apply and reload HAProxy yourself",
            )
        return current

    def _change(
        self,
        previous: str | None,
        current: Recorded,
        content: str,
        what: str,
        commands_for: Callable[[dict[str, LiveServer]], list[str]],
        wanted: Mapping[str, object],
        read_back: Callable[[LiveServer], object],
    ) -> int:
        """Send the commands that take the live backend where ``content`` says, check that
        every ``wanted`` server reads back so, persist ``content``; how many were sent.
        The caller holds the path lock."""
        with (
            keeping_original(self.path, previous, current.adoption),
            self._session(previous, content) as (session, live),
        ):
            commands = commands_for(live)
            after = send(session, self.spec.backend, self.names, commands)
        wrong = {n: read_back(after[n]) for n in wanted if read_back(after[n]) != wanted[n]}
        if wrong:
            raise failure(
                ROUTER_COMMAND_FAILED,
                f"backend {self.spec.backend}: {what} read back {wrong}, expected {wanted}",
            )
        if content != previous:
            write_atomically(self.path, content)
        return len(commands)

    def _render(self, weights: Weights, states: Mapping[str, ServerState]) -> str:
        spec = self.spec
        return render_backend(spec.backend, spec.stable, spec.canary, weights, states)

    @contextmanager
    def _session(
        self, previous: str | None, content: str | None
    ) -> Iterator[tuple[RuntimeSession, dict[str, LiveServer]]]:
        """A session on the admin socket and the backend's live servers.

        With ``content`` (a change is coming), the content is checked first, and a running
        backend that lacks the spec's servers is reloaded with it if ``reloadCommand`` is
        set. Socket errors become retryable ``RouterCommandFailed``.
        """
        if content is not None and content != previous:
            self._check(content)
        try:
            session = RuntimeSession(self.spec.socket)
        except OSError as e:
            raise failure(ROUTER_COMMAND_FAILED, f"HAProxy socket {self.spec.socket}: {e}") from e
        try:
            live, problem = live_servers(session, self.spec.backend, self.names)
            if problem is not None and content is not None and self.spec.reload_command:
                session.close()
                session, live = self._reload(previous, content, problem)
            elif problem is not None:
                hint = "; reload HAProxy with the router's file" + (
                    " (or set reloadCommand)" if content is not None else ""
                )
                raise failure(INVALID_SPEC, problem + hint)
            yield session, live
        except OSError as e:
            raise failure(ROUTER_COMMAND_FAILED, f"HAProxy socket {self.spec.socket}: {e}") from e
        finally:
            session.close()

    def _check(self, content: str) -> None:
        """Run ``checkCommand`` on ``content`` in a temp file beside the real one."""
        if self.spec.check_command is None:
            return
        with tempfile.NamedTemporaryFile(
            "w", dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".check"
        ) as candidate:
            candidate.write(content)
            candidate.flush()
            command = [
                candidate.name if part == CONFIG_PLACEHOLDER else part
                for part in self.spec.check_command
            ]
            run_command("haproxy", "check", command, ROUTER_CONFIG_REJECTED)

    def _reload(
        self, previous: str | None, content: str, problem: str
    ) -> tuple[RuntimeSession, dict[str, LiveServer]]:
        """Write ``content``, run ``reloadCommand``, wait for the socket to show it."""
        assert self.spec.reload_command is not None
        log.info("haproxy_reload", backend=self.spec.backend, reason=problem)
        write_atomically(self.path, content)
        try:
            run_command("haproxy", "reload", self.spec.reload_command, ROUTER_COMMAND_FAILED)
        except BaseException:
            restore(self.path, previous)
            raise
        return await_backend(self.spec.socket, self.spec.backend, self.names, RELOAD_TIMEOUT_S)
