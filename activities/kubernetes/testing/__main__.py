"""``python -m activities.kubernetes.testing --kubeconfig PATH``: the double as a process.

For demos and manual poking with kubectl: serves until SIGINT/SIGTERM; the controller
advances on every request (``--manual`` to leave it still, which is only useful from a test).
"""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from activities.kubernetes.testing.server import DEFAULT_CONTEXT, KubeApiServer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m activities.kubernetes.testing")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--kubeconfig", type=Path, required=True, help="written for the server")
    parser.add_argument("--context", default=DEFAULT_CONTEXT)
    parser.add_argument("--manual", action="store_true", help="do not advance the controller")
    parser.add_argument("--broken-image", action="append", default=[], help="pods never get ready")
    args = parser.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with KubeApiServer(host=args.host, port=args.port) as server:
        server.controller.auto_advance(not args.manual)
        for image in args.broken_image:
            server.controller.break_image(image)
        server.write_kubeconfig(args.kubeconfig, context=args.context)
        print(
            f"Kubernetes API server double on {server.url} (kubeconfig {args.kubeconfig})",
            flush=True,
        )
        stop.wait()


if __name__ == "__main__":
    main()
