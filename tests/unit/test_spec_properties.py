"""Spec loaders never crash: any mutated spec either loads or is a SpecError naming a field.

Each kind (Rollout with its AnalysisTemplate documents, Pipeline, Runbook, ServiceMonitor)
starts from the example specs and the unit tests' builders; hypothesis mutates them (a
node replaced by a value of another type, a huge duration, a very long string; keys
deleted, renamed or added; documents duplicated or dropped) and feeds them to the same
text loaders the CLI uses. Broken YAML and random bytes go through them too.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from temporalio.contrib.pydantic import pydantic_data_converter

from tests.unit.test_argo_manifests import STEP_TEMPLATES
from tests.unit.test_argo_manifests import documents as argo_documents
from tests.unit.test_monitor_spec import HEALING, monitor_doc, runbook_doc
from tests.unit.test_spec import GOOD as GOOD_ROLLOUT
from tests.workflows.test_pipeline import stage
from workflows.core.spec import SpecError
from workflows.incidents.spec import load_runbooks, parse_runbooks
from workflows.monitors.spec import load_monitor, parse_monitor
from workflows.promotion.spec import load_pipeline, parse_pipeline
from workflows.rollouts.spec import load_rollout, parse_rollout

CONVERTER = pydantic_data_converter.payload_converter
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# A problem starts with the path of what is wrong: `spec.stages[0].rollout.router: ...`,
# `document 2: metadata.labels["a b"]: ...`, `(top level): ...`, `(yaml): ...` for text
# that is not YAML; or it is about a document's kind (`document 2: kind must be ...`).
_QUOTED = r'\["(?:[^"\\]|\\.)*"\]'
_STEP = rf"(?:\.[A-Za-z_][\w-]*|\[\d+\]|{_QUOTED})"
_PATH = rf"(?:[A-Za-z_][\w-]*|\[\d+\]|{_QUOTED}){_STEP}*(?: \(key\))?"
NAMES_A_FIELD = re.compile(
    rf"^(?:document \d+: )?(?:(?:\(top level\)|\(yaml\)|{_PATH}): |kind must be )"
)
HOSTILE_STRINGS = [
    "99999999999999999999s",
    "1e308s",
    "1e308",
    "9" * 400 + "h",
    "9" * 5000,
    "-1s",
    "0s",
    "0.0001ms",
    "x" * 5000,
    "Europe/" + "A" * 5000,
    "Europe",
    "../../etc/passwd",
    "/etc/passwd",
    "zone.tab",
    "Etc/../../../etc/hostname",
    "UTC\x00",
    "é☃𝄞\u202e",
    "٠٩:٣٠",
    "24:00",
    "99999999999999999999:00",
    "{{nope}}",
    "result <",
    "(" * 2000 + "result" + ")" * 2000,
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+23:59",
    "100%",
    "-25%",
    "99999999999999999999%",
    "127.0.0.1:99999999999999999999",
    "[::1]:0",
    "9" * 400 + "Ti",
    "",
    " ",
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.integers(min_value=10**18, max_value=10**40),
    st.integers(max_value=-(10**18)),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(HOSTILE_STRINGS),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
ROUTER_PATHS = ("configPath", "socket")
Path_ = tuple[int | str, ...]


@dataclass(frozen=True)
class Kind:
    name: str
    load: Callable[[str, str], object]  # the file's text, as the CLI reads it
    parse: Callable[[list[Any], str], object]  # the file's documents
    seeds: list[list[Any]]  # each seed: the documents of one valid file


def _documents(text: str) -> list[Any]:
    return [d for d in yaml.safe_load_all(text) if d is not None]


def _absolute_paths(node: Any) -> Any:
    """Router paths made absolute, as the demo renders the committed (relative) examples."""
    if isinstance(node, list):
        return [_absolute_paths(v) for v in node]
    if not isinstance(node, dict):
        return node
    return {
        k: f"/srv/deployflow/{v}" if k in ROUTER_PATHS else _absolute_paths(v)
        for k, v in node.items()
    }


def _example_seeds(kind: str) -> list[list[Any]]:
    files = sorted(EXAMPLES.rglob("*.yaml"))
    seeds = [_absolute_paths(_documents(f.read_text())) for f in files]
    return [docs for docs in seeds if docs and docs[0].get("kind") == kind]


def _templates_as_documents(rollout: dict[str, Any], api_version: str) -> list[Any]:
    """The same rollout with its analysisTemplates as separate AnalysisTemplate documents."""
    body = copy.deepcopy(rollout)
    templates = body["spec"].pop("analysisTemplates")
    return [
        body,
        *(
            {
                "apiVersion": api_version,
                "kind": "AnalysisTemplate",
                "metadata": {"name": t.pop("name")},
                "spec": t,
            }
            for t in copy.deepcopy(templates)
        ),
    ]


def _pipeline(*stages: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "deployflow/v1",
        "kind": "Pipeline",
        "metadata": {"name": "checkout"},
        "spec": {"service": "checkout", "version": "v1", "stages": list(stages)},
    }


ROLLOUT_DOC = _documents(GOOD_ROLLOUT)[0]
ARGO_ROLLOUTS = ("canary-steps", "nginx-rollout", "istio-rollout")
GATED_STAGE = stage(
    "production",
    requiredSoakTime="1h",
    window={
        "allowed": [{"days": ["Mon", "Tue"], "start": "09:00", "end": "16:00",
                     "timezone": "Europe/Berlin"}],
        "freezes": [{"start": "2026-12-20T00:00:00Z", "end": "2027-01-02T00:00:00+01:00",
                     "reason": "holidays"}],
    },
    approval={"approvers": ["alice", "bob"], "minApprovals": 1, "timeout": "4h",
              "reminderAfter": "1h", "escalateTo": ["carol"]},
    verification={"analysis": {"templates": [{"templateName": "error-rate"}]}},
)  # fmt: skip
PROMETHEUS = {"prometheus": {"address": "http://127.0.0.1:9090", "query": "up", "timeout": 5}}
EVERY_STEP = runbook_doc(
    "every-step",
    slack={"channel": "#incidents"},
    resolveQuietPeriod="1m",
    target={"servers": ["127.0.0.1:1"], "platform": HEALING["platform"]},
    steps=[
        {"page": {"severity": "critical", "summary": "{{alertname}} on {{labels.pod}}"}},
        {"notify": {"text": "{{service}}: {{summary}}"}},
        {"query": {"name": "errors", "provider": PROMETHEUS}},
        {"wait": {"duration": "30s"}},
        {"wait": {"metric": {"provider": PROMETHEUS, "successCondition": "result < 1",
                             "interval": "10s"}, "timeout": "5m"}},
        {"approve": {"timeout": "15m", "approvers": ["alice"]}},
        {"restart": {"servers": ["127.0.0.1:2"]}},
        {"rollback": {"to": "v1", "reason": "bad"}},
        {"wait": {"until": "alertResolved", "timeout": "10m"}},
    ],
)  # fmt: skip
KINDS = [
    Kind(
        "Rollout",
        load_rollout,
        parse_rollout,
        [
            *_example_seeds("Rollout"),
            [ROLLOUT_DOC],
            _templates_as_documents(ROLLOUT_DOC, "deployflow/v1"),
            _templates_as_documents(ROLLOUT_DOC, "argoproj.io/v1alpha1"),
        ],
    ),
    Kind(
        "ArgoRollout",
        load_rollout,
        parse_rollout,
        [
            *(argo_documents(f"{name}.yaml") for name in ARGO_ROLLOUTS),
            argo_documents("analysis-step.yaml") + _documents(STEP_TEMPLATES),
            # One file with the Rollout, then its Services.
            argo_documents("nginx-rollout.yaml") + argo_documents("nginx-services.yaml"),
            argo_documents("bluegreen.yaml"),
        ],
    ),
    Kind(
        "Pipeline",
        load_pipeline,
        lambda documents, source: parse_pipeline(documents[0], source),
        [
            *_example_seeds("Pipeline"),
            [_pipeline(stage("staging"), GATED_STAGE)],
        ],
    ),
    Kind("Runbook", load_runbooks, parse_runbooks, [*_example_seeds("Runbook"), [EVERY_STEP, runbook_doc()]]),
    Kind(
        "ServiceMonitor",
        load_monitor,
        parse_monitor,
        [
            *_example_seeds("ServiceMonitor"),
            [monitor_doc(selfHealing=HEALING, incident={"runbook": "checkout-unhealthy"}),
             runbook_doc()],
        ],
    ),
]  # fmt: skip


def node_paths(node: Any, path: Path_ = ()) -> list[Path_]:
    """Every path into ``node`` (the root included), depth first."""
    found = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            found += node_paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += node_paths(value, (*path, index))
    return found


def _parent(documents: list[Any], path: Path_) -> Any:
    node: Any = documents
    for part in path[:-1]:
        node = node[part]
    return node


def mutate(data: st.DataObject, documents: list[Any]) -> None:
    """One mutation of ``documents`` in place; a path's first part is the document index."""
    paths = [p for p in node_paths(documents) if p]
    if not paths:
        documents.append(data.draw(VALUES, label="document"))
        return
    path = data.draw(st.sampled_from(paths), label="path")
    parent, last = _parent(documents, path), path[-1]
    how = data.draw(
        st.sampled_from(["replace", "delete", "add-key", "rename-key", "duplicate-doc"]),
        label="mutation",
    )
    if how == "replace":
        parent[last] = data.draw(VALUES, label="value")
    elif how == "delete":
        del parent[last]
    elif how == "add-key" and isinstance(parent[last], dict):
        parent[last][data.draw(st.text(max_size=12), label="key")] = data.draw(VALUES)
    elif how == "rename-key" and isinstance(parent, dict):
        new = data.draw(st.text(max_size=12) | st.sampled_from(list(parent)), label="new key")
        parent[new] = parent.pop(last)
    elif how == "duplicate-doc":
        documents.append(copy.deepcopy(documents[path[0]]))


def assert_loads_or_names_a_field(load: Callable[[Any, str], object], spec: Any) -> None:
    """``load(spec, source)`` is a SpecError naming fields, or a spec a workflow can take."""
    problems: list[str] | None = None
    try:
        loaded = load(spec, "fuzz.yaml")
    except SpecError as exc:
        problems = exc.problems
    if problems is not None:
        assert problems, "a SpecError lists its problems"
        unnamed = [p for p in problems if not NAMES_A_FIELD.match(p)]
        assert not unnamed, f"problems that name no field: {unnamed}"
        return
    # What loads must reach the worker intact: the CLI hands it to Temporal as JSON, where
    # an infinite float would become null.
    for model in loaded if isinstance(loaded, list) else [loaded]:
        assert isinstance(model, BaseModel)
        payloads = CONVERTER.to_payloads([model])
        assert CONVERTER.from_payloads(payloads, [type(model)]) == [model]


# About 200 examples per test keep the whole module near 20 s on a shared 2-core machine.
FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_every_seed_is_a_valid_spec(kind: Kind):
    for documents in kind.seeds:
        kind.load(yaml.safe_dump_all(documents), "seed.yaml")


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
@FUZZ
@given(data=st.data())
def test_a_mutated_spec_loads_or_names_the_bad_field(kind: Kind, data: st.DataObject):
    documents = copy.deepcopy(data.draw(st.sampled_from(kind.seeds), label="seed"))
    for _ in range(data.draw(st.integers(min_value=1, max_value=3), label="mutations")):
        mutate(data, documents)
    assert_loads_or_names_a_field(kind.load, yaml.safe_dump_all(documents, allow_unicode=True))


BROKEN_YAML = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=200).map(lambda b: b.decode("utf-8", "replace")),
    st.sampled_from(
        [
            # Deeper than PyYAML's recursion can go (longer runs of "[" take seconds to scan).
            "[" * 600,
            "{a: " * 600,
            "- " * 600,
            # Deep, but YAML: the loaders' own code and pydantic see it.
            *(
                f"kind: {k}\nspec: {'[' * 300}{']' * 300}"
                for k in ("Rollout", "Pipeline", "Runbook", "ServiceMonitor", "AnalysisTemplate")
            ),
            "kind: Rollout\n---\nkind: AnalysisTemplate\nmetadata: " + "[" * 300 + "]" * 300,
            "&a [*a]",
            "a: &x [*x, *x]\nb: *x",
            "!!python/object:os.system ls",
            "key: !!binary AAAA",
            "\t- tab",
            "a: b: c",
            "--- !Rollout\n",
            "%YAML 9.9\n---\na: 1",
            "\x00\x01",
            # Values PyYAML's constructors fail to build (ValueError, AttributeError).
            "a: 2026-13-01",
            "a: 2026-02-30 10:00:00",
            "a: !!int x",
            "a: !!float x",
            "a: !!timestamp x",
            "a: " + "9" * 5000,
            "a: 0x" + "f" * 5000,
            "? [a]\n: b",
            "a: !!set {b}",
        ]
    ),
)


@FUZZ
@given(text=BROKEN_YAML)
def test_broken_yaml_is_a_spec_error_for_every_kind(text: str):
    for kind in KINDS:
        assert_loads_or_names_a_field(kind.load, text)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
@settings(FUZZ, max_examples=100)
@given(data=st.data())
def test_a_spliced_spec_text_loads_or_names_the_bad_field(kind: Kind, data: st.DataObject):
    """Valid text cut and spliced at random: half a document, a line repeated or lost."""
    documents = data.draw(st.sampled_from(kind.seeds), label="seed")
    lines = yaml.safe_dump_all(documents).splitlines()
    start = data.draw(st.integers(0, len(lines)), label="cut at")
    end = data.draw(st.integers(start, len(lines)), label="resume at")
    insert = data.draw(st.lists(st.sampled_from(lines) | st.text(max_size=30), max_size=3))
    text = "\n".join([*lines[:start], *insert, *lines[end:]])
    assert_loads_or_names_a_field(kind.load, text)


SWEPT_VALUES = [None, True, 0, -1, 10**20, 1e308, float("inf"), float("nan"), [], {}, ["x"],
                {"x": 1}, *HOSTILE_STRINGS]  # fmt: skip


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_every_node_of_every_seed_replaced_by_each_hostile_value(kind: Kind):
    """Exhaustive where the random search is thin: each node, each hostile value. A path
    swept in one seed is not swept again in the next (the examples share most fields)."""
    swept: set[Path_] = set()
    for seed in kind.seeds:
        documents = copy.deepcopy(seed)
        for path in node_paths(documents)[1:]:
            if path in swept:
                continue
            swept.add(path)
            parent = _parent(documents, path)
            original = parent[path[-1]]
            for value in SWEPT_VALUES:
                parent[path[-1]] = copy.deepcopy(value)
                try:
                    assert_loads_or_names_a_field(kind.parse, documents)
                except Exception as exc:
                    raise AssertionError(f"{path} = {value!r:.60}: {exc!r:.300}") from exc
            parent[path[-1]] = original
