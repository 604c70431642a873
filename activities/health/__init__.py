"""Health checks (HTTP, TCP, exec, gRPC probes with Kubernetes thresholds) and smoke tests.

This package exports the spec vocabulary only, which is pure pydantic and safe to import
from workflow code. The activities and their input/report models are in
``activities.health.activities`` (``check_health``, ``run_smoke_tests``); the probes in
``activities.health.probes``.
"""

from __future__ import annotations

from activities.health.spec import (
    ExecCheck,
    GrpcCheck,
    HealthCheck,
    HttpCheck,
    SmokeTest,
    TcpCheck,
)

__all__ = ["ExecCheck", "GrpcCheck", "HealthCheck", "HttpCheck", "SmokeTest", "TcpCheck"]
