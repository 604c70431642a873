"""What `make demo` runs: bring the stack up, then one good and one bad canary under load.

    python examples/demo/run.py [--strategy canary]

1. ``stack.py up``: Temporal dev server, service slots (stable v1, canary = the good
   spec's version), NGINX all-stable, Prometheus, worker; then steady load through NGINX.
2. The good rollout (``examples/rollouts/checkout-STRATEGY.yaml``): expect exit 0, promoted.
3. Reset: the promoted version becomes stable (stable slot restarted with it), NGINX back to
   100 % stable, canary slot restarted with the bad spec's version, its error rate set to 1.0.
4. The bad rollout (``checkout-STRATEGY-bad.yaml``): expect exit 1, rolled back.

The committed specs use repository-relative paths; the NGINX router wants an absolute
``configPath``, so each spec is rendered with absolute paths into ``.state/demo/rollouts/``
and that copy is what ``deployflow rollout start`` gets. The stack stays up afterwards.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import processes
import stack
import yaml
from processes import HOST, REPO, STATE, StackError

ROLLOUTS = REPO / "examples" / "rollouts"
RENDERED = STATE / "rollouts"
OUTCOMES = {
    0: "promoted",
    1: "rolled back / aborted",
    2: "invalid input",
    3: "Temporal unreachable",
}


def render_spec(source: Path) -> tuple[Path, str]:
    """Copy of ``source`` with absolute paths for the NGINX router; returns it and its version."""
    document: dict[str, Any] = yaml.safe_load(source.read_text())
    spec = document["spec"]
    nginx = spec["router"]["nginx"]
    nginx["configPath"] = str(REPO / nginx["configPath"])
    for key in ("testCommand", "reloadCommand"):
        command: list[str] = nginx[key]
        if command[0] == "nginx":
            command[0] = stack.nginx_binary()
        if "-p" in command:
            at = command.index("-p") + 1
            command[at] = str(REPO / command[at])
    RENDERED.mkdir(parents=True, exist_ok=True)
    target = RENDERED / source.name
    header = f"# Rendered from {source.relative_to(REPO)} by examples/demo/run.py.\n"
    target.write_text(header + yaml.safe_dump(document, sort_keys=False))
    return target, str(spec["version"])


def set_error_rate(slot: str, rate: float) -> None:
    url = f"http://{HOST}:{stack.SLOT_PORTS[slot]}/admin/error-rate"
    request = urllib.request.Request(url, data=str(rate).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=2.0) as response:
        response.read()
    print(f"  {slot:<11} error rate set to {rate}")


def rollout(spec: Path) -> int:
    """``deployflow rollout start SPEC --wait``, its output shown as it comes."""
    command = [str(stack.BIN / "deployflow"), "rollout", "start", str(spec), "--wait"]
    print(f"$ deployflow rollout start {spec.relative_to(REPO)} --wait", flush=True)
    env = {**os.environ, "TEMPORAL_ADDRESS": f"{HOST}:{stack.TEMPORAL_PORT}"}
    return subprocess.run(command, cwd=REPO, env=env, check=False).returncode


def report(title: str, code: int, expected: int) -> bool:
    verdict = "as expected" if code == expected else f"UNEXPECTED, wanted exit {expected}"
    print(f"==> {title}: exit {code} ({OUTCOMES.get(code, 'failed')}) — {verdict}\n")
    return code == expected


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--strategy", default="canary")
    parser.add_argument("--load-seconds", type=int, default=900, help="bound on the load")
    args = parser.parse_args(argv)

    good_source = ROLLOUTS / f"checkout-{args.strategy}.yaml"
    bad_source = ROLLOUTS / f"checkout-{args.strategy}-bad.yaml"
    missing = [str(p.relative_to(REPO)) for p in (good_source, bad_source) if not p.exists()]
    if missing:
        have = sorted(p.stem.removeprefix("checkout-") for p in ROLLOUTS.glob("checkout-*.yaml"))
        strategies = [s for s in have if not s.endswith("-bad")]
        print(f"demo: no spec {', '.join(missing)}; strategies: {strategies}", file=sys.stderr)
        return 2
    if importlib.util.find_spec("starters.cli") is None:
        print("demo: the deployflow CLI (starters/cli.py) is not installed yet", file=sys.stderr)
        return 1
    good_spec, good_version = render_spec(good_source)
    bad_spec, bad_version = render_spec(bad_source)

    try:
        print("==> stack up")
        stack.up()
        # Load from an earlier demo would hit the stable slot while it restarts below.
        processes.stop("load")
        stack.set_slot("stable", stack.DEFAULT_VERSIONS["stable"])
        stack.set_slot("canary", good_version)
        set_error_rate("canary", 0.0)
        stack.reset_routing()
        processes.start(stack.load_component(args.load_seconds, rate=20.0))
        print()

        print(f"==> good canary: {good_version} healthy in the canary slot")
        good_ok = report(f"{good_version} rollout", rollout(good_spec), expected=0)

        print(f"==> {good_version} is stable now; bad canary: {bad_version} answering 500s")
        stack.set_slot("stable", good_version)
        stack.reset_routing()
        stack.set_slot("canary", bad_version)
        set_error_rate("canary", 1.0)
        bad_ok = report(f"{bad_version} rollout", rollout(bad_spec), expected=1)
    except (StackError, OSError) as e:
        print(f"demo: {e}", file=sys.stderr)
        return 1

    stack.status()
    print(
        f"\nTemporal UI: http://{HOST}:{stack.TEMPORAL_UI_PORT}"
        f"  (filter: DeployService = '{stack.SERVICE}')"
        f"\nPrometheus:  http://{HOST}:{stack.PROMETHEUS_PORT}"
        f"\nService:     http://{HOST}:{stack.NGINX_PORT}/"
        "\nThe stack stays up; `make down` stops it."
    )
    return 0 if good_ok and bad_ok else 1


if __name__ == "__main__":
    sys.exit(main())
