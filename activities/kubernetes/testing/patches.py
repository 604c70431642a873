"""The three PATCH flavours of the Kubernetes API server, as pure functions over JSON values.

- JSON merge patch (RFC 7386, ``application/merge-patch+json``): maps merge, ``null``
  deletes, anything else (lists included) replaces.
- Strategic merge patch (``application/strategic-merge-patch+json``): a merge patch where
  lists that the API schema marks with a ``patchMergeKey`` merge element by element
  (containers by ``name``, container ports by ``containerPort``...), plus the ``$patch``,
  ``$setElementOrder/<list>`` and ``$deleteFromPrimitiveList/<list>`` directives
  (https://github.com/kubernetes/community/blob/master/contributors/devel/sig-api-machinery/strategic-merge-patch.md).
- JSON patch (RFC 6902, ``application/json-patch+json``): the ``jsonpatch`` library.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import jsonpatch
import jsonpointer

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"

# A list's merge key given the path of field names leading to it (list indexes left out),
# or None when the list is replaced whole (atomic lists, the default).
MergeKeys = Callable[[tuple[str, ...]], str | None]


class PatchError(ValueError):
    """A patch that does not apply (the API server answers 422 Invalid)."""


def json_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 section 2, MergePatch(Target, Patch): a new value, inputs untouched."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = json_merge_patch(result.get(key), value)
    return result


def json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902: apply ``operations``; a failed ``test`` or a bad path is a PatchError."""
    if not isinstance(operations, list):
        raise PatchError("a JSON patch is a list of operations")
    try:
        return jsonpatch.apply_patch(target, operations)
    except jsonpatch.JsonPatchTestFailed as exc:
        raise PatchError(f"testing value failed: {exc}") from exc
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
        raise PatchError(str(exc)) from exc
    except (KeyError, IndexError, TypeError) as exc:
        raise PatchError(f"invalid JSON patch: {exc}") from exc


def strategic_merge_patch(target: Any, patch: Any, merge_keys: MergeKeys) -> Any:
    """A strategic merge patch of ``target``: a new value, inputs untouched."""
    return _merge_map(target if isinstance(target, dict) else {}, patch, (), merge_keys)


def _merge_map(
    target: dict[str, Any], patch: Any, path: tuple[str, ...], merge_keys: MergeKeys
) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    if directive not in (None, "merge"):
        raise PatchError(f"unknown patch directive {directive!r} at {'.'.join(path) or '<root>'}")
    result = copy.deepcopy(target)
    orders: dict[str, list[Any]] = {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys"):
            continue
        if key.startswith("$setElementOrder/"):
            orders[key.removeprefix("$setElementOrder/")] = list(value or [])
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.removeprefix("$deleteFromPrimitiveList/")
            result[field] = [v for v in result.get(field) or [] if v not in (value or [])]
            continue
        if value is None:
            result.pop(key, None)
            continue
        current = result.get(key)
        if isinstance(value, dict):
            merged = _merge_map(
                current if isinstance(current, dict) else {}, value, (*path, key), merge_keys
            )
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _merge_list(current, value, (*path, key), merge_keys)
        else:
            result[key] = copy.deepcopy(value)
    for field, order in orders.items():
        key_name = merge_keys((*path, field))
        if key_name is not None and isinstance(result.get(field), list):
            result[field] = _in_order(result[field], order, key_name)
    if "$retainKeys" in patch:
        keep = set(patch["$retainKeys"] or [])
        result = {k: v for k, v in result.items() if k in keep}
    return result


def _merge_list(
    current: Any, patch: list[Any], path: tuple[str, ...], merge_keys: MergeKeys
) -> Any:
    key_name = merge_keys(path)
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return [copy.deepcopy(i) for i in patch if not (isinstance(i, dict) and "$patch" in i)]
    if key_name is None or not isinstance(current, list):
        return [copy.deepcopy(i) for i in patch if not (isinstance(i, dict) and "$patch" in i)]
    result = copy.deepcopy(current)
    for item in patch:
        if not isinstance(item, dict) or key_name not in item:
            raise PatchError(f"{'.'.join(path)}: every element needs its merge key {key_name!r}")
        index = next(
            (
                i
                for i, old in enumerate(result)
                if isinstance(old, dict) and old.get(key_name) == item[key_name]
            ),
            None,
        )
        if item.get("$patch") == "delete":
            if index is not None:
                del result[index]
        elif index is None:
            result.append({k: copy.deepcopy(v) for k, v in item.items() if k != "$patch"})
        else:
            result[index] = _merge_map(result[index], item, path, merge_keys)
    return result


def _in_order(items: list[Any], order: list[Any], key_name: str) -> list[Any]:
    """``items`` sorted as ``$setElementOrder`` lists them; unlisted ones keep their place after."""
    rank = {entry.get(key_name): i for i, entry in enumerate(order) if isinstance(entry, dict)}
    listed = sorted(
        (i for i in items if i.get(key_name) in rank), key=lambda i: rank[i.get(key_name)]
    )
    return listed + [i for i in items if i.get(key_name) not in rank]


def apply_patch(target: Any, patch: Any, content_type: str, merge_keys: MergeKeys | None) -> Any:
    """Apply ``patch`` as the API server would for ``content_type``.

    ``merge_keys`` is None for custom resources, which the API server refuses to patch
    strategically (415); that refusal is the caller's to answer.
    """
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == JSON_PATCH:
        return json_patch(target, patch)
    if kind == MERGE_PATCH:
        return json_merge_patch(target, patch)
    if kind == STRATEGIC_MERGE_PATCH and merge_keys is not None:
        return strategic_merge_patch(target, patch, merge_keys)
    raise UnsupportedPatch(kind)


class UnsupportedPatch(ValueError):
    """A patch content type the resource does not accept (the API server answers 415)."""


def table_merge_keys(table: Mapping[tuple[str, ...], str]) -> MergeKeys:
    """Merge keys from a table of path suffixes: ``("containers", "ports")`` → ``containerPort``.

    The longest listed suffix of the path wins, so ``("ports",)`` can mean a Service's
    ``spec.ports`` while ``("containers", "ports")`` means a container's.
    """

    def lookup(path: tuple[str, ...]) -> str | None:
        for size in range(len(path), 0, -1):
            found = table.get(path[-size:])
            if found is not None:
                return found
        return None

    return lookup
