"""What `deployflow serve`'s handlers (the Alertmanager intake and the deployment API) share:
the refusal that becomes a JSON 4xx/5xx, bounded body reading, and telling "Temporal is
unreachable, try later" (503) from a bug (500)."""

from __future__ import annotations

from typing import Final

from aiohttp import web
from temporalio.service import RPCError, RPCStatusCode

_TRANSIENT: Final = (
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.RESOURCE_EXHAUSTED,
)


class Refusal(Exception):
    """Answer ``status`` with ``{"error": message, "problems": [...]}``."""

    def __init__(
        self,
        status: int,
        message: str,
        problems: list[str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.problems = problems
        self.headers = headers


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, refused (413) as soon as it passes ``limit`` bytes."""
    too_large = Refusal(413, f"the body is larger than {limit} bytes")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` means Temporal cannot be reached now (a retry may succeed)."""
    if isinstance(exc, RPCError):
        return exc.status in _TRANSIENT
    # Client.connect raises RuntimeError("Failed client connect: ..."); TemporalConfig's
    # connect a TemporalConnectError, which is a ConnectionError.
    return isinstance(exc, TimeoutError | ConnectionError) or (
        isinstance(exc, RuntimeError) and "connect" in str(exc).lower()
    )


def describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return str(exc) or type(exc).__name__
