"""Fault injection for the API server double: the next matching requests fail as told.

``faults.fail("PATCH", "deployments", status=409)`` makes the next PATCH of a Deployment
answer 409 (with a ``Status`` body, as the real server would), before anything is
written; ``faults.slow("GET", "deployments", 2.0)`` answers the next GET of a Deployment
normally but only after 2 s (for client timeouts); ``faults.drop_watch_after(2)`` closes the
next watch after its second event.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    410: "Expired",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


@dataclass
class Fault:
    """Fail (``status``) or delay (``delay_s``) ``times`` requests whose method, resource
    plural and subresource match (None: any method or plural)."""

    method: str | None
    plural: str | None
    status: int | None  # None: served normally, after the delay
    times: int = 1
    subresource: str | None = None
    message: str = "injected by the test"
    delay_s: float = 0.0

    @property
    def reason(self) -> str:
        return _REASONS.get(self.status or 500, "InternalError")


@dataclass
class Faults:
    """The faults armed for the double; thread-safe."""

    _armed: list[Fault] = field(default_factory=list)
    _watch_drops: list[int] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(
        self,
        method: str | None,
        plural: str | None,
        status: int,
        *,
        times: int = 1,
        subresource: str | None = None,
        message: str = "injected by the test",
    ) -> Fault:
        """Arm a fault; returns it (its ``times`` counts down to 0 as it fires)."""
        return self._arm(
            Fault(method.upper() if method else None, plural, status, times, subresource, message)
        )

    def slow(
        self,
        method: str | None,
        plural: str | None,
        seconds: float,
        *,
        times: int = 1,
        subresource: str | None = None,
    ) -> Fault:
        """Answer matching requests normally, but only after ``seconds``."""
        return self._arm(
            Fault(
                method.upper() if method else None,
                plural,
                None,
                times,
                subresource,
                delay_s=seconds,
            )
        )

    def _arm(self, fault: Fault) -> Fault:
        with self._lock:
            self._armed.append(fault)
        return fault

    def drop_watch_after(self, events: int) -> None:
        """Close the next watch stream after it sent ``events`` events."""
        with self._lock:
            self._watch_drops.append(events)

    def clear(self) -> None:
        with self._lock:
            self._armed.clear()
            self._watch_drops.clear()

    def take(self, method: str, plural: str | None, subresource: str | None) -> Fault | None:
        """The fault this request trips, if any (counted as fired)."""
        with self._lock:
            for fault in self._armed:
                if fault.times <= 0:
                    continue
                if fault.method not in (None, method) or fault.plural not in (None, plural):
                    continue
                if fault.subresource is not None and fault.subresource != subresource:
                    continue
                fault.times -= 1
                return fault
        return None

    def take_watch_drop(self) -> int | None:
        with self._lock:
            return self._watch_drops.pop(0) if self._watch_drops else None
