"""Prometheus as a ``MetricsProvider``: an instant query (one float per series) or Argo's
``rangeQuery`` (every sample of every series, as Argo flattens a matrix).

The client (prometheus-api-client) retries three times with backoff and waits forever by
default; here it makes exactly one attempt bounded by ``timeout``, so Temporal's retry
policy and the analysis' ``consecutiveErrorLimit`` decide what a failure means.

``NaN`` (e.g. ``0/0`` for an error ratio with no traffic) and ``±Inf`` are returned as the
floats they are: the caller decides what they mean.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from prometheus_api_client.exceptions import PrometheusApiClientException
from prometheus_api_client.prometheus_connect import PrometheusConnect
from urllib3.util.retry import Retry

from activities.metrics.base import MetricUnavailable, Reading
from activities.metrics.prometheus_spec import Connection, PrometheusProviderSpec

T = TypeVar("T")
Series = tuple[dict[str, str], list[tuple[float, float]]]
"""One series of a range query: its labels and its ``(unix time, value)`` samples."""


class PrometheusClient:
    """One Prometheus server, reached as ``connection`` says (headers, auth, TLS, timeout)."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.shown = _without_credentials(connection.address)  # messages end up in history

    def instant(self, query: str) -> list[float]:
        """One value per series of an instant vector, one for a scalar, ``[]`` for no data.

        Raises ``MetricUnavailable`` when Prometheus cannot be reached or does not answer
        in time, rejects the query (its error text is in the message), or returns a range
        vector.
        """
        return _values(self.call(lambda client: client.custom_query(query)))

    def range(
        self, query: str, start: datetime, end: datetime, step_seconds: float
    ) -> list[Series]:
        """Every series of ``/api/v1/query_range`` with its samples."""
        step = f"{step_seconds:g}s"
        result = self.call(lambda client: client.custom_query_range(query, start, end, step))
        return _series(result)

    def call(self, request: Callable[[PrometheusConnect], T]) -> T:
        """``request(client)`` with one attempt bounded by the timeout; every failure
        becomes ``MetricUnavailable`` saying why (Prometheus' own text for a bad query)."""
        connection, shown = self.connection, self.shown
        responses: list[requests.Response] = []
        session = requests.Session()
        session.verify = not connection.insecure
        session.hooks["response"].append(lambda r, *args, **kwargs: responses.append(r))
        auth = connection.authentication
        headers = {h.key: h.value for h in connection.headers}
        if auth is not None and auth.bearer is not None:
            headers["Authorization"] = f"Bearer {auth.bearer.token}"
        basic = auth.basic_auth if auth is not None else None
        try:
            with PrometheusConnect(
                url=connection.address,
                headers=headers or None,  # type: ignore[arg-type]  # annotated dict, default None
                auth=(basic.username, basic.password) if basic else None,  # type: ignore[arg-type]
                session=session,
                # One attempt only; read=False re-raises a read timeout as ReadTimeout, not
                # a "max retries exceeded" ConnectionError.
                retry=Retry(total=0, read=False),
                timeout=connection.timeout,  # type: ignore[arg-type]  # annotated int; float works
            ) as client:
                return request(client)
        except requests.JSONDecodeError as e:
            raise MetricUnavailable(
                f"prometheus at {shown} answered with a body that is not JSON: {e}"
            ) from e
        except requests.Timeout as e:
            raise MetricUnavailable(
                f"prometheus at {shown} did not answer within {connection.timeout:g}s"
            ) from e
        except requests.RequestException as e:
            raise MetricUnavailable(f"prometheus at {shown} unreachable: {why(e)}") from e
        except PrometheusApiClientException as e:
            if not responses:
                raise MetricUnavailable(f"prometheus at {shown}: {e}") from e
            raise MetricUnavailable(_http_error(shown, responses[-1])) from e
        except (ValueError, KeyError, TypeError) as e:
            raise MetricUnavailable(
                f"prometheus at {shown} answered with an unexpected body: {e}"
            ) from e


class PrometheusProvider:
    """``provider: {prometheus: ...}``: one instant query, or the ``rangeQuery``."""

    def __init__(self, spec: PrometheusProviderSpec) -> None:
        self.spec = spec
        self.client = PrometheusClient(spec)

    def measure(self) -> Reading:
        spec, metadata = self.spec, {"ResolvedPrometheusQuery": self.spec.query}
        if spec.range_query is None:
            return Reading(values=self.client.instant(spec.query), metadata=metadata)
        start, end, step = spec.range_query.window(datetime.now(UTC))
        series = self.client.range(spec.query, start, end, step)
        return Reading(values=[v for _, points in series for _, v in points], metadata=metadata)


def why(error: requests.RequestException) -> str:
    """What went wrong, without the URL (a whole encoded query) that requests repeats."""
    inner = error.args[0] if error.args else error
    return str(getattr(inner, "reason", None) or inner)


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
                    "(e.g. wrap it in rate() or sum_over_time()), or a rangeQuery"
                )
            return [float(series["value"][1]) for series in result]
        if len(result) == 2 and not isinstance(result[1], list):
            return [float(result[1])]  # "NaN", "+Inf" and "-Inf" parse as floats
    except (ValueError, KeyError, TypeError, IndexError) as e:
        raise MetricUnavailable(f"unexpected query result {short(result)}: {e}") from e
    raise MetricUnavailable(f"unexpected query result {short(result)}")


def _series(result: Any) -> list[Series]:
    """A matrix result: ``[{"metric": {...}, "values": [[t, "v"], …]}, …]``."""
    try:
        return [
            (
                {str(k): str(v) for k, v in series["metric"].items()},
                [(float(t), float(v)) for t, v in series["values"]],
            )
            for series in result
        ]
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise MetricUnavailable(f"unexpected range query result {short(result)}: {e}") from e


def short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 200 else text[:200] + "..."
