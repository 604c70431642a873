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

import ipaddress
import math
import re
import socket
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import structlog
from pydantic import Field, ValidationInfo, field_validator

from activities.errors import (
    INVALID_SPEC,
    ROUTER_COMMAND_FAILED,
    ROUTER_CONFIG_FOREIGN,
    ROUTER_CONFIG_REJECTED,
    failure,
)
from activities.model import Model
from activities.routing.adoption import ADOPT_HINT, Recorded, keeping_original, recorded
from activities.routing.base import (
    Address,
    ServerState,
    Weights,
    check_absolute_path,
    check_unique_sides,
    lock_for,
    merge_states,
    read_file,
    render_states_line,
    render_weights_line,
    run_command,
    split_address,
    write_atomically,
)

log = structlog.get_logger()

MAX_WEIGHT = 256
SOCKET_TIMEOUT_S = 5.0
RELOAD_TIMEOUT_S = 10.0
CONFIG_PLACEHOLDER = "{config}"

_BACKEND_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,100}")
_PROMPT = b"\n> "
# srv_admin_state bits (HAProxy's enum srv_admin): forced, inherited and DNS maintenance;
# forced and inherited drain. 0x04 only records that the config said ``disabled``.
_ADMIN_MAINT = 0x01 | 0x02 | 0x20
_ADMIN_DRAIN = 0x08 | 0x10


class HAProxyRouterSpec(Model):
    """The backend the router owns, its admin socket and file, and how to check/reload."""

    backend: str
    socket: str
    config_path: str
    stable: list[Address] = Field(min_length=1)
    canary: list[Address] = Field(min_length=1)
    check_command: list[str] | None = Field(
        default=["haproxy", "-c", "-f", "/etc/haproxy/haproxy.cfg", "-f", CONFIG_PLACEHOLDER],
        min_length=1,
    )
    reload_command: list[str] | None = Field(default=None, min_length=1)

    @field_validator("backend")
    @classmethod
    def _haproxy_identifier(cls, value: str) -> str:
        if not _BACKEND_NAME.fullmatch(value):
            raise ValueError(f"{value!r} is not an HAProxy backend name ([A-Za-z0-9_.:-]+)")
        return value

    @field_validator("socket", "config_path")
    @classmethod
    def _absolute_path(cls, value: str) -> str:
        return check_absolute_path(value)

    @field_validator("stable")
    @classmethod
    def _stable_unique(cls, value: list[str]) -> list[str]:
        return check_unique_sides([], value)

    @field_validator("canary")
    @classmethod
    def _canary_unique(cls, value: list[str], info: ValidationInfo) -> list[str]:
        return check_unique_sides(info.data.get("stable", []), value)

    @field_validator("check_command")
    @classmethod
    def _has_placeholder(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and CONFIG_PLACEHOLDER not in value:
            raise ValueError(f"must contain {CONFIG_PLACEHOLDER!r} where the candidate file goes")
        return value

    @property
    def servers(self) -> list[str]:
        return [*self.stable, *self.canary]

    @property
    def names(self) -> dict[str, str]:
        """Server name per address: ``stable-1`` ... ``canary-1`` ... in list order."""
        return server_names(self.stable, self.canary)


def server_names(stable: list[str], canary: list[str]) -> dict[str, str]:
    """``{address: name}``, named by side and 1-based position."""
    named = {a: f"stable-{i}" for i, a in enumerate(stable, 1)}
    return named | {a: f"canary-{i}" for i, a in enumerate(canary, 1)}


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
    lines = [render_weights_line(weights)]
    states_line = render_states_line(states)
    if states_line is not None:
        lines.append(states_line)
    lines += [
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


class _Session:
    """One admin-socket connection in interactive mode: a command, its reply, the next."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(SOCKET_TIMEOUT_S)
        try:
            self.sock.connect(path)
            self.ask("prompt")
        except BaseException:
            self.sock.close()
            raise

    def ask(self, command: str) -> str:
        """Send one command and return HAProxy's reply (empty when a ``set`` succeeded)."""
        self.sock.sendall(command.encode() + b"\n")
        reply = b""
        while not reply.endswith(_PROMPT):
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"HAProxy closed the socket after {command!r}")
            reply += chunk
        return reply[: -len("> ")].decode(errors="replace").strip("\n")

    def close(self) -> None:
        try:
            self.sock.sendall(b"quit\n")
        except OSError:
            pass
        finally:
            self.sock.close()


class HAProxyRouter:
    """TrafficRouter over HAProxy's runtime API plus a router-owned backend file."""

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
            content = self._render(weights, current.states)
            with (
                keeping_original(self.path, previous, current.adoption),
                self._session(previous, content) as (session, live),
            ):
                commands = plan_weights(
                    spec.backend, {n: s.weight for n, s in live.items()}, wanted
                )
                after = self._run(session, commands)
            wrong = {n: s.weight for n, s in after.items() if s.weight != wanted[n]}
            if wrong:
                raise failure(
                    ROUTER_COMMAND_FAILED,
                    f"backend {spec.backend}: weights read back {wrong}, expected {wanted}",
                )
            self._persist(previous, content)
        log.info(
            "haproxy_weights_set",
            backend=spec.backend,
            commands=len(commands),
            **weights.model_dump(),
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
            content = self._render(current.weights, merged)
            wanted = {self.names[a]: ServerState(s) for a, s in states.items()}
            with (
                keeping_original(self.path, previous, current.adoption),
                self._session(previous, content) as (session, live),
            ):
                commands = plan_states(spec.backend, {n: s.state for n, s in live.items()}, wanted)
                after = self._run(session, commands)
            wrong = {n: str(after[n].state) for n, s in wanted.items() if after[n].state != s}
            if wrong:
                raise failure(
                    ROUTER_COMMAND_FAILED,
                    f"backend {spec.backend}: states read back {wrong}, expected {wanted}",
                )
            self._persist(previous, content)
        log.info(
            "haproxy_server_states_set",
            backend=spec.backend,
            commands=len(commands),
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

    def _render(self, weights: Weights, states: Mapping[str, ServerState]) -> str:
        spec = self.spec
        return render_backend(spec.backend, spec.stable, spec.canary, weights, states)

    @contextmanager
    def _session(
        self, previous: str | None, content: str | None
    ) -> Iterator[tuple[_Session, dict[str, LiveServer]]]:
        """A session on the admin socket and the backend's live servers.

        With ``content`` (a change is coming), the content is checked first, and a running
        backend that lacks the spec's servers is reloaded with it if ``reloadCommand`` is
        set. Socket errors become retryable ``RouterCommandFailed``.
        """
        if content is not None and content != previous:
            self._check(content)
        try:
            session = _Session(self.spec.socket)
        except OSError as e:
            raise failure(ROUTER_COMMAND_FAILED, f"HAProxy socket {self.spec.socket}: {e}") from e
        try:
            live, problem = self._live(session)
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

    def _live(self, session: _Session) -> tuple[dict[str, LiveServer], str | None]:
        """The backend's servers, and what makes them not the spec's servers (or None)."""
        reply = session.ask(f"show servers state {self.spec.backend}")
        if not reply.startswith("1\n"):
            return {}, f"backend {self.spec.backend}: HAProxy says {reply.strip()!r}"
        live = parse_servers_state(reply)
        expected = {n: a for a, n in self.names.items()}
        wrong = sorted(n for n in expected if n not in live or not live[n].serves(expected[n]))
        extra = sorted(set(live) - set(expected))
        if not wrong and not extra:
            return live, None
        running = {n: f"{s.fqdn or s.addr}:{s.port}" for n, s in live.items()}
        return live, (f"backend {self.spec.backend} runs {running}, not the spec's {expected}")

    def _run(self, session: _Session, commands: list[str]) -> dict[str, LiveServer]:
        """Send ``commands`` in order, stopping at the first refusal; the read-back."""
        started = time.monotonic()
        for command in commands:
            reply = session.ask(command)
            if reply.strip():
                log.warning("haproxy_command_refused", command=command, reply=reply)
                raise failure(ROUTER_CONFIG_REJECTED, f"HAProxy refused {command!r}: {reply}")
        sent = time.monotonic()
        after, problem = self._live(session)
        log.info(
            "haproxy_runtime",
            backend=self.spec.backend,
            commands=commands,
            commands_ms=round((sent - started) * 1000, 3),
            duration_ms=round((time.monotonic() - started) * 1000, 3),
        )
        if problem is not None:
            raise failure(ROUTER_COMMAND_FAILED, problem)
        return after

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

    def _persist(self, previous: str | None, content: str) -> None:
        if content != previous:
            write_atomically(self.path, content)

    def _reload(
        self, previous: str | None, content: str, problem: str
    ) -> tuple[_Session, dict[str, LiveServer]]:
        """Write ``content``, run ``reloadCommand``, wait for the socket to show it."""
        assert self.spec.reload_command is not None
        log.info("haproxy_reload", backend=self.spec.backend, reason=problem)
        write_atomically(self.path, content)
        try:
            run_command("haproxy", "reload", self.spec.reload_command, ROUTER_COMMAND_FAILED)
        except BaseException:
            if previous is None:
                self.path.unlink(missing_ok=True)
            else:
                write_atomically(self.path, previous)
            raise
        deadline = time.monotonic() + RELOAD_TIMEOUT_S
        while True:
            try:
                session = _Session(self.spec.socket)
                live, problem_now = self._live(session)
            except OSError as e:  # the socket is rebound by the new process
                problem_now = str(e)
            else:
                if problem_now is None:
                    return session, live
                session.close()
            if time.monotonic() > deadline:
                raise failure(
                    ROUTER_COMMAND_FAILED,
                    f"after reload, within {RELOAD_TIMEOUT_S}s: {problem_now}",
                )
            time.sleep(0.05)
