"""API errors as the API server reports them: an HTTP code and a ``Status`` body.

https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/status/ and
https://kubernetes.io/docs/reference/using-api/api-concepts/ (409 Conflict on a stale
``resourceVersion``, 410 Gone for an expired one, 422 Invalid).
"""

from __future__ import annotations

from typing import Any

from activities.kubernetes.testing.resources import Kind


class ApiError(Exception):
    """A failure the double answers with ``code`` and a ``Status`` body."""

    def __init__(
        self, code: int, reason: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details or {}

    def status(self) -> dict[str, Any]:
        """The ``Status`` object sent as the response body (or a watch ERROR event's object)."""
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": self.details,
            "code": self.code,
        }


def qualified(kind: Kind) -> str:
    """``deployments.apps``, or ``pods`` for the core group, as messages name a resource."""
    return f"{kind.plural}.{kind.group}" if kind.group else kind.plural


def _details(kind: Kind, name: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "kind": kind.plural}
    if kind.group:
        details["group"] = kind.group
    return details


def not_found(kind: Kind, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{qualified(kind)} "{name}" not found', _details(kind, name))


def already_exists(kind: Kind, name: str) -> ApiError:
    return ApiError(
        409, "AlreadyExists", f'{qualified(kind)} "{name}" already exists', _details(kind, name)
    )


def conflict(kind: Kind, name: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified(kind)} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again",
        _details(kind, name),
    )


def invalid(kind: Kind, name: str, field: str, message: str) -> ApiError:
    qualified_kind = f"{kind.kind}.{kind.group}" if kind.group else kind.kind
    details = _details(kind, name)
    details["kind"] = kind.kind
    details["causes"] = [{"reason": "FieldValueInvalid", "message": message, "field": field}]
    return ApiError(
        422, "Invalid", f'{qualified_kind} "{name}" is invalid: {field}: {message}', details
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def gone(requested: int, oldest: int) -> ApiError:
    return ApiError(410, "Expired", f"too old resource version: {requested} ({oldest})")
