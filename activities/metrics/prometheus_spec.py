"""``provider: {prometheus: {...}}`` as Argo Rollouts spells it, and how to reach a server.

Credentials never sit in a spec as text: ``authentication.basicAuth.password``,
``authentication.bearer.token`` and an ``Authorization`` header take a secret arg
(``{{args.NAME}}`` with ``valueFrom.secretKeyRef``) that the worker fills in; lint refuses
anything else (``workflows/analysis/plan.py``).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from activities.durations import TemplatedDuration, parse_duration
from activities.model import NOT_SERIALISED, Model, PositiveSeconds, refuse

_TIME = re.compile(r"""^\s*now\(\)\s*(?:-\s*duration\(\s*(["'])(?P<ago>.+?)\1\s*\)\s*)?$""")


class Header(Model):
    key: str = Field(min_length=1, pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
    value: str


class BasicAuth(Model):
    username: str = Field(min_length=1)
    password: str = Field(min_length=1)


class BearerAuth(Model):
    token: str = Field(min_length=1)


class Authentication(Model):
    """At most one of ``basicAuth`` (Argo's) and ``bearer`` (a token from a secret arg)."""

    basic_auth: BasicAuth | None = None
    bearer: BearerAuth | None = None
    sigv4: Annotated[
        None,
        refuse(
            "SigV4 signing (Amazon Managed Prometheus): run a SigV4 proxy such as "
            "aws-sigv4-proxy next to the worker and give its address"
        ),
        NOT_SERIALISED,
    ] = None
    oauth2: Annotated[
        None,
        refuse(
            "the OAuth2 client-credentials flow: fetch the token outside deployflow and "
            "pass it with authentication.bearer.token from a secret arg"
        ),
        NOT_SERIALISED,
    ] = None

    @model_validator(mode="after")
    def _at_most_one(self) -> Authentication:
        if self.basic_auth is not None and self.bearer is not None:
            raise ValueError("set basicAuth or bearer, not both")
        return self


class Connection(Model):
    """Where a Prometheus server is and how to talk to it."""

    address: str
    timeout: PositiveSeconds = Field(default=10.0, description="seconds per query attempt")
    headers: list[Header] = Field(default_factory=list)
    insecure: bool = False
    """Skip TLS certificate verification (Argo's ``insecure``)."""
    authentication: Authentication | None = None

    @field_validator("address")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if "{{" in value:
            return value.strip()  # checked again once its placeholders are filled in
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


class RangeQuery(Model):
    """Argo's ``rangeQuery``: ``start``/``end`` are ``now()`` or ``now() - duration("5m")``."""

    start: str
    end: str = "now()"
    step: TemplatedDuration

    @field_validator("start", "end")
    @classmethod
    def _time(cls, value: str) -> str:
        match = _TIME.match(value)
        if match is None:
            raise ValueError(
                f'only now() and now() - duration("5m") are supported here, got {value!r}'
            )
        ago = match.group("ago")
        if ago is not None and "{{" not in ago:
            parse_duration(ago)
        return value

    def window(self, now: datetime) -> tuple[datetime, datetime, float]:
        """(start, end, step in seconds) of the query made at ``now``."""
        return _at(self.start, now), _at(self.end, now), parse_duration(self.step).total_seconds()


class PrometheusProviderSpec(Connection):
    """``provider: {prometheus: {address, query, timeout, headers, authentication, ...}}``."""

    query: str
    range_query: RangeQuery | None = None

    @field_validator("query")
    @classmethod
    def _non_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value


def _at(expression: str, now: datetime) -> datetime:
    match = _TIME.match(expression)
    assert match is not None  # RangeQuery validated it
    ago = match.group("ago")
    return now - (parse_duration(ago) if ago else timedelta(0))
