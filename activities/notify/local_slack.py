"""Slack's Web API on 127.0.0.1, over HTTP: ``chat.postMessage``, ``chat.update``,
``auth.test``, ``conversations.list``, ``.history`` and ``.replies`` under ``/api/``, with the
Bearer token checked (``not_authed``, ``invalid_auth``) and, given a channel list,
``channel_not_found`` for others.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from activities.notify.local_http import Fault, LocalServer, Reply, blank, json_object

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

    def fault_reply(self, fault: Fault) -> Reply:
        reply = super().fault_reply(fault)
        error = "ratelimited" if fault.status == 429 else "internal_error"
        reply.body = {"ok": False, "error": error}
        return reply

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> Reply:
        method = path.removeprefix("/api/")
        if "json" in headers.get("content-type", ""):
            params = json_object(body) or {}
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
        if blank(params.get("text")) and not params.get("blocks"):
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
        if blank(params.get("text")) and not params.get("blocks"):
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
        return json_object(value.encode())
    return value if isinstance(value, dict) else None


def _slack_error(code: str) -> Reply:
    return Reply(200, {"ok": False, "error": code})


def _shown(message: Message, with_metadata: bool = False) -> dict[str, Any]:
    shown = {"type": "message", "user": "U00000001", "bot_id": "B00000001"}
    thread = {"thread_ts": message.thread_ts} if message.thread_ts else {}
    metadata = {"metadata": message.metadata} if with_metadata and message.metadata else {}
    return {**shown, "text": message.text, "ts": message.ts, **thread, **metadata}
