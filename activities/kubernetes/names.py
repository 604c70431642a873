"""Kubernetes names as spec field types: each refuses what the API server would, with a
message saying what the name must be (``'Checkout' is not a DNS-1123 label (a-z, 0-9,
'-')``). Pure pydantic, shared by the platform's and the routers' specs and the monitors'."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN = rf"{DNS_LABEL}(\.{DNS_LABEL})*"
_LABEL_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"


def matching(pattern: str, what: str, longest: int) -> AfterValidator:
    """A validator: the whole value matches ``pattern`` and has at most ``longest`` characters."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if len(value) > longest:
            raise ValueError(f"{value!r} is not {what}: longer than {longest} characters")
        if not compiled.fullmatch(value):
            raise ValueError(f"{value!r} is not {what}")
        return value

    return AfterValidator(check)


DnsLabel = Annotated[str, matching(DNS_LABEL, "a DNS-1123 label (a-z, 0-9, '-')", 63)]
"""A namespace, a container's name."""
ServiceName = Annotated[
    str, matching(r"[a-z]([-a-z0-9]*[a-z0-9])?", "a DNS-1035 label (a Service name)", 63)
]
ObjectName = Annotated[str, matching(_SUBDOMAIN, "a DNS-1123 subdomain (an object name)", 253)]
ContextName = Annotated[
    str, matching(r"[^\x00-\x1f\x7f]+", "a kubeconfig context name (no control characters)", 253)
]
LabelKey = Annotated[
    str,
    matching(
        rf"({_SUBDOMAIN}/)?[A-Za-z0-9]([-A-Za-z0-9_.]{{0,61}}[A-Za-z0-9])?",
        "a label key ([prefix/]name)",
        316,
    ),
]
LabelValue = Annotated[str, matching(_LABEL_VALUE, "a label value", 63)]
Selector = Annotated[dict[LabelKey, LabelValue], Field(min_length=1)]
AnnotationPrefix = Annotated[str, matching(_SUBDOMAIN, "a DNS subdomain", 253)]
