"""The double's patch implementations and selector parser, by example and by property.

RFC 7386 (JSON merge patch), RFC 6902 (JSON patch) and the strategic merge patch rules
(https://github.com/kubernetes/community/blob/master/contributors/devel/sig-api-machinery/strategic-merge-patch.md).
"""

from __future__ import annotations

import jsonpatch
import pytest
from hypothesis import given
from hypothesis import strategies as st

from activities.kubernetes.testing.patches import (
    PatchError,
    json_merge_patch,
    json_patch,
    strategic_merge_patch,
    table_merge_keys,
)
from activities.kubernetes.testing.selectors import SelectorError, field_selector, label_selector

KEYS = table_merge_keys(
    {("containers",): "name", ("env",): "name", ("containers", "ports"): "containerPort"}
)
NO_KEYS = table_merge_keys({})

scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.text("ab", max_size=2)
names = st.sampled_from(["a", "b", "c", "d"])
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names, inner, max_size=3),
    max_leaves=12,
)
objects = st.dictionaries(names, json_values, max_size=4)


def without_nulls(value):
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    return value


# -- RFC 7386 ----------------------------------------------------------------------------


def test_merge_patch_examples_from_rfc_7386_appendix_a():
    cases = [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ]
    for target, patch, result in cases:
        assert json_merge_patch(target, patch) == result


@given(objects, objects)
def test_merge_patch_is_idempotent(target, patch):
    once = json_merge_patch(target, patch)
    assert json_merge_patch(once, patch) == once


@given(objects)
def test_an_empty_merge_patch_changes_nothing(target):
    assert json_merge_patch(target, {}) == target


@given(objects, objects)
def test_a_null_free_merge_patch_puts_its_scalars_and_lists_in_place(target, patch):
    patch = without_nulls(patch)
    result = json_merge_patch(target, patch)
    for key, value in patch.items():
        if not isinstance(value, dict):
            assert result[key] == value


# -- RFC 6902 ----------------------------------------------------------------------------


@given(objects, objects)
def test_json_patch_from_a_diff_applies_and_its_inverse_undoes_it(before, after):
    forward = jsonpatch.make_patch(before, after).patch
    assert json_patch(before, forward) == after
    assert json_patch(after, jsonpatch.make_patch(after, before).patch) == before


def test_a_failed_json_patch_test_is_a_patch_error_and_the_target_is_untouched():
    target = {"spec": {"replicas": 3}}
    with pytest.raises(PatchError, match="testing value failed"):
        json_patch(
            target,
            [
                {"op": "test", "path": "/spec/replicas", "value": 2},
                {"op": "replace", "path": "/spec/replicas", "value": 9},
            ],
        )
    assert target == {"spec": {"replicas": 3}}


@pytest.mark.parametrize(
    "operations",
    [
        [{"op": "replace", "path": "/missing/deep", "value": 1}],
        [{"op": "remove", "path": "/spec/nope"}],
        [{"op": "bogus", "path": "/spec"}],
        {"op": "replace"},
    ],
)
def test_json_patches_that_do_not_apply_are_patch_errors(operations):
    with pytest.raises(PatchError):
        json_patch({"spec": {}}, operations)


# -- strategic merge patch ---------------------------------------------------------------


@given(objects, objects)
def test_strategic_merge_without_merge_keys_is_a_json_merge_patch(target, patch):
    assert strategic_merge_patch(target, patch, NO_KEYS) == json_merge_patch(target, patch)


containers = st.lists(
    st.fixed_dictionaries({"name": names, "image": st.sampled_from(["x:1", "x:2", "y:1"])}),
    max_size=4,
    unique_by=lambda c: c["name"],
)


@given(containers, containers)
def test_strategic_merge_keeps_containers_the_patch_does_not_name(current, patch):
    result = strategic_merge_patch({"containers": current}, {"containers": patch}, KEYS)[
        "containers"
    ]
    by_name = {c["name"]: c for c in result}
    assert len(by_name) == len(result)  # merge keys stay unique
    for container in current:
        assert container["name"] in by_name  # e.g. a sidecar survives an image patch
    for container in patch:
        assert by_name[container["name"]]["image"] == container["image"]
    assert [c["name"] for c in result][: len(current)] == [c["name"] for c in current]


@given(containers, containers)
def test_strategic_merge_is_idempotent(current, patch):
    once = strategic_merge_patch({"containers": current}, {"containers": patch}, KEYS)
    assert strategic_merge_patch(once, {"containers": patch}, KEYS) == once


def test_strategic_merge_directives():
    pod = {
        "containers": [
            {"name": "app", "image": "a:1", "ports": [{"containerPort": 80}]},
            {"name": "side", "image": "s:1"},
        ]
    }
    assert strategic_merge_patch(
        pod, {"containers": [{"name": "side", "$patch": "delete"}]}, KEYS
    ) == {"containers": [pod["containers"][0]]}
    replaced = strategic_merge_patch(
        pod, {"containers": [{"$patch": "replace"}, {"name": "new"}]}, KEYS
    )
    assert replaced == {"containers": [{"name": "new"}]}
    ordered = strategic_merge_patch(
        pod,
        {
            "$setElementOrder/containers": [{"name": "side"}, {"name": "app"}],
            "containers": [{"name": "app", "image": "a:2"}],
        },
        KEYS,
    )
    assert [(c["name"], c["image"]) for c in ordered["containers"]] == [
        ("side", "s:1"),
        ("app", "a:2"),
    ]
    ports = strategic_merge_patch(
        pod, {"containers": [{"name": "app", "ports": [{"containerPort": 81}]}]}, KEYS
    )
    assert [p["containerPort"] for p in ports["containers"][0]["ports"]] == [80, 81]
    assert strategic_merge_patch(
        {"a": {"b": 1, "c": 2}}, {"a": {"$patch": "replace", "d": 3}}, KEYS
    ) == {"a": {"d": 3}}
    with pytest.raises(PatchError, match="merge key"):
        strategic_merge_patch(pod, {"containers": [{"image": "no-name"}]}, KEYS)


# -- selectors ---------------------------------------------------------------------------

label_sets = st.dictionaries(
    st.sampled_from(["app", "track", "tier"]), st.sampled_from(["web", "db", "x"]), max_size=3
)
requirements = st.tuples(
    st.sampled_from(["app", "track", "tier"]),
    st.sampled_from(["=", "==", "!=", "in", "notin", "exists", "!exists"]),
    st.lists(st.sampled_from(["web", "db", "x"]), min_size=1, max_size=2, unique=True),
)


def render(requirement):
    key, op, values = requirement
    if op in ("in", "notin"):
        return f"{key} {op} ({','.join(values)})"
    return {"exists": key, "!exists": f"!{key}"}.get(op, f"{key}{op}{values[0]}")


def holds(requirement, labels):
    key, op, values = requirement
    return {
        "=": lambda: labels.get(key) == values[0],
        "==": lambda: labels.get(key) == values[0],
        "!=": lambda: labels.get(key) != values[0],  # also true without the key
        "in": lambda: labels.get(key) in values,
        "notin": lambda: labels.get(key) not in values,
        "exists": lambda: key in labels,
        "!exists": lambda: key not in labels,
    }[op]()


@given(st.lists(requirements, max_size=3), label_sets)
def test_a_label_selector_is_the_conjunction_of_its_requirements(reqs, labels):
    selector = label_selector(", ".join(render(r) for r in reqs))
    assert selector({"metadata": {"labels": labels}}) == all(holds(r, labels) for r in reqs)


@pytest.mark.parametrize("text", ["app in web", "app=", "=web", "app notin", "a b"])
def test_malformed_label_selectors_are_refused(text):
    if text == "app=":
        assert label_selector(text)({"metadata": {"labels": {"app": ""}}})  # empty value is valid
        return
    with pytest.raises(SelectorError):
        label_selector(text)


def test_field_selectors_refuse_fields_the_kind_does_not_index():
    assert field_selector("metadata.name=a")({"metadata": {"name": "a"}})
    assert not field_selector("metadata.name!=a")({"metadata": {"name": "a"}})
    with pytest.raises(SelectorError, match=r'field label not supported: "spec\.replicas"'):
        field_selector("spec.replicas=1")
