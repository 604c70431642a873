"""How a deployflow process listens on ``HOST:PORT``: the worker's health endpoint, ``serve``
and ``codec-server``. A malformed address or a port that cannot be bound is a
``UsageError`` naming the flag it came from."""

from __future__ import annotations

from aiohttp import web

from workers.usage import UsageError

EXAMPLE = "127.0.0.1:9095"


def parse_listen(text: str, flag: str = "--listen") -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9095`` for IPv6) into its parts; ``flag`` names it in errors."""
    host, _, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"{flag}: expected HOST:PORT (e.g. {EXAMPLE}), got {text!r}")
    return host, int(port)


async def start_site(
    app: web.Application,
    host: str,
    port: int,
    shutdown_timeout: float = 60.0,
    flag: str = "--listen",
) -> web.AppRunner:
    """``app`` listening on ``host:port``; a port that cannot be bound is a ``UsageError``
    naming ``flag``."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise UsageError(f"{flag} {host}:{port}: {exc.strerror or exc}") from None
    return runner
