"""The deployment API's bearer tokens: who may call it, and what each caller may do.

A YAML (or JSON) list, from ``--api-tokens FILE`` or the ``DEPLOYFLOW_API_TOKENS`` variable::

    tokens:
      - name: ci                    # the identity recorded on the verbs it sends
        scopes: [read, operate]
        sha256: 5e884898da28…       # sha256 of the token (hex): the file holds no secret
      - name: alice                 # an approver: the name a pipeline's gate lists
        scopes: [read, approve]
        token: s3cret               # or the token itself (keep the file private)

``read`` is every GET (and the event streams); ``operate`` starts rollouts and pipelines,
sends rollout and incident verbs, rolls back and runs checks; ``approve`` decides pipeline
gates and incident approval steps, always as the token's own name.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Final

import yaml
from pydantic import Field, ValidationError, model_validator

from activities.model import Model
from starters.serve_command import API_TOKENS_ENV
from workers.usage import read_text
from workflows.core.spec import SpecError, validation_problems

MIN_TOKEN_LENGTH: Final = 16


class Scope(StrEnum):
    READ = "read"
    OPERATE = "operate"
    APPROVE = "approve"


class TokenEntry(Model):
    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")
    scopes: list[Scope] = Field(min_length=1)
    token: str | None = Field(default=None, min_length=MIN_TOKEN_LENGTH, repr=False)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$", repr=False)

    @model_validator(mode="after")
    def _one_secret(self) -> TokenEntry:
        if (self.token is None) == (self.sha256 is None):
            raise ValueError("set exactly one of token, sha256")
        return self

    @property
    def digest(self) -> bytes:
        if self.sha256 is not None:
            return bytes.fromhex(self.sha256)
        assert self.token is not None
        return _digest(self.token)


class TokenFile(Model):
    tokens: list[TokenEntry] = Field(min_length=1)


@dataclass(frozen=True)
class Caller:
    """Who a request comes from: a token's name and scopes (never the token)."""

    name: str
    scopes: frozenset[Scope]


class Tokens:
    """The configured tokens; ``caller`` finds the one a request presents in constant time
    (every digest is compared, whichever matches)."""

    def __init__(self, entries: list[TokenEntry]) -> None:
        self._entries = [(e.digest, Caller(e.name, frozenset(e.scopes))) for e in entries]

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def names(self) -> list[str]:
        return [caller.name for _, caller in self._entries]

    def replace(self, other: Tokens) -> None:
        """Take ``other``'s tokens (a reload): requests after this see only those."""
        self._entries = other._entries

    def caller(self, presented: str) -> Caller | None:
        digest = _digest(presented)
        found: Caller | None = None
        for expected, caller in self._entries:
            if hmac.compare_digest(digest, expected):
                found = caller
        return found


def _digest(token: str) -> bytes:
    # surrogatepass: any header text hashes, and distinct texts stay distinct.
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def parse_tokens(text: str, source: str) -> Tokens:
    """Tokens from YAML/JSON text; ``SpecError`` naming the field (never a token's value)."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(
            source, [f"(yaml): {getattr(exc, 'problem', None) or 'not YAML'}"]
        ) from None
    if isinstance(document, list):
        document = {"tokens": document}
    try:
        loaded = TokenFile.model_validate(document)
    except ValidationError as exc:
        # Validation messages could quote a token: say where, and what, but not the input.
        raise SpecError(source, validation_problems(exc)) from None
    problems = []
    names = [e.name for e in loaded.tokens]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"tokens: the name {name!r} is used twice")
    digests = [e.digest for e in loaded.tokens]
    if len(set(digests)) != len(digests):
        problems.append("tokens: two entries have the same token")
    if problems:
        raise SpecError(source, problems)
    return Tokens(loaded.tokens)


def load_tokens(path: str | None, environ: dict[str, str]) -> Tokens:
    """Tokens from ``path`` (``--api-tokens``), else from ``DEPLOYFLOW_API_TOKENS``; none
    when neither is set (the API then refuses every call, saying how to configure it)."""
    if path is not None:
        return parse_tokens(read_text(Path(path), f"--api-tokens {path}"), path)
    text = environ.get(API_TOKENS_ENV, "").strip()
    return parse_tokens(text, API_TOKENS_ENV) if text else Tokens([])
