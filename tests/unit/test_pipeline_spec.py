"""Pipeline specs: good ones load; bad ones name the field, including inside stage rollouts."""

from __future__ import annotations

from typing import Any

import pytest

from tests.workflows.test_pipeline import stage
from workflows.core.spec import SpecError
from workflows.promotion.spec import parse_pipeline


def doc(*stages: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "deployflow/v1",
        "kind": "Pipeline",
        "metadata": {"name": "checkout"},
        "spec": {"service": "checkout", "stages": list(stages)},
    }


def test_a_good_pipeline_builds_each_stage_rollout():
    p = parse_pipeline(doc(stage("staging"), stage("production", requiredSoakTime="1h")))
    rollout = p.stage_rollout(1, "v9")
    assert (rollout.spec.environment, rollout.spec.version) == ("production", "v9")
    assert rollout.workflow_id == "rollout-checkout-production"
    assert p.workflow_id == "pipeline-checkout"


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        ([stage("a"), stage("a")], "spec.stages[1].environment: 'a' appears twice"),
        (
            [stage("a", requiredSoakTime="1h")],
            "spec.stages[0].requiredSoakTime: the first stage has nothing upstream",
        ),
        (
            [{**stage("a"), "rollout": {**stage("a")["rollout"], "version": "v1"}}],
            "spec.stages[0].rollout: version come(s) from the pipeline",
        ),
        (
            [{**stage("a"), "rollout": {**stage("a")["rollout"], "strategy": {}}}],
            "spec.stages[0].rollout.strategy: strategy: set exactly one of",
        ),
        (
            [stage("a"), stage("b", approval={"approvers": ["alice"], "minApprovals": 2})],
            "spec.stages[1].approval: minApprovals 2 needs at least that many approvers",
        ),
        (
            [stage("a"), stage("b", approval={"approvers": ["alice"], "escalateTo": ["bob"]})],
            "spec.stages[1].approval: escalateTo needs a timeout",
        ),
        (
            [stage("a", window={"allowed": [{"days": ["Funday"]}]})],
            "spec.stages[0].window.allowed[0].days: unknown day(s) Funday",
        ),
        (
            [stage("a", window={"allowed": [{"timezone": "Mars/Olympus"}]})],
            "spec.stages[0].window.allowed[0].timezone: unknown time zone",
        ),
        (
            [stage("a", window={"allowed": [{"start": "09:00", "end": "09:00"}]})],
            "spec.stages[0].window.allowed[0]: start and end are both 09:00",
        ),
        (
            [
                stage(
                    "a",
                    window={
                        "freezes": [{"start": "2026-12-20T00:00:00", "end": "2027-01-01T00:00:00Z"}]
                    },
                )
            ],
            "spec.stages[0].window.freezes[0]: start and end need a time zone",
        ),
        (
            [stage("a", verification={"analysis": {"templates": [{"templateName": "nope"}]}})],
            "spec.stages[0].verification.analysis.templates[0].templateName: no analysisTemplate named 'nope'",
        ),
        ([], "spec.stages: List should have at least 1 item"),
    ],
)
def test_bad_pipelines_name_the_field(stages, message):
    with pytest.raises(SpecError) as refused:
        parse_pipeline(doc(*stages), source="pipeline.yaml")
    assert any(p.startswith(message) for p in refused.value.problems), refused.value.problems
