"""`deployflow router adopt|init FILE`: first contact with a VM's load balancer.

``adopt`` takes over the upstream (NGINX) or backend (HAProxy) file a person wrote, when
its servers are the spec's stable list and the canary servers are absent or down: it shows
what the file holds, what deployflow's file would not keep and the file it would write;
``--apply`` writes it once the router's test command passes, keeps the original beside it
and reloads. ``init`` writes a fresh file at stable 100 % where there is none. Neither
talks to Temporal: run them where the file is, on the load balancer's host — with
``--host NAME`` for a router with instances, as that host has it.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from pathlib import Path
from typing import Any

from temporalio.exceptions import ApplicationError

from activities import errors
from activities.routing.adoption import Kind, Recorded, backup_path, recorded
from activities.routing.files import parse_weights_line
from activities.routing.haproxy.plan import render_backend
from activities.routing.haproxy.router import HAProxyRouter
from activities.routing.nginx import NginxRouter, render_upstream
from activities.routing.spec import HAProxyRouterSpec, NginxRouterSpec, RouterSpec
from starters import spec_files
from starters.errors import EXIT_FAILED, EXIT_INVALID, EXIT_OK, EXIT_UNREACHABLE, UsageError
from workers.logging_setup import configure_logging
from workflows.rollouts.spec import load_rollout

# How an --apply that did not happen ends: the router refused the file (1), the spec or
# the file is wrong (2), the router could not be run or reached (3).
_APPLY_EXIT = {
    errors.ROUTER_CONFIG_REJECTED: EXIT_FAILED,
    errors.ROUTER_COMMAND_FAILED: EXIT_UNREACHABLE,
}


def run(args: argparse.Namespace) -> int:
    configure_logging(json=False, level=logging.WARNING)  # on stderr: stdout is the report
    router = on_host(spec_files.read(args.file, load_rollout).spec.router, args.host)
    spec = router.selected()
    if not isinstance(spec, NginxRouterSpec | HAProxyRouterSpec):
        raise UsageError(f"router {router.kind} keeps no file: nothing to {args.action}")
    path = Path(spec.config_path)
    content = _read(path)
    weights = parse_weights_line(content) if content is not None else None
    report: dict[str, Any] = {
        "file": str(path),
        "router": router.kind,
        "found": "missing"
        if content is None
        else "hand-written"
        if weights is None
        else "deployflow",
        "applied": False,
    }
    if weights is not None:
        split = f"stable {weights.stable} % / canary {weights.canary} %"
        return _done(args, report, f"already deployflow's ({split}): nothing to do")
    if args.action == "adopt" and content is None:
        raise UsageError(
            f"{path} does not exist: nothing to adopt; `deployflow router init {args.file}` "
            "writes a fresh one"
        )
    if args.action == "init" and content is not None:
        raise UsageError(
            f"{path} exists and was not written by deployflow: "
            f"`deployflow router adopt {args.file}` takes it over"
        )
    try:
        current = _recorded(spec, path, content)
    except ApplicationError as refused:
        return _refused(args, report, refused)
    report |= _plan(spec, path, current)
    if not args.apply:
        return _done(args, report, _preview(spec, report))
    try:
        if isinstance(spec, NginxRouterSpec):
            NginxRouter(spec).adopt()
        else:
            HAProxyRouter(spec).adopt()
    except ApplicationError as failed:
        unchanged = _read(path) == content
        report |= {"error": failed.message, "errorType": failed.type, "unchanged": unchanged}
        if args.json:
            print(json.dumps(report))
        else:
            state = "left as it was" if unchanged else "written, but"
            print(f"deployflow: {path} {state}: {failed.message} ({failed.type})", file=sys.stderr)
        return _APPLY_EXIT.get(failed.type or "", EXIT_INVALID)
    report["applied"] = True
    return _done(args, report, _applied(spec, report))


def on_host(router: RouterSpec, host: str | None) -> RouterSpec:
    """The router as load balancer ``host`` (one of its instances) has it: its own files and
    commands; the router itself when it names no instances."""
    on = {instance.name: spec for instance, spec in router.on_instances()}
    if not on and host is None:
        return router
    if not on:
        raise UsageError(f"--host {host}: the router names no instances")
    if host not in on:
        names = ", ".join(on)
        if host is None:
            raise UsageError(
                f"the router runs on several load balancers ({names}): "
                "say which this is with --host NAME"
            )
        raise UsageError(f"--host {host}: not one of the router's instances ({names})")
    return on[host]


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"router configPath {path}: {exc}") from None


def _recorded(
    spec: NginxRouterSpec | HAProxyRouterSpec, path: Path, content: str | None
) -> Recorded:
    """What the file records, a hand-written one taken over whatever it loses."""
    kind: Kind
    if isinstance(spec, NginxRouterSpec):
        kind, name = "nginx", spec.upstream
    else:
        kind, name = "haproxy", spec.backend
    return recorded(kind, path, content, name, spec.stable, spec.canary, accept_losses=True)


def _plan(
    spec: NginxRouterSpec | HAProxyRouterSpec, path: Path, current: Recorded
) -> dict[str, Any]:
    """What would be written, and what of the hand-written file it would not keep."""
    if isinstance(spec, NginxRouterSpec):
        content = render_upstream(
            spec.upstream, spec.stable, spec.canary, current.weights, current.states
        )
    else:
        content = render_backend(
            spec.backend, spec.stable, spec.canary, current.weights, current.states
        )
    plan: dict[str, Any] = {"content": content}
    if current.adoption is not None:
        plan |= {
            "servers": [s.describe() for s in current.adoption.block.servers],
            "notKept": list(current.adoption.losses),
            "backup": str(backup_path(path)),
        }
    return plan


def _test_command(spec: NginxRouterSpec | HAProxyRouterSpec) -> str | None:
    command = spec.test_command if isinstance(spec, NginxRouterSpec) else spec.check_command
    return shlex.join(command) if command else None


def _preview(spec: NginxRouterSpec | HAProxyRouterSpec, report: dict[str, Any]) -> str:
    lines = []
    if "servers" in report:
        lines += [
            f"written by hand, it lists {', '.join(report['servers'])}: the spec's stable "
            f"list {spec.stable} takes all traffic, its canary list {spec.canary} none",
            "not kept: " + ("; ".join(report["notKept"]) or "nothing"),
            f"the original would be kept as {report['backup']}",
        ]
    else:
        lines.append("does not exist")
    lines.append("deployflow would write:")
    lines += [f"    {line}" for line in report["content"].splitlines()]
    test = _test_command(spec)
    lines.append(
        f"run again with --apply to write it{f' once `{test}` passes' if test else ''}"
        + (", and reload" if _reloads(spec) else "")
    )
    return "\n".join(lines)


def _applied(spec: NginxRouterSpec | HAProxyRouterSpec, report: dict[str, Any]) -> str:
    test = _test_command(spec)
    said = f"`{test}` passed; " if test else ""
    then = "reloaded" if _reloads(spec) else "reload HAProxy to run it (no reloadCommand)"
    kept = f"; the original is kept as {report['backup']}" if "backup" in report else ""
    return f"written at stable 100 % ({said}{then}){kept}"


def _reloads(spec: NginxRouterSpec | HAProxyRouterSpec) -> bool:
    return isinstance(spec, NginxRouterSpec) or spec.reload_command is not None


def _done(args: argparse.Namespace, report: dict[str, Any], text: str) -> int:
    print(json.dumps(report) if args.json else f"{report['file']}: {text}")
    return EXIT_OK


def _refused(args: argparse.Namespace, report: dict[str, Any], refused: ApplicationError) -> int:
    if not args.json:
        raise UsageError(refused.message) from None
    print(json.dumps(report | {"error": refused.message, "errorType": refused.type}))
    return EXIT_INVALID
