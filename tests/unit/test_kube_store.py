"""The double's store under random sequences of writes: what watchers and optimistic
concurrency rely on (https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from activities.kubernetes.testing import ApiError, Store
from activities.kubernetes.testing.resources import CONFIG_MAPS, DEPLOYMENTS

names = st.sampled_from(["a", "b", "c"])
operations = st.lists(
    st.one_of(
        st.tuples(st.just("create"), names, st.integers(1, 3)),
        st.tuples(st.just("scale"), names, st.integers(1, 3)),
        st.tuples(st.just("annotate"), names, st.sampled_from(["x", "y"])),
        st.tuples(st.just("delete"), names, st.none()),
        st.tuples(st.just("data"), names, st.sampled_from(["1", "2"])),
    ),
    max_size=25,
)


def deployment(name: str, replicas: int) -> dict:
    labels = {"app": name}
    return {
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "i:1"}]},
            },
        },
    }


def run(store: Store, operation: tuple) -> int | None:
    """Apply one operation; the API error code it met (404 missing, 409 taken), if any."""
    verb, name, value = operation
    try:
        if verb == "create":
            store.create(DEPLOYMENTS, "ns", deployment(name, value))
            store.create(CONFIG_MAPS, "ns", {"metadata": {"name": name}})
        elif verb == "scale":
            store.patch(
                DEPLOYMENTS,
                "ns",
                name,
                {"spec": {"replicas": value}},
                "application/merge-patch+json",
            )
        elif verb == "annotate":
            store.patch(
                DEPLOYMENTS,
                "ns",
                name,
                {"metadata": {"annotations": {"k": value}}},
                "application/strategic-merge-patch+json",
            )
        elif verb == "data":
            store.patch(
                CONFIG_MAPS, "ns", name, {"data": {"k": value}}, "application/merge-patch+json"
            )
        else:
            store.delete(DEPLOYMENTS, "ns", name)
    except ApiError as exc:
        return exc.code
    return None


@settings(max_examples=60)
@given(operations)
def test_replaying_the_event_log_rebuilds_the_store(ops):
    store = Store()
    assert {run(store, op) for op in ops} <= {None, 404, 409}
    replayed: dict[tuple[str, str], dict] = {}
    for event in store.events_after(0):
        key = (event.kind.plural, event.obj["metadata"]["name"])
        if event.type == "DELETED":
            del replayed[key]
        else:
            replayed[key] = event.obj
    for kind in (DEPLOYMENTS, CONFIG_MAPS):
        items, _ = store.objects(kind, "ns")
        assert {i["metadata"]["name"]: i for i in items} == {
            name: obj for (plural, name), obj in replayed.items() if plural == kind.plural
        }


@settings(max_examples=60)
@given(operations)
def test_resource_versions_strictly_grow_and_generation_counts_spec_changes(ops):
    store = Store()
    for op in ops:
        run(store, op)
    events = store.events_after(0)
    versions = [e.resource_version for e in events]
    assert versions == sorted(set(versions))
    assert all(int(e.obj["metadata"]["resourceVersion"]) == e.resource_version for e in events)
    for event in events:
        if event.kind is DEPLOYMENTS and event.type == "MODIFIED":
            assert event.old is not None
            spec_changed = event.obj["spec"] != event.old["spec"]
            bump = event.obj["metadata"]["generation"] - event.old["metadata"]["generation"]
            assert bump == (1 if spec_changed else 0)


def test_a_stale_resource_version_is_refused_and_a_compacted_one_is_gone():
    store = Store()
    first = store.create(CONFIG_MAPS, "ns", {"metadata": {"name": "a"}})
    store.patch(CONFIG_MAPS, "ns", "a", {"data": {"k": "1"}}, "application/merge-patch+json")
    with pytest.raises(ApiError) as caught:
        store.replace(CONFIG_MAPS, "ns", "a", first)
    assert caught.value.code == 409
    store.compact()
    with pytest.raises(ApiError) as gone:
        store.events_after(int(first["metadata"]["resourceVersion"]))
    assert gone.value.code == 410
    assert store.events_after(store.resource_version) == []
