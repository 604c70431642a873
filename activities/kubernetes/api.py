"""One raw JSON request to an API server, shared by the Kubernetes platform and routers.

The objects travel as the API server's own JSON through the official client's
``ApiClient`` (``param_serialize`` + ``call_api``), not its typed models, which trim
objects to the fields they know. Every call has ``REQUEST_TIMEOUT``. A non-2xx answer is
:class:`ApiStatus`; a transport failure (urllib3's ``HTTPError``, an ``OSError``) is left
to the caller, because the platform and the routers say different things about both.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from activities.kubeconfig import REQUEST_TIMEOUT

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

JSON = dict[str, Any]


class ApiStatus(Exception):
    """A non-2xx answer: ``status`` and the ``message`` of the API server's ``Status``
    (its first 200 bytes when the body is not a Status; "" when it has no message)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def status_message(data: bytes) -> str:
    """The ``message`` of a ``Status`` body, else the body's first 200 bytes."""
    try:
        parsed = json.loads(data)
    except ValueError:
        return data[:200].decode(errors="replace")
    if not isinstance(parsed, dict):
        return data[:200].decode(errors="replace")
    return str(parsed.get("message") or "")


def request(
    api: ApiClient,
    method: str,
    path: str,
    body: Any = None,
    content_type: str = "application/json",
) -> JSON:
    """Send one request; the 2xx answer's JSON (``{}`` for an empty body)."""
    headers = {"Accept": "application/json", "Content-Type": content_type}
    params = api.param_serialize(
        method=method,
        resource_path=path,
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
    )
    response = api.call_api(*params, _request_timeout=REQUEST_TIMEOUT)
    response.read()
    data = response.data or b"{}"
    if not 200 <= response.status <= 299:
        raise ApiStatus(response.status, status_message(data))
    parsed: JSON = json.loads(data)
    return parsed
