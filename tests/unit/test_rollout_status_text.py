"""`deployflow rollout status` reads the status as plain JSON (no models, for start-up time):
its text comes from the JSON a real ``RolloutStatus`` / ``RolloutResult`` serialises to, so
a renamed field fails here rather than in front of a user."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from activities.routing.base import Weights
from starters.rollouts import print_status
from workflows.analysis.run import AnalysisPhase, AnalysisRun, Measurement, MetricResult
from workflows.core.timeline import Event
from workflows.rollouts.models import (
    BatchStatus,
    PoolStatus,
    RolloutPhase,
    RolloutResult,
    RolloutStatus,
)

AT = datetime(2026, 11, 22, 10, 48, 5, 250_000, tzinfo=UTC)
URL = "http://localhost:8233/namespaces/default/workflows/rollout-checkout-production"
PARTS = {
    "weights": Weights(stable=80, canary=20),
    "pools": [PoolStatus(name="canary", role="preview", servers=["10.0.0.3:80"], version="v2")],
    "batches": [BatchStatus(index=0, hosts=["10.0.0.1", "10.0.0.2"], state="done")],
    "analysis_runs": [
        AnalysisRun(
            name="step-2",
            templates=["error-rate"],
            phase=AnalysisPhase.RUNNING,
            metrics=[
                MetricResult(
                    name="error-rate",
                    phase=AnalysisPhase.RUNNING,
                    measurements=[
                        Measurement(
                            phase=AnalysisPhase.SUCCESSFUL,
                            value=[0.001],
                            started_at=AT,
                            finished_at=AT,
                        )
                    ],
                    count=3,
                    successful=2,
                    failed=1,
                )
            ],
        )
    ],
    "events": [Event(at=AT, kind="step", message=f"step {n}") for n in range(12)],
}


def shown(current: RolloutStatus | RolloutResult) -> str:
    out = io.StringIO()
    print_status("rollout-checkout-production", current.model_dump(mode="json"), URL, out=out)
    return out.getvalue()


def test_status_of_a_running_rollout_shows_step_weights_pools_batches_and_analysis():
    status = RolloutStatus(
        service="checkout",
        environment="production",
        version="v2",
        phase=RolloutPhase.PAUSED,
        message="pause step: waiting until promoted",
        current_step=1,
        step_count=4,
        step="pause",
        **PARTS,
    )
    text = shown(status)
    assert text.startswith(
        "rollout-checkout-production: Paused — pause step: waiting until promoted\n"
        "  step      1: pause (of 4)\n"
        "  version   v2\n"
        "  weights   stable 80 % / canary 20 %\n"
        "  pool      canary: preview (v2) — 10.0.0.3:80\n"
        "  batch 1   done       10.0.0.1, 10.0.0.2\n"
        "  analysis  step-2: Running\n"
        "            error-rate: Running (3 measured, 2 ok, 1 failed, 0 inconclusive, 0 errors)\n"
        f"  ui        {URL}\n"
    )
    assert text.count(" step         step ") == 10  # the last ten events
    assert text.endswith("  2026-11-22 10:48:05 step         step 11\n")


def test_status_of_a_finished_rollout_shows_its_outcome():
    result = RolloutResult(
        outcome=RolloutPhase.ROLLED_BACK,
        reason="analysis step-2 Failed",
        service="checkout",
        environment="production",
        version="v2",
        **PARTS,
    )
    text = shown(result)
    assert text.startswith(
        "rollout-checkout-production: RolledBack — analysis step-2 Failed\n  version   v2\n"
    )
    assert "  weights   stable 80 % / canary 20 %\n" in text


def test_a_rollout_that_has_not_set_weights_yet_shows_no_weights():
    status = RolloutStatus(service="checkout", environment="production", version="v2")
    text = shown(status)
    assert "weights" not in text
    assert "  step      - (of 0)\n" in text
