"""PagerDuty Events v2 and Slack Web API servers on 127.0.0.1, for tests and the demo.

Test doubles that users need ship with the package (like ``httpx.MockTransport``). These
speak enough of each API for the real clients, keep state the way the service does, and
record every request. Stdlib only; each request is handled on its own thread.

    cert = TlsCert.generate(tmp_dir)                 # self-signed, for 127.0.0.1/localhost
    with PagerDutyServer(cert) as pd, SlackServer(token="xoxb-test") as sl:
        env = {"PAGERDUTY_EVENTS_URL": pd.events_url, "PAGERDUTY_CA_BUNDLE": str(cert.cert_file),
               "SLACK_API_URL": sl.api_url, "SLACK_BOT_TOKEN": "xoxb-test"}
        pd.fail(429, times=1)                        # the next API request answers 429
        pd.incidents()   # [{"dedup_key": ..., "state": "triggered", "events": 1, ...}]

PagerDuty, over HTTPS because the ``pagerduty`` client refuses http:// (trust the cert with
``PAGERDUTY_CA_BUNDLE``, or ``SSL_CERT_FILE`` for the whole process): ``POST /v2/enqueue``
validates the event as Events v2 does (400 ``invalid event`` with ``errors``) and answers
202. Incidents are keyed by (routing key, dedup key): a trigger for an open incident adds
an event to it, acknowledge/resolve move it on, and an event for no open incident is
accepted and changes nothing. Slack, over HTTP: ``chat.postMessage``, ``chat.update`` and
``auth.test`` under ``/api/``, with the Bearer token checked (``not_authed``,
``invalid_auth``) and, given a channel list, ``channel_not_found`` for others.

Both answer ``GET /_received`` (everything, as JSON, in the services' snake_case) and
``POST /_faults`` (``{"status": 500, "times": 2}``; no ``times`` means until cleared with
``{"status": null}``), so a test or demo in another process can inspect and break them.

``python -m activities.notify.local_servers --state-dir DIR`` runs both until SIGTERM or
SIGINT. Once both listen it writes ``DIR/notify-servers.json`` (ports, URLs, the CA file)
and ``DIR/notify.env`` (the worker environment that points the activities at them); both
are removed on exit.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import shlex
import signal
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, ClassVar, Self
from urllib.parse import parse_qsl, urlsplit

STATE_FILE = "notify-servers.json"
ENV_FILE = "notify.env"
SEVERITIES = ("critical", "error", "warning", "info")
ACTIONS = ("trigger", "acknowledge", "resolve")
HOLD_MAX_S = 60.0  # a held answer is sent after this even if never released


@dataclass(frozen=True)
class TlsCert:
    """A self-signed certificate for 127.0.0.1 and localhost; trust ``cert_file`` as a CA."""

    cert_file: Path
    key_file: Path

    @classmethod
    def generate(cls, directory: Path) -> TlsCert:
        """Make one with ``openssl req -x509`` (no Python crypto dependency needed)."""
        directory.mkdir(parents=True, exist_ok=True)
        cert = cls(directory / "notify-local-cert.pem", directory / "notify-local-key.pem")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-days", "30", "-subj", "/CN=deployflow local notify servers",
             "-keyout", str(cert.key_file), "-out", str(cert.cert_file),
             "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,digitalSignature,keyCertSign"],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip
        return cert


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Hold:
    """A request handled but not yet answered (``LocalServer.hold``)."""

    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        self.released.set()


@dataclass
class _Fault:
    status: int
    times: int | None  # None: until cleared
    retry_after: int


class LocalServer:
    """A threaded JSON-over-HTTP(S) server on 127.0.0.1 with recording and faults.

    Subclasses implement :meth:`handle` (called under the lock, so state needs no more
    locking) and :meth:`snapshot` (the ``/_received`` document)."""

    scheme: ClassVar[str] = "http"

    def __init__(self, port: int = 0, tls: ssl.SSLContext | None = None) -> None:
        self._lock = threading.Lock()
        self._fault: _Fault | None = None
        self._requests: list[dict[str, Any]] = []
        self._holds: dict[str, Hold] = {}
        self._httpd = _HTTPServer(("127.0.0.1", port), _handler_for(self))
        if tls is not None:  # handshake in the request's thread, not in the accept loop
            self._httpd.socket = tls.wrap_socket(
                self._httpd.socket, server_side=True, do_handshake_on_connect=False
            )
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        port: int = self._httpd.server_address[1]
        return port

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,))
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def fail(self, status: int | None, times: int | None = None, retry_after: int = 0) -> None:
        """Answer the next ``times`` API requests (all, if None) with ``status``; a 429
        carries ``Retry-After: retry_after``. ``status=None`` clears the fault."""
        with self._lock:
            self._fault = None if status is None else _Fault(status, times, retry_after)

    def requests(self) -> list[dict[str, Any]]:
        """Every API request so far, faulted ones included: ``path`` and answered ``status``."""
        with self._lock:
            return copy.deepcopy(self._requests)

    def received(self) -> dict[str, Any]:
        """What ``GET /_received`` answers."""
        with self._lock:
            return copy.deepcopy({"requests": self._requests, **self.snapshot()})

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> Reply:
        raise NotImplementedError

    def snapshot(self) -> dict[str, Any]:
        raise NotImplementedError

    def fault_reply(self, fault: _Fault) -> Reply:
        headers = {"Retry-After": str(fault.retry_after)} if fault.status == 429 else {}
        return Reply(fault.status, {"message": f"injected {fault.status}"}, headers)

    def dispatch(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        if method == "GET" and path == "/_received":
            return Reply(200, self.received())
        if method == "POST" and path == "/_faults":
            spec = _json_object(body) or {}
            status, times, retry_after = (spec.get(k) for k in ("status", "times", "retry_after"))
            if not all(v is None or type(v) is int for v in (status, times, retry_after)):
                expected = '{"status": int|null, "times": int|null, "retry_after": int|null}'
                return Reply(400, {"message": f"expected {expected}"})
            self.fail(status, times, retry_after or 0)
            return Reply(200, {"status": status, "times": times})
        if method != "POST":
            return Reply(405, {"message": f"{method} not allowed"})
        with self._lock:
            fault = self._fault
            if fault is not None:
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._fault = None
                reply = self.fault_reply(fault)
            else:
                reply = self.handle(path, headers, body)
            self._requests.append({"path": path, "status": reply.status})
            hold = self._holds.pop(path, None) if fault is None else None
        if hold is not None:  # handled (the message exists); the answer waits
            hold.reached.set()
            hold.released.wait(HOLD_MAX_S)
        return reply

    def hold(self, path: str) -> Hold:
        """Handle the next request to ``path`` (``/api/chat.postMessage``), then keep its
        answer until ``release()``: the client's process can die with the answer in flight."""
        hold = Hold()
        with self._lock:
            self._holds[path] = hold
        return hold


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ssl.SSLError | ConnectionError):
            super().handle_error(request, client_address)  # a client refusing our cert is not


def _handler_for(server: LocalServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = 10  # seconds a client may take to send a request

        def setup(self) -> None:
            super().setup()
            if isinstance(self.connection, ssl.SSLSocket):
                self.connection.do_handshake()

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            path = urlsplit(self.path).path
            reply = server.dispatch(self.command, path, headers, body)
            payload = json.dumps(reply.body).encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass  # requests are recorded; stderr stays quiet

    return Handler


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body or b"null")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _blank(value: object) -> bool:
    return not isinstance(value, str) or not value.strip()


def event_errors(event: dict[str, Any], routing_keys: frozenset[str] | None = None) -> list[str]:
    """What PagerDuty's Events v2 would say is wrong with ``event`` (empty when valid)."""
    errors: list[str] = []
    key = event.get("routing_key")
    if _blank(key):
        errors.append("'routing_key' is missing or blank")
    elif routing_keys is not None and key not in routing_keys:
        errors.append("'routing_key' is invalid")
    action = event.get("event_action")
    if action not in ACTIONS:
        errors.append(f"'event_action' is invalid (must be one of: {', '.join(ACTIONS)})")
    dedup_key = event.get("dedup_key")
    if dedup_key is not None and (not isinstance(dedup_key, str) or len(dedup_key) > 255):
        errors.append("'dedup_key' must be a string of at most 255 characters")
    if action in ("acknowledge", "resolve") and _blank(dedup_key):
        errors.append("'dedup_key' is missing or blank")
    if action == "trigger":
        payload = event.get("payload")
        if not isinstance(payload, dict):
            return [*errors, "'payload' is missing or not an object"]
        for name in ("summary", "source"):
            if _blank(payload.get(name)):
                errors.append(f"'payload.{name}' is missing or blank")
        if payload.get("severity") not in SEVERITIES:
            errors.append(
                f"'payload.severity' is invalid (must be one of: {', '.join(SEVERITIES)})"
            )
    return errors


@dataclass
class Incident:
    id: str
    routing_key: str
    dedup_key: str
    state: str
    payload: dict[str, Any]
    links: list[Any]
    events: int = 1
    log: list[str] = field(default_factory=lambda: ["trigger"])


class PagerDutyServer(LocalServer):
    """PagerDuty Events API v2 (``POST /v2/enqueue``) over HTTPS with ``cert``; with
    ``routing_keys``, others are refused as invalid events."""

    scheme = "https"

    def __init__(
        self, cert: TlsCert, port: int = 0, routing_keys: Iterable[str] | None = None
    ) -> None:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(cert.cert_file, cert.key_file)
        super().__init__(port, tls)
        self.cert = cert
        self.routing_keys = None if routing_keys is None else frozenset(routing_keys)
        self._events: list[dict[str, Any]] = []
        self._incidents: list[Incident] = []

    @property
    def events_url(self) -> str:
        """The value for ``PAGERDUTY_EVENTS_URL``."""
        return f"{self.url}/v2/enqueue"

    def events(self) -> list[dict[str, Any]]:
        """Accepted events as sent (routing key removed), each with its ``incident`` id."""
        return list(self.received()["events"])

    def incidents(self) -> list[dict[str, Any]]:
        return list(self.received()["incidents"])

    def snapshot(self) -> dict[str, Any]:
        return {"events": self._events, "incidents": [vars(i) for i in self._incidents]}

    def fault_reply(self, fault: _Fault) -> Reply:
        reply = super().fault_reply(fault)
        reply.body = {"status": "throttle event" if fault.status == 429 else "error", **reply.body}
        return reply

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> Reply:
        if path != "/v2/enqueue":
            return Reply(404, {"status": "not found", "message": f"no route {path}"})
        event = _json_object(body)
        errors = ["the body is not a JSON object"] if event is None else event_errors(event)
        if event is not None and not errors:
            errors = event_errors(event, self.routing_keys)
        if event is None or errors:
            invalid = {"status": "invalid event", "message": "Event object is invalid"}
            return Reply(400, {**invalid, "errors": errors})
        dedup_key = event.get("dedup_key") or uuid.uuid4().hex
        incident = self._apply(event, dedup_key)
        recorded = {k: v for k, v in event.items() if k != "routing_key"}
        self._events.append({**recorded, "incident": incident.id if incident else None})
        accepted = {"status": "success", "message": "Event processed", "dedup_key": dedup_key}
        return Reply(202, accepted)

    def _apply(self, event: dict[str, Any], dedup_key: str) -> Incident | None:
        key, action = event["routing_key"], event["event_action"]
        open_incident = next(
            (
                i
                for i in self._incidents
                if (i.routing_key, i.dedup_key) == (key, dedup_key) and i.state != "resolved"
            ),
            None,
        )
        if open_incident is None:
            if action != "trigger":
                return None  # PagerDuty accepts it and drops it
            incident = Incident(
                id=f"Q{len(self._incidents) + 1:07d}",
                routing_key=key,
                dedup_key=dedup_key,
                state="triggered",
                payload=event["payload"],
                links=list(event.get("links") or []),
            )
            self._incidents.append(incident)
            return incident
        open_incident.events += 1
        open_incident.log.append(action)
        if action != "trigger":
            open_incident.state = "acknowledged" if action == "acknowledge" else "resolved"
        return open_incident


CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{8,}$")


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    thread_ts: str | None
    edits: list[str] = field(default_factory=list)  # earlier texts, oldest first
    replies: list[str] = field(default_factory=list)  # ts of replies in its thread
    metadata: dict[str, Any] | None = None


class SlackServer(LocalServer):
    """Slack's Web API (``chat.postMessage``, ``chat.update``, ``auth.test`` under
        ``/api/``) over HTTP for the bot ``token``; with ``channels`` (names), others do not
        exist. Channel ids are ``C`` + 8 digits; message ts are ``<epoch>.000100`` onwards, the
    epoch being the server's start (or ``epoch``) in Unix seconds."""

    def __init__(
        self,
        token: str,
        channels: Iterable[str] | None = None,
        port: int = 0,
        epoch: int | None = None,
    ) -> None:
        super().__init__(port)
        self.token = token
        # Slack's ts is the post's Unix time (then a sequence): ``oldest`` filters by it.
        self.epoch = int(time.time()) if epoch is None else epoch
        self.allow_listed = channels is not None
        self._channels: dict[str, str] = {}  # name -> id
        for name in channels or ():
            self._channel_id(name, create=True)
        self._messages: list[Message] = []

    @property
    def api_url(self) -> str:
        """The value for ``SLACK_API_URL``."""
        return f"{self.url}/api/"

    def messages(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Messages (replies included) in post order; ``channel`` is a name or id."""
        every: list[dict[str, Any]] = self.received()["messages"]
        if channel is None:
            return every
        with self._lock:
            wanted = self._channel_id(channel, create=False)
        return [m for m in every if m["channel"] == wanted]

    def snapshot(self) -> dict[str, Any]:
        return {"channels": self._channels, "messages": [vars(m) for m in self._messages]}

    def fault_reply(self, fault: _Fault) -> Reply:
        reply = super().fault_reply(fault)
        error = "ratelimited" if fault.status == 429 else "internal_error"
        reply.body = {"ok": False, "error": error}
        return reply

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> Reply:
        method = path.removeprefix("/api/")
        if "json" in headers.get("content-type", ""):
            params = _json_object(body) or {}
        else:
            params = dict(parse_qsl(body.decode()))
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer ") or not auth.removeprefix("Bearer ").strip():
            return _slack_error("not_authed")
        if auth.removeprefix("Bearer ").strip() != self.token:
            return _slack_error("invalid_auth")
        if method == "auth.test":
            bot = {"team": "deployflow", "user": "deployflow", "team_id": "T00000001"}
            return Reply(200, {"ok": True, **bot, "user_id": "U00000001", "bot_id": "B00000001"})
        if method == "chat.postMessage":
            return self._post(params)
        if method == "chat.update":
            return self._update(params)
        if method in ("conversations.history", "conversations.replies"):
            return self._read(method, params)
        if method == "conversations.list":
            return self._list(params)
        return _slack_error("unknown_method")

    def _channel_id(self, channel: str, create: bool) -> str | None:
        name = channel.removeprefix("#")
        if not name:
            return None
        if name in self._channels.values():
            return name
        if name not in self._channels and create:
            if CHANNEL_ID.match(name):
                return name
            self._channels[name] = f"C{len(self._channels) + 1:08d}"
        return self._channels.get(name)

    def _find(self, channel: str, ts: object) -> Message | None:
        return next((m for m in self._messages if (m.channel, m.ts) == (channel, ts)), None)

    def _post(self, params: dict[str, Any]) -> Reply:
        channel = self._channel_id(str(params.get("channel", "")), not self.allow_listed)
        if not channel:
            return _slack_error("channel_not_found")
        if _blank(params.get("text")) and not params.get("blocks"):
            return _slack_error("no_text")
        n = len(self._messages) + 1
        ts = f"{self.epoch + n // 10_000}.{n % 10_000 * 100:06d}"
        thread_ts = params.get("thread_ts") or None
        metadata = _json_param(params.get("metadata"))
        message = Message(channel, ts, str(params.get("text", "")), thread_ts, metadata=metadata)
        if thread_ts is not None and (parent := self._find(channel, thread_ts)) is not None:
            parent.replies.append(ts)
        self._messages.append(message)
        return Reply(200, {"ok": True, "channel": channel, "ts": ts, "message": _shown(message)})

    def _update(self, params: dict[str, Any]) -> Reply:
        channel = self._channel_id(str(params.get("channel", "")), not self.allow_listed)
        if not channel:
            return _slack_error("channel_not_found")
        message = self._find(channel, params.get("ts"))
        if message is None:
            return _slack_error("message_not_found")
        if _blank(params.get("text")) and not params.get("blocks"):
            return _slack_error("no_text")
        message.edits.append(message.text)
        message.text = str(params.get("text", ""))
        shown = {"channel": channel, "ts": message.ts, "text": message.text}
        return Reply(200, {"ok": True, **shown, "message": _shown(message)})

    def _list(self, params: dict[str, Any]) -> Reply:
        """``conversations.list``, paginated by ``cursor`` (an offset here) and ``limit``."""
        limit = int(params.get("limit") or 100)
        start = int(params.get("cursor") or 0)
        every = [{"id": i, "name": n, "is_channel": True} for n, i in self._channels.items()]
        page = every[start : start + limit]
        more = start + limit < len(every)
        cursor = str(start + limit) if more else ""
        return Reply(
            200, {"ok": True, "channels": page, "response_metadata": {"next_cursor": cursor}}
        )

    def _read(self, method: str, params: dict[str, Any]) -> Reply:
        """``conversations.history`` (top-level messages since ``oldest``, newest first) and
        ``conversations.replies`` (the parent ``ts``, then its replies, oldest first). Like
        Slack, these want a channel id; metadata only with ``include_all_metadata``."""
        channel = str(params.get("channel", ""))
        if channel not in self._channels.values() and not CHANNEL_ID.match(channel):
            return _slack_error("channel_not_found")
        with_metadata = str(params.get("include_all_metadata", "")).lower() in ("1", "true")
        limit = int(params.get("limit") or 100)
        if method == "conversations.history":
            oldest = float(params.get("oldest") or 0)
            found = [
                m
                for m in reversed(self._messages)
                if m.channel == channel and m.thread_ts is None and float(m.ts) >= oldest
            ]
        else:
            parent = self._find(channel, params.get("ts"))
            if parent is None:
                return _slack_error("thread_not_found")
            found = [parent, *(m for m in self._messages if m.thread_ts == parent.ts)]
        shown = [_shown(m, with_metadata) for m in found[:limit]]
        return Reply(200, {"ok": True, "messages": shown, "has_more": len(found) > limit})


def _json_param(value: object) -> dict[str, Any] | None:
    """A JSON-object parameter sent as an object (JSON body) or a string (form body)."""
    if isinstance(value, str):
        return _json_object(value.encode())
    return value if isinstance(value, dict) else None


def _slack_error(code: str) -> Reply:
    return Reply(200, {"ok": False, "error": code})


def _shown(message: Message, with_metadata: bool = False) -> dict[str, Any]:
    shown = {"type": "message", "user": "U00000001", "bot_id": "B00000001"}
    thread = {"thread_ts": message.thread_ts} if message.thread_ts else {}
    metadata = {"metadata": message.metadata} if with_metadata and message.metadata else {}
    return {**shown, "text": message.text, "ts": message.ts, **thread, **metadata}


def _write_state(state_dir: Path, pd: PagerDutyServer, sl: SlackServer, key: str) -> None:
    env = {
        "PAGERDUTY_EVENTS_URL": pd.events_url,
        "PAGERDUTY_CA_BUNDLE": str(pd.cert.cert_file),
        "PAGERDUTY_ROUTING_KEY": key,
        "SLACK_API_URL": sl.api_url,
        "SLACK_BOT_TOKEN": sl.token,
    }
    state = {
        "pagerduty": {
            "port": pd.port,
            "events_url": pd.events_url,
            "received_url": f"{pd.url}/_received",
            "ca_file": str(pd.cert.cert_file),
        },
        "slack": {"port": sl.port, "api_url": sl.api_url, "received_url": f"{sl.url}/_received"},
        "env": env,
    }
    env_text = "".join(f"{name}={shlex.quote(value)}\n" for name, value in env.items())
    # Written before the state file, each by rename: the state file means "ready".
    for name, text in ((ENV_FILE, env_text), (STATE_FILE, json.dumps(state, indent=2) + "\n")):
        partial = state_dir / f".{name}.partial"
        partial.write_text(text)
        partial.replace(state_dir / name)


def main(argv: Sequence[str] | None = None) -> int:
    """Run both servers in the foreground until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m activities.notify.local_servers")
    parser.add_argument("--pagerduty-port", type=int, default=0, help="0: any free port")
    parser.add_argument("--slack-port", type=int, default=0, help="0: any free port")
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--routing-key", default="deployflow-local-routing-key-0000")
    parser.add_argument("--slack-token", default="xoxb-deployflow-local")
    parser.add_argument("--slack-channel", action="append", help="allow only these channels")
    args = parser.parse_args(argv)
    state_dir: Path = args.state_dir
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    cert = TlsCert.generate(state_dir)
    pd = PagerDutyServer(cert, args.pagerduty_port, routing_keys=[args.routing_key])
    sl = SlackServer(args.slack_token, args.slack_channel, args.slack_port)
    try:
        with pd, sl:
            _write_state(state_dir, pd, sl, args.routing_key)
            print(f"pagerduty {pd.events_url}  slack {sl.api_url}", file=sys.stderr, flush=True)
            stop.wait()
    finally:
        for name in (STATE_FILE, ENV_FILE):
            (state_dir / name).unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
