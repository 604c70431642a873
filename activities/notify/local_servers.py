"""PagerDuty Events v2 and Slack Web API servers on 127.0.0.1, for tests and the demo.

Test doubles that users need ship with the package (like ``httpx.MockTransport``). These
speak enough of each API for the real clients, keep state the way the service does, and
record every request.

    cert = TlsCert.generate(tmp_dir)                 # self-signed, for 127.0.0.1/localhost
    with PagerDutyServer(cert) as pd, SlackServer(token="xoxb-test") as sl:
        env = {"PAGERDUTY_EVENTS_URL": pd.events_url, "PAGERDUTY_CA_BUNDLE": str(cert.cert_file),
               "SLACK_API_URL": sl.api_url, "SLACK_BOT_TOKEN": "xoxb-test"}
        pd.fail(429, times=1)                        # the next API request answers 429
        pd.incidents()   # [{"dedup_key": ..., "state": "triggered", "events": 1, ...}]

PagerDuty (``local_pagerduty.py``) over HTTPS, Slack (``local_slack.py``) over HTTP, each
on the recording, fault-injecting server of ``local_http.py`` (``GET /_received``,
``POST /_faults``).

``python -m activities.notify.local_servers --state-dir DIR`` runs both until SIGTERM or
SIGINT. Once both listen it writes ``DIR/notify-servers.json`` (ports, URLs, the CA file)
and ``DIR/notify.env`` (the worker environment that points the activities at them); both
are removed on exit.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from activities.notify.local_http import TlsCert
from activities.notify.local_pagerduty import PagerDutyServer
from activities.notify.local_slack import SlackServer

STATE_FILE = "notify-servers.json"
ENV_FILE = "notify.env"


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
