"""Prometheus as a ``MetricsProvider``: one instant query, one float per series.

The client (prometheus-api-client) retries three times with backoff and waits forever by
default; here it makes exactly one attempt bounded by ``timeout``, so Temporal's retry
policy and the analysis' ``consecutiveErrorLimit`` decide what a failure means.

``NaN`` (e.g. ``0/0`` for an error ratio with no traffic) and ``±Inf`` are returned as the
floats they are: the caller decides what they mean.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from prometheus_api_client.exceptions import PrometheusApiClientException
from prometheus_api_client.prometheus_connect import PrometheusConnect
from pydantic import Field, field_validator
from urllib3.util.retry import Retry

from activities.metrics.base import MetricUnavailable
from activities.model import Model, PositiveSeconds


class PrometheusProviderSpec(Model):
    """``provider: {prometheus: {address, query, timeout}}`` in an analysis template."""

    address: str
    query: str
    timeout: PositiveSeconds = Field(default=10.0, description="seconds per query attempt")

    @field_validator("address")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"must be an http(s) URL like http://127.0.0.1:9090, got {value!r}")
        if parts.query or parts.fragment:
            raise ValueError(f"must not carry a query or fragment, got {value!r}")
        try:
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError as e:
            raise ValueError(f"has an invalid port: {value!r}") from e
        return value.strip().rstrip("/")

    @field_validator("query")
    @classmethod
    def _non_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value


class PrometheusProvider:
    """Runs instant queries against one Prometheus server (``/api/v1/query``)."""

    def __init__(self, address: str, timeout: float = 10.0) -> None:
        self.address = address.rstrip("/")
        self.timeout = timeout
        self._shown = _without_credentials(self.address)  # messages end up in history

    @classmethod
    def from_spec(cls, spec: PrometheusProviderSpec) -> PrometheusProvider:
        return cls(spec.address, spec.timeout)

    def query(self, query: str) -> list[float]:
        """One value per series of an instant vector, one for a scalar, ``[]`` for no data.

        Raises ``MetricUnavailable`` when Prometheus cannot be reached or does not answer
        in time, rejects the query (its error text is in the message), or returns a range
        vector.
        """
        result = call(self.address, self.timeout, lambda client: client.custom_query(query))
        return _values(result)


T = TypeVar("T")


def call(address: str, timeout: float, request: Callable[[PrometheusConnect], T]) -> T:
    """``request(client)`` with one attempt bounded by ``timeout``; every failure becomes
    ``MetricUnavailable`` saying why (Prometheus' own error text for a rejected query)."""
    shown = _without_credentials(address)  # messages end up in history
    responses: list[requests.Response] = []
    session = requests.Session()
    session.hooks["response"].append(lambda r, *args, **kwargs: responses.append(r))
    # One attempt only; read=False re-raises a read timeout as ReadTimeout, not a
    # "max retries exceeded" ConnectionError.
    no_retry = Retry(total=0, read=False)
    try:
        with PrometheusConnect(
            url=address,
            session=session,
            retry=no_retry,
            timeout=timeout,  # type: ignore[arg-type]  # annotated int; float works
        ) as client:
            return request(client)
    except requests.JSONDecodeError as e:
        raise MetricUnavailable(
            f"prometheus at {shown} answered with a body that is not JSON: {e}"
        ) from e
    except requests.Timeout as e:
        raise MetricUnavailable(f"prometheus at {shown} did not answer within {timeout:g}s") from e
    except requests.RequestException as e:
        raise MetricUnavailable(f"prometheus at {shown} unreachable: {e}") from e
    except PrometheusApiClientException as e:
        if not responses:
            raise MetricUnavailable(f"prometheus at {shown}: {e}") from e
        raise MetricUnavailable(_http_error(shown, responses[-1])) from e
    except (ValueError, KeyError, TypeError) as e:
        raise MetricUnavailable(
            f"prometheus at {shown} answered with an unexpected body: {e}"
        ) from e


def _without_credentials(address: str) -> str:
    parts = urlsplit(address)
    if parts.username is None and parts.password is None:
        return address
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def _http_error(address: str, response: requests.Response) -> str:
    """Prometheus' own error text (``bad_data: parse error ...``) for a non-200 answer."""
    try:
        body = response.json()
        detail = f"{body['errorType']}: {body['error']}"
    except (ValueError, KeyError, TypeError):
        detail = response.text.strip()[:500] or response.reason
    return f"prometheus at {address} answered HTTP {response.status_code}: {detail}"


def _values(result: Any) -> list[float]:
    """Floats from ``data.result``: a vector is a list of series, a scalar is [ts, "v"]."""
    try:
        if not result:
            return []
        if isinstance(result[0], dict):
            if "value" not in result[0]:
                raise MetricUnavailable(
                    "query returned a range vector; use an instant vector expression "
                    "(e.g. wrap it in rate() or sum_over_time())"
                )
            return [float(series["value"][1]) for series in result]
        if len(result) == 2 and not isinstance(result[1], list):
            return [float(result[1])]  # "NaN", "+Inf" and "-Inf" parse as floats
    except (ValueError, KeyError, TypeError, IndexError) as e:
        raise MetricUnavailable(f"unexpected query result {_short(result)}: {e}") from e
    raise MetricUnavailable(f"unexpected query result {_short(result)}")


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 200 else text[:200] + "..."
