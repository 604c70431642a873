"""Who may call the API and how often: bearer tokens with scopes, and rate limits.

Authentication answers 401 (no token, a wrong one); authorisation 403 (a token without the
route's scope). Each caller has its own rate (``--api-rate``, e.g. ``600/minute``); failed
authentications are limited per remote address, so guessing tokens is slow. Neither
the token nor the Authorization header is ever logged.
"""

from __future__ import annotations

import time
from typing import Final

import limits
from aiohttp import web
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from starters.api.tokens import Caller, Scope, Tokens
from starters.http_errors import Refusal
from starters.serve_command import API_TOKENS_ENV

DEFAULT_RATE: Final = "600/minute"
FAILED_AUTH_RATE: Final = "30/minute"
_CHALLENGE: Final = 'Bearer realm="deployflow-api"'


class RateLimits:
    """Moving-window limits (PyPI ``limits``) per caller and, for failures, per address."""

    def __init__(self, rate: str = DEFAULT_RATE, failed_auth_rate: str = FAILED_AUTH_RATE) -> None:
        self.rate = parse_rate(rate)
        self.failed_auth = parse_rate(failed_auth_rate)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def spend(self, item: limits.RateLimitItem, key: str, what: str) -> None:
        """Count one request of ``key``; 429 with ``Retry-After`` once over ``item``."""
        if self._limiter.hit(item, key):
            return
        reset = self._limiter.get_window_stats(item, key).reset_time
        wait = max(1, round(reset - time.time()))
        raise Refusal(
            429,
            f"too many requests {what} (limit {item}): retry in {wait} s",
            headers={"Retry-After": str(wait)},
        )


def parse_rate(text: str) -> limits.RateLimitItem:
    """``N/second|minute|hour`` (the ``limits`` notation); ``ValueError`` naming the text."""
    try:
        return limits.parse(text)
    except ValueError:
        raise ValueError(f"expected N/second, N/minute or N/hour, got {text!r}") from None


def authenticate(request: web.Request, tokens: Tokens, rate: RateLimits) -> Caller:
    """The caller a request's ``Authorization: Bearer`` token belongs to, or a 401."""
    remote = request.remote or "unknown"
    if not len(tokens):
        raise Refusal(
            401,
            "the deployment API has no tokens: start `deployflow serve` with --api-tokens "
            f"FILE or {API_TOKENS_ENV}",
            headers={"WWW-Authenticate": _CHALLENGE},
        )
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        rate.spend(rate.failed_auth, f"auth:{remote}", "without a valid token from this address")
        raise Refusal(401, "a Bearer token is required", headers={"WWW-Authenticate": _CHALLENGE})
    caller = tokens.caller(given.strip())
    if caller is None:
        rate.spend(rate.failed_auth, f"auth:{remote}", "without a valid token from this address")
        raise Refusal(
            401,
            "the Bearer token is not one of the API's tokens",
            headers={"WWW-Authenticate": f'{_CHALLENGE}, error="invalid_token"'},
        )
    rate.spend(rate.rate, f"caller:{caller.name}", f"from {caller.name}")
    return caller


def authorize(caller: Caller, scope: Scope) -> None:
    """403 unless ``caller`` holds ``scope``."""
    if scope not in caller.scopes:
        held = ", ".join(sorted(caller.scopes))
        raise Refusal(
            403,
            f"the token {caller.name!r} lacks the {scope.value!r} scope (it has: {held})",
            headers={
                "WWW-Authenticate": f'{_CHALLENGE}, error="insufficient_scope", '
                f'scope="{scope.value}"'
            },
        )
