"""PagerDuty's Events API v2 on 127.0.0.1, over HTTPS because the ``pagerduty`` client
refuses http:// (trust the cert with ``PAGERDUTY_CA_BUNDLE``, or ``SSL_CERT_FILE`` for the
whole process).

``POST /v2/enqueue`` validates the event as Events v2 does (400 ``invalid event`` with
``errors``) and answers 202. Incidents are keyed by (routing key, dedup key): a trigger for
an open incident adds an event to it, acknowledge/resolve move it on, and an event for no
open incident is accepted and changes nothing.
"""

from __future__ import annotations

import ssl
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from activities.notify.local_http import Fault, LocalServer, Reply, TlsCert, blank, json_object

SEVERITIES = ("critical", "error", "warning", "info")
ACTIONS = ("trigger", "acknowledge", "resolve")


def event_errors(event: dict[str, Any], routing_keys: frozenset[str] | None = None) -> list[str]:
    """What PagerDuty's Events v2 would say is wrong with ``event`` (empty when valid)."""
    errors: list[str] = []
    key = event.get("routing_key")
    if blank(key):
        errors.append("'routing_key' is missing or blank")
    elif routing_keys is not None and key not in routing_keys:
        errors.append("'routing_key' is invalid")
    action = event.get("event_action")
    if action not in ACTIONS:
        errors.append(f"'event_action' is invalid (must be one of: {', '.join(ACTIONS)})")
    dedup_key = event.get("dedup_key")
    if dedup_key is not None and (not isinstance(dedup_key, str) or len(dedup_key) > 255):
        errors.append("'dedup_key' must be a string of at most 255 characters")
    if action in ("acknowledge", "resolve") and blank(dedup_key):
        errors.append("'dedup_key' is missing or blank")
    if action == "trigger":
        payload = event.get("payload")
        if not isinstance(payload, dict):
            return [*errors, "'payload' is missing or not an object"]
        for name in ("summary", "source"):
            if blank(payload.get(name)):
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

    def fault_reply(self, fault: Fault) -> Reply:
        reply = super().fault_reply(fault)
        reply.body = {"status": "throttle event" if fault.status == 429 else "error", **reply.body}
        return reply

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> Reply:
        if path != "/v2/enqueue":
            return Reply(404, {"status": "not found", "message": f"no route {path}"})
        event = json_object(body)
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
