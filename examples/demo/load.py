"""Steady demo traffic through NGINX so Prometheus has requests to judge a canary by.

    python examples/demo/load.py [--rate 20] [--seconds 600] [--url http://127.0.0.1:18080/]
                                 [--report-every 10]

Sends ``--rate`` GET requests per second for at most ``--seconds`` (or until SIGTERM /
Ctrl-C), each on a fresh connection so the router's weights apply to every request, and
prints a line every ``--report-every`` seconds with answers by status and by version.
Loopback URLs only.
"""

from __future__ import annotations

import argparse
import collections
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from types import FrameType
from urllib.parse import urlsplit

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
MAX_IN_FLIGHT = 32


class Tally:
    """Counts answers by status ("200", "500", "error") and by the version in the body."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.codes: collections.Counter[str] = collections.Counter()
        self.versions: collections.Counter[str] = collections.Counter()

    def add(self, code: str, body: str) -> None:
        # The demo service answers "<service> <version>[ error]"; NGINX's own pages are HTML.
        words = body.split()
        with self._lock:
            self.codes[code] += 1
            if len(words) >= 2 and not body.startswith("<"):
                self.versions[words[1]] += 1

    def take(self) -> str:
        """A one-line summary since the last call, then start counting afresh."""
        with self._lock:
            codes, versions = dict(self.codes), dict(self.versions)
            self.codes.clear()
            self.versions.clear()
        by_code = " ".join(f"{k}={v}" for k, v in sorted(codes.items())) or "no answers"
        by_version = " ".join(f"{k}={v}" for k, v in sorted(versions.items()))
        return f"{by_code}  [{by_version}]"


def clock() -> str:
    """UTC wall time, as the rollout timeline prints it."""
    return datetime.now(UTC).strftime("%H:%M:%S")


def hit(url: str, tally: Tally, slots: threading.BoundedSemaphore) -> None:
    try:
        with urllib.request.urlopen(url, timeout=2.0) as response:
            tally.add(str(response.status), response.read(200).decode(errors="replace"))
    except urllib.error.HTTPError as e:
        tally.add(str(e.code), e.read(200).decode(errors="replace"))
    except OSError:
        tally.add("error", "")
    finally:
        slots.release()


def run(
    url: str, rate: float, seconds: float, stop: threading.Event, report_every: float = 10.0
) -> None:
    """Issue requests at ``rate``/s on a small pool until ``seconds`` pass or ``stop`` is set."""
    tally = Tally()
    period = 1.0 / rate
    started = time.monotonic()
    next_report = started + report_every
    tick = started
    print(f"load: {rate:g} req/s to {url} for at most {seconds:g}s", flush=True)
    # At most MAX_IN_FLIGHT requests queued or running: a hung backend slows us, never piles up.
    slots = threading.BoundedSemaphore(MAX_IN_FLIGHT)
    with ThreadPoolExecutor(max_workers=8) as pool:
        while not stop.is_set() and tick - started < seconds:
            if slots.acquire(blocking=False):
                pool.submit(hit, url, tally, slots)
            else:
                tally.add("skipped", "")
            tick += period
            if tick >= next_report:
                print(f"{clock()} load: {tally.take()}", flush=True)
                next_report += report_every
            stop.wait(max(0.0, tick - time.monotonic()))
    stopped = f"(stopped after {time.monotonic() - started:.0f}s)"
    print(f"{clock()} load: {tally.take()} {stopped}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", default="http://127.0.0.1:18080/")
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=600.0, help="stop after this long")
    parser.add_argument("--report-every", type=float, default=10.0, help="seconds per line")
    args = parser.parse_args(argv)
    if urlsplit(args.url).hostname not in LOOPBACK:
        parser.error(f"{args.url}: only loopback addresses are allowed")
    if not 0 < args.rate <= 1000:
        parser.error("--rate must be within (0, 1000]")
    if not args.report_every >= 1:
        parser.error("--report-every must be at least 1 (second)")

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    run(args.url, args.rate, args.seconds, stop, args.report_every)
    return 0


if __name__ == "__main__":
    sys.exit(main())
