"""One probe of each kind against ``host:port``, bounded by a timeout.

A probe never raises for an unhealthy target: refusals, timeouts, bad statuses and failing
commands come back as a failed ``ProbeOutcome`` whose message says what happened
(``connection refused``, ``HTTP 503 (expected 200)``, ``exit 2: <stderr tail>``,
``NOT_SERVING``). Only a malformed target raises (``ValueError``), since no probe can help.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from contextlib import suppress
from urllib.parse import urlsplit

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from activities.health._http import EXCHANGE_ERRORS, describe_error, exchange, timed_out
from activities.health.spec import ExecCheck, GrpcCheck, HealthCheck, HttpCheck, TcpCheck
from activities.health.thresholds import ProbeOutcome

OUTPUT_TAIL_LINES = 3
OUTPUT_TAIL_CHARS = 300


def split_target(target: str) -> tuple[str, int | None]:
    """``"10.0.0.5:8080"`` → ``("10.0.0.5", 8080)``; ``"[::1]:80"`` and a bare host work too."""
    parts = urlsplit(f"//{target.strip()}")
    try:
        port = parts.port
    except ValueError as e:
        raise ValueError(f"target {target!r}: {e}") from e
    extra = parts.path or parts.query or parts.fragment or parts.username or parts.password
    if not parts.hostname or extra or port == 0:
        raise ValueError(f"target must be host:port, got {target!r}")
    return parts.hostname, port


def address_for(check: HealthCheck, target: str) -> tuple[str, int]:
    """Where ``check`` probes: the target's host, and the check's port or else the target's."""
    host, target_port = split_target(target)
    spec = getattr(check, check.kind)
    port = getattr(spec, "port", None) or target_port
    if port is None:
        raise ValueError(f"target {target!r} has no port and the {check.kind} check sets none")
    return host, port


def probe(check: HealthCheck, host: str, port: int) -> ProbeOutcome:
    """Run ``check``'s probe once against ``host:port`` (see ``address_for``)."""
    timeout = check.timeout_seconds
    if check.http is not None:
        return probe_http(check.http, host, port, timeout)
    if check.tcp is not None:
        return probe_tcp(check.tcp, host, port, timeout)
    if check.exec is not None:
        return probe_exec(check.exec, host, port, timeout)
    if check.grpc is not None:
        return probe_grpc(check.grpc, host, port, timeout)
    raise AssertionError(f"HealthCheck validator let through {check!r}")  # unreachable


def probe_http(spec: HttpCheck, host: str, port: int, timeout: float) -> ProbeOutcome:
    """``GET {path}``; success is exactly ``expectedStatus``."""
    try:
        answer = exchange(
            scheme=spec.scheme,
            host=host,
            port=port,
            method="GET",
            path=spec.path,
            timeout=timeout,
            verify_tls=False,
        )
    except EXCHANGE_ERRORS as e:
        return ProbeOutcome(False, describe_error(e, timeout))
    if answer.status != spec.expected_status:
        return ProbeOutcome(False, f"HTTP {answer.status} (expected {spec.expected_status})")
    return ProbeOutcome(True, f"HTTP {answer.status}")


def probe_tcp(spec: TcpCheck, host: str, port: int, timeout: float) -> ProbeOutcome:
    """Open a TCP connection and close it again."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as e:
        return ProbeOutcome(False, describe_error(e, timeout))
    return ProbeOutcome(True, "connected")


def probe_exec(spec: ExecCheck, host: str, port: int, timeout: float) -> ProbeOutcome:
    """Run the command on the worker; exit 0 is success. On timeout the command's whole
    process group is killed, so a shell's children do not outlive the probe."""
    argv = spec.render(host, port)
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except FileNotFoundError:
        return ProbeOutcome(False, f"command not found: {argv[0]}")
    except OSError as e:  # not executable, bad interpreter, ...
        return ProbeOutcome(False, f"cannot run {argv[0]}: {e.strerror or e}")
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except BaseException as e:  # a timeout, or the activity's cancellation
        _kill_group(proc)
        if isinstance(e, subprocess.TimeoutExpired):
            return ProbeOutcome(False, timed_out(timeout))
        raise
    if proc.returncode == 0:
        return ProbeOutcome(True, "exit 0")
    status = (
        f"killed by {signal.Signals(-proc.returncode).name}"
        if proc.returncode < 0
        else f"exit {proc.returncode}"
    )
    tail = output_tail(stderr) or output_tail(stdout)
    return ProbeOutcome(False, f"{status}: {tail}" if tail else status)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()


def output_tail(output: bytes) -> str:
    """The last few non-empty lines of a command's output, on one line."""
    lines = [line.strip() for line in output.decode(errors="replace").splitlines()]
    tail = " | ".join([line for line in lines if line][-OUTPUT_TAIL_LINES:])
    return tail if len(tail) <= OUTPUT_TAIL_CHARS else "…" + tail[-OUTPUT_TAIL_CHARS:]


def probe_grpc(spec: GrpcCheck, host: str, port: int, timeout: float) -> ProbeOutcome:
    """``grpc.health.v1.Health/Check``; success is SERVING."""
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    # Probe the target itself, as the kubelet does, even when the worker has a proxy set.
    with grpc.insecure_channel(address, options=[("grpc.enable_http_proxy", 0)]) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service=spec.service)
        try:
            response = stub.Check(request, timeout=timeout)
        except grpc.RpcError as e:
            return ProbeOutcome(False, _describe_rpc_error(e, spec.service, timeout))
    status: str = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    return ProbeOutcome(status == "SERVING", status)


def _describe_rpc_error(error: grpc.RpcError, service: str, timeout: float) -> str:
    code = error.code() if isinstance(error, grpc.Call) else None
    details = str(error.details()) if isinstance(error, grpc.Call) else str(error)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return timed_out(timeout)
    if code == grpc.StatusCode.UNAVAILABLE and "connection refused" in details.lower():
        return "connection refused"
    if code == grpc.StatusCode.NOT_FOUND:
        return f"service {service!r} unknown (NOT_FOUND)"
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return "no grpc.health.v1.Health service (UNIMPLEMENTED)"
    name = code.name if code is not None else "RPC error"
    return f"{name}: {details}"
