"""Reading router files that deployflow did not write: an NGINX ``upstream`` block or an
HAProxy ``backend`` section, as a person wrote them.

Pure functions, no I/O. Each returns the block's servers with what deployflow's own file
keeps (address, weight, ``down``/``disabled``, ``backup``) and lists everything else it
would not keep (``max_fails=3``, ``keepalive 32``, ``option httpchk``); anything it cannot
read with certainty -- a syntax error, a second block, a ``server-template`` -- is a
:class:`ForeignConfig` refusal whose message says what and where. Never any other
exception: the text may be anything.

The NGINX tokenizer is hand-written rather than taken from ``crossplane`` (nginxinc's
parser, unmaintained since 2022, untyped, reads files, not text): one block of
``directive args;`` lines is all deployflow needs to read.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from dataclasses import dataclass

NGINX_DEFAULT_PORT = 80


class ForeignConfig(ValueError):
    """A hand-written file deployflow cannot take over; the message says why."""


@dataclass(frozen=True)
class HandWrittenServer:
    """One ``server`` line: what deployflow's file keeps of it, and what it drops."""

    address: str
    line: int
    weight: int | None = None  # None: not written (both default to 1)
    down: bool = False  # nginx ``down``, HAProxy ``disabled``
    backup: bool = False
    name: str | None = None  # HAProxy's server name
    dropped: tuple[str, ...] = ()

    @property
    def serves(self) -> bool:
        """Whether it takes traffic as written (a backup only when the others fail)."""
        return not self.down and self.weight != 0 and not self.backup

    def describe(self) -> str:
        flags = [f"weight={self.weight}"] if self.weight is not None else []
        flags += ["down"] * self.down + ["backup"] * self.backup + list(self.dropped)
        return f"{self.address} ({' '.join(flags)})" if flags else self.address


@dataclass(frozen=True)
class HandWrittenBlock:
    """The ``upstream NAME {...}`` or ``backend NAME`` a hand-written file holds."""

    kind: str  # "upstream" | "backend"
    name: str
    servers: tuple[HandWrittenServer, ...]
    dropped: tuple[str, ...]  # the block's other directives, as written


# -- NGINX ---------------------------------------------------------------------------

_NGINX_TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<comment>\#[^\n]*)
      | (?P<quoted>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<special>[{};])
      | (?P<word>(?:[^\s{};"'\\]|\\.)(?:[^\s{};\\]|\\.)*)""",
    re.VERBOSE | re.DOTALL,
)


@dataclass
class _Directive:
    name: str
    args: list[str]
    line: int
    block: list[_Directive] | None = None

    def describe(self) -> str:
        text = " ".join([self.name, *self.args])
        return f"{text} {{...}}" if self.block is not None else f"{text};"


def _nginx_tokens(text: str) -> list[tuple[str, bool, int]]:
    """``(token, is_word, line)`` for every token; quotes removed from quoted words."""
    tokens: list[tuple[str, bool, int]] = []
    position, line = 0, 1
    while position < len(text):
        match = _NGINX_TOKEN.match(text, position)
        if match is None:
            raise ForeignConfig(f"line {line}: cannot read {text[position : position + 20]!r}")
        kind, value = match.lastgroup, match.group()
        if kind == "quoted":
            tokens.append((re.sub(r"\\(.)", r"\1", value[1:-1], flags=re.DOTALL), True, line))
        elif kind == "word":
            tokens.append((value, True, line))
        elif kind == "special":
            tokens.append((value, False, line))
        line += value.count("\n")
        position = match.end()
    return tokens


def _nginx_directives(text: str) -> list[_Directive]:
    """The file's top-level directives, blocks nested (a stack, not recursion)."""
    top: list[_Directive] = []
    stack: list[list[_Directive]] = [top]
    pending: list[str] = []
    pending_line = 1
    for token, is_word, line in _nginx_tokens(text):
        if is_word:
            if not pending:
                pending_line = line
            pending.append(token)
        elif token == "}":
            if pending:
                raise ForeignConfig(f"line {pending_line}: {' '.join(pending)!r} lacks its ';'")
            if len(stack) == 1:
                raise ForeignConfig(f"line {line}: '}}' closes no block")
            stack.pop()
        elif not pending:
            raise ForeignConfig(f"line {line}: {token!r} with no directive before it")
        else:
            directive = _Directive(pending[0], pending[1:], pending_line)
            stack[-1].append(directive)
            if token == "{":
                directive.block = []
                stack.append(directive.block)
            pending = []
    if pending:
        raise ForeignConfig(f"line {pending_line}: {' '.join(pending)!r} lacks its ';'")
    if len(stack) > 1:
        raise ForeignConfig("a block is not closed: '}' missing at the end")
    return top


def parse_nginx_upstream(text: str, upstream: str) -> HandWrittenBlock:
    """The servers of ``upstream UPSTREAM { ... }``, the only thing the file may hold."""
    directives = _nginx_directives(text)
    ours: list[_Directive] = []
    others: list[_Directive] = []
    for d in directives:
        is_ours = d.name == "upstream" and d.args == [upstream] and d.block is not None
        (ours if is_ours else others).append(d)
    if not ours:
        found = f"it holds {_listing(others)}" if others else "it is empty"
        raise ForeignConfig(f"no 'upstream {upstream} {{ ... }}' block: {found}")
    if others or len(ours) > 1:
        raise ForeignConfig(
            f"it holds more than upstream {upstream}: {_listing(others or ours[1:])}; "
            f"deployflow rewrites the whole file: move the rest to a file of its own"
        )
    assert ours[0].block is not None
    servers, dropped = [], []
    for directive in ours[0].block:
        if directive.block is not None:
            raise ForeignConfig(f"line {directive.line}: a block inside the upstream")
        if directive.name == "server":
            servers.append(_nginx_server(directive))
        else:
            dropped.append(directive.describe())
    return HandWrittenBlock("upstream", upstream, tuple(servers), tuple(dropped))


def _nginx_server(directive: _Directive) -> HandWrittenServer:
    if not directive.args:
        raise ForeignConfig(f"line {directive.line}: 'server' without an address")
    address, *params = directive.args
    weight: int | None = None
    flags = {"down": False, "backup": False}
    dropped = []
    for param in params:
        if param.startswith("weight="):
            weight = _number(param[len("weight=") :], directive.line, param)
        elif param in flags:
            flags[param] = True
        else:
            dropped.append(param)
    return HandWrittenServer(
        address, directive.line, weight, flags["down"], flags["backup"], None, tuple(dropped)
    )


# -- HAProxy -------------------------------------------------------------------------

# Keywords that open a section: a section runs until the next one.
_HAPROXY_SECTIONS = frozenset(
    [
        "global",
        "defaults",
        "frontend",
        "backend",
        "listen",
        "peers",
        "resolvers",
        "userlist",
        "program",
        "mailers",
        "http-errors",
        "ring",
        "cache",
        "crt-store",
        "traces",
        "log-forward",
        "fcgi-app",
    ]
)


def parse_haproxy_backend(text: str, backend: str) -> HandWrittenBlock:
    """The servers of ``backend BACKEND``, the only section the file may hold."""
    sections: list[tuple[str, int]] = []
    servers, dropped = [], []
    inside = False
    for number, raw in enumerate(text.splitlines(), 1):
        try:
            words = shlex.split(raw, comments=True)
        except ValueError as exc:
            raise ForeignConfig(f"line {number}: {exc}") from None
        if not words:
            continue
        if words[0] in _HAPROXY_SECTIONS:
            sections.append((" ".join(words), number))
            inside = words == ["backend", backend]
        elif not sections:
            raise ForeignConfig(f"line {number}: {raw.strip()!r} outside any section")
        elif not inside:
            continue
        elif words[0] == "server":
            servers.append(_haproxy_server(words, number))
        elif words[0] == "server-template":
            raise ForeignConfig(
                f"line {number}: server-template: deployflow lists servers one by one"
            )
        elif words != ["balance", "roundrobin"]:  # deployflow's file says that too
            dropped.append(" ".join(words))
    ours = [line for section, line in sections if section == f"backend {backend}"]
    others = [section for section, _ in sections if section != f"backend {backend}"]
    if not ours:
        found = f"it holds {', '.join(others)}" if others else "it is empty"
        raise ForeignConfig(f"no 'backend {backend}' section: {found}")
    if others or len(ours) > 1:
        rest = ", ".join(others) or f"a second backend {backend} (line {ours[1]})"
        raise ForeignConfig(
            f"it holds more than backend {backend}: {rest}; deployflow rewrites the whole "
            "file: move the rest to a file of its own"
        )
    return HandWrittenBlock("backend", backend, tuple(servers), tuple(dropped))


def _haproxy_server(words: list[str], line: int) -> HandWrittenServer:
    if len(words) < 3:
        raise ForeignConfig(f"line {line}: 'server' needs a name and an address")
    _, name, address, *params = words
    weight: int | None = None
    flags = {"disabled": False, "backup": False}
    dropped: list[str] = []
    params_left = iter(params)
    for param in params_left:
        if param == "weight":
            value = next(params_left, "")
            weight = _number(value, line, f"weight {value}")
        elif param in flags:
            flags[param] = True
        else:
            dropped.append(param)
    return HandWrittenServer(
        address, line, weight, flags["disabled"], flags["backup"], name, tuple(dropped)
    )


# -- both ------------------------------------------------------------------------------


def address_key(address: str, default_port: int | None = None) -> tuple[str, int] | None:
    """``(host, port)`` to compare addresses however they are spelled (``127.0.0.1:80``,
    ``[::1]:80``, ``ipv6@::1:80``, ``Web1:80``); None for what is no host and port (a
    unix socket, a port range, no port and no default)."""
    address = address.removeprefix("ipv4@").removeprefix("ipv6@")
    bracketed = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::(\d{1,5}))?", address)
    if bracketed:
        host, port = bracketed[1], bracketed[2] or ""
    elif address.count(":") > 1:  # HAProxy's bare IPv6: the last colon starts the port
        host, _, port = address.rpartition(":")
    else:
        host, _, port = address.partition(":")
    if not re.fullmatch(r"[A-Za-z0-9._:-]+", host) or not re.fullmatch(r"[0-9]{0,5}", port):
        return None
    number = int(port) if port else default_port
    if number is None or not 1 <= number <= 65535:
        return None
    try:
        return str(ipaddress.ip_address(host)), number
    except ValueError:
        return (host.lower().rstrip("."), number) if ":" not in host else None


def _number(value: str, line: int, param: str) -> int:
    if not re.fullmatch(r"[0-9]{1,6}", value):
        raise ForeignConfig(f"line {line}: {param!r}: the weight is not a number")
    return int(value)


def _listing(directives: list[_Directive]) -> str:
    shown = ", ".join(f"{d.describe()} (line {d.line})" for d in directives[:5])
    return shown + (f" and {len(directives) - 5} more" if len(directives) > 5 else "")
