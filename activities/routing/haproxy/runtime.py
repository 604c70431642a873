"""HAProxy's runtime API: an admin-socket session, what a backend runs, sending commands,
waiting for a reloaded HAProxy."""

from __future__ import annotations

import socket
import time

import structlog

from activities.errors import ROUTER_COMMAND_FAILED, ROUTER_CONFIG_REJECTED, failure
from activities.routing.haproxy.plan import LiveServer, parse_servers_state

log = structlog.get_logger()

SOCKET_TIMEOUT_S = 5.0
_PROMPT = b"\n> "


class RuntimeSession:
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


def live_servers(
    session: RuntimeSession, backend: str, names: dict[str, str]
) -> tuple[dict[str, LiveServer], str | None]:
    """The backend's servers, and what makes them not the spec's (``names``: by address),
    or None when they are exactly those."""
    reply = session.ask(f"show servers state {backend}")
    if not reply.startswith("1\n"):
        return {}, f"backend {backend}: HAProxy says {reply.strip()!r}"
    live = parse_servers_state(reply)
    expected = {n: a for a, n in names.items()}
    wrong = sorted(n for n in expected if n not in live or not live[n].serves(expected[n]))
    extra = sorted(set(live) - set(expected))
    if not wrong and not extra:
        return live, None
    running = {n: f"{s.fqdn or s.addr}:{s.port}" for n, s in live.items()}
    return live, (f"backend {backend} runs {running}, not the spec's {expected}")


def send(
    session: RuntimeSession, backend: str, names: dict[str, str], commands: list[str]
) -> dict[str, LiveServer]:
    """Send ``commands`` in order, stopping at the first refusal; the read-back."""
    started = time.monotonic()
    for command in commands:
        reply = session.ask(command)
        if reply.strip():
            log.warning("haproxy_command_refused", command=command, reply=reply)
            raise failure(ROUTER_CONFIG_REJECTED, f"HAProxy refused {command!r}: {reply}")
    sent = time.monotonic()
    after, problem = live_servers(session, backend, names)
    log.info(
        "haproxy_runtime",
        backend=backend,
        commands=commands,
        commands_ms=round((sent - started) * 1000, 3),
        duration_ms=round((time.monotonic() - started) * 1000, 3),
    )
    if problem is not None:
        raise failure(ROUTER_COMMAND_FAILED, problem)
    return after


def await_backend(
    path: str, backend: str, names: dict[str, str], timeout: float
) -> tuple[RuntimeSession, dict[str, LiveServer]]:
    """After a reload: a session once the socket at ``path`` shows the spec's servers
    (the new process rebinds it), or retryable ``RouterCommandFailed`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            session = RuntimeSession(path)
            live, problem = live_servers(session, backend, names)
        except OSError as e:
            problem = str(e)
        else:
            if problem is None:
                return session, live
            session.close()
        if time.monotonic() > deadline:
            raise failure(ROUTER_COMMAND_FAILED, f"after reload, within {timeout}s: {problem}")
        time.sleep(0.05)
