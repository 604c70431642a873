"""Argo's ``web`` provider: one HTTP request, the JSON value a JSONPath finds in the answer.

``jsonPath`` is Argo's (Kubernetes') form, ``{$.data.ok}``; the braces are optional and the
path is read by jsonpath-ng. The first match is the ``result`` (a number, string, bool,
list or object); without a ``jsonPath`` the whole body is. A body that is not JSON is the
``result`` as text when there is no ``jsonPath`` (Argo's plain-text responses) and an
Error measurement when there is one. Any answer but 2xx is an Error measurement, as is a
JSONPath that matches nothing. One attempt, bounded by ``timeoutSeconds``; never retried
by the HTTP client.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Any, Literal

import requests
from pydantic import Field, JsonValue, field_validator, model_validator

from activities.metrics.base import MetricUnavailable, Reading
from activities.metrics.prometheus import why
from activities.metrics.prometheus_spec import Header
from activities.model import NOT_SERIALISED, Model, refuse

if TYPE_CHECKING:
    from jsonpath_ng import JSONPath

TEXT_LIMIT = 64 * 1024
"""Bytes of a plain-text answer kept as the result (a condition needs no more)."""


class WebAuthentication(Model):
    oauth2: Annotated[
        None,
        refuse(
            "the OAuth2 client-credentials flow: fetch the token outside deployflow and send "
            'it in a header, value: "Bearer {{args.token}}" with a secret arg'
        ),
        NOT_SERIALISED,
    ] = None


class WebProviderSpec(Model):
    """``provider: {web: {url, method, headers, body | jsonBody, jsonPath, ...}}``."""

    url: str = Field(min_length=1)
    method: Literal["GET", "POST", "PUT"] = "GET"
    headers: list[Header] = Field(default_factory=list)
    body: str | None = None
    json_body: JsonValue = None
    json_path: str | None = None
    timeout_seconds: int = Field(default=10, ge=1, le=3600)
    insecure: bool = False
    """Skip TLS certificate verification."""
    authentication: WebAuthentication | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if "{{" not in value and not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http(s) URL, got {value!r}")
        return value

    @field_validator("json_path")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value is not None and "{{" not in value:
            compiled_path(value)
        return value

    @model_validator(mode="after")
    def _body_fits_method(self) -> WebProviderSpec:
        if self.body is not None and self.json_body is not None:
            raise ValueError("set body or jsonBody, not both")
        if (self.body is not None or self.json_body is not None) and self.method == "GET":
            raise ValueError("body and jsonBody need method POST or PUT")
        return self


@lru_cache(maxsize=256)
def compiled_path(text: str) -> JSONPath:
    """Argo's ``{$.data.ok}`` (braces optional, ``$`` optional) as a jsonpath-ng path."""
    # Imported on use: every CLI command loads spec models, few specs have a jsonPath.
    from jsonpath_ng.exceptions import JSONPathError
    from jsonpath_ng.ext.parser import parse as parse_jsonpath

    path = text.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1].strip()
    if not path.startswith("$"):
        path = "$" + (path if path.startswith((".", "[")) else "." + path)
    try:
        return parse_jsonpath(path)
    # jsonpath-ng's lexer and parser raise JSONPathError, and a few plain errors on odd input.
    except (JSONPathError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise ValueError(f"not a JSONPath: {text!r}: {exc}") from None


class WebProvider:
    def __init__(self, spec: WebProviderSpec) -> None:
        self.spec = spec

    def measure(self) -> Reading:
        spec = self.spec
        headers = {h.key: h.value for h in spec.headers}
        data: bytes | None = None
        if spec.json_body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(spec.json_body).encode()
        elif spec.body is not None:
            data = spec.body.encode()
        try:
            response = requests.request(
                spec.method,
                spec.url,
                headers=headers,
                data=data,
                timeout=spec.timeout_seconds,
                verify=not spec.insecure,
                allow_redirects=True,
            )
        except requests.Timeout as e:
            raise MetricUnavailable(
                f"{spec.url} did not answer within {spec.timeout_seconds}s"
            ) from e
        except requests.RequestException as e:
            raise MetricUnavailable(f"{spec.url} unreachable: {why(e)}") from e
        if not 200 <= response.status_code < 300:
            raise MetricUnavailable(
                f"{spec.url} answered HTTP {response.status_code}: "
                f"{response.text.strip()[:300] or response.reason}"
            )
        return _reading(spec, response.content)


def _reading(spec: WebProviderSpec, content: bytes) -> Reading:
    try:
        document = json.loads(content)
    except ValueError:
        if spec.json_path is not None:
            raise MetricUnavailable(
                f"the answer is not JSON, so jsonPath {spec.json_path} cannot apply: "
                f"{content[:120]!r}"
            ) from None
        text = content[:TEXT_LIMIT].decode("utf-8", errors="replace")
        return Reading(result=text)
    if spec.json_path is None:
        return _of(document)
    matches = compiled_path(spec.json_path).find(document)
    if not matches:
        raise MetricUnavailable(f"jsonPath {spec.json_path} matched nothing in the answer")
    return _of(matches[0].value)


def _of(value: Any) -> Reading:
    """A number is also a value (so ``result < 1`` and a list-valued ``result[0]`` work)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Reading(values=[float(value)], result=value)
    return Reading(result=value)
