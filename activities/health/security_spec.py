"""Security checks of a ServiceMonitor as users write them: certificate expiry and DNS.

```yaml
certificates:
  minDaysLeft: 14                 # fewer days left than this is a finding
  timeoutSeconds: 5
  endpoints:
    - host: checkout.example.com  # the SNI name, and what the certificate is for
      port: 443
      address: 10.0.0.5           # optional: connect here instead of resolving host
dns:
  timeoutSeconds: 2
  nameservers: [10.0.0.53]        # optional (ip or ip:port); default: the system resolver
  names:
    - name: checkout.example.com
      expectedAddresses: [10.0.0.5, 10.0.0.6]   # optional: each must be in the answer
```

The certificate check reads the leaf certificate the server presents in a TLS handshake; it
judges expiry, not trust (a monitor addressing a host by IP, or an internal CA, still gets
its days counted). Also the inputs and reports of the two activities.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from activities.health.spec import PortNumber
from activities.model import Model, PositiveSeconds

_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
HOSTNAME_PATTERN = rf"^{_LABEL}(\.{_LABEL})*\.?$"
Hostname = Annotated[str, Field(pattern=HOSTNAME_PATTERN, max_length=253)]


def _ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"not an IP address: {value!r}") from None


def _nameserver(value: str) -> str:
    """``10.0.0.53``, ``10.0.0.53:5353``, ``[::1]:5353`` or ``::1``."""
    host, port = split_nameserver(value)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def split_nameserver(value: str) -> tuple[str, int]:
    """``(ip, port)`` of a nameserver entry; port 53 unless given."""
    text = value.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":") if rest.startswith(":") else None
        if rest and port_text is None:
            raise ValueError(f"expected [ip]:port, got {value!r}")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, None
    port = 53
    if port_text is not None:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise ValueError(f"port must be 1..65535 in {value!r}")
        port = int(port_text)
    return _ip(host), port


def _refuse_repeats(field: str, shown: list[str]) -> None:
    repeated = sorted({item for item in shown if shown.count(item) > 1})
    if repeated:
        raise ValueError(f"{field}: {', '.join(repeated)} listed twice")


IpAddress = Annotated[str, AfterValidator(_ip)]
Nameserver = Annotated[str, AfterValidator(_nameserver)]


class CertificateEndpoint(Model):
    host: Hostname
    port: PortNumber = 443
    address: IpAddress | None = None

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


class CertificateCheck(Model):
    min_days_left: int = Field(default=14, ge=0, le=3650)
    timeout_seconds: PositiveSeconds = Field(default=5, le=60)
    endpoints: list[CertificateEndpoint] = Field(min_length=1, max_length=100)

    @model_validator(mode="after")
    def _distinct(self) -> CertificateCheck:
        _refuse_repeats("endpoints", [str(e) for e in self.endpoints])
        return self


class DnsName(Model):
    name: Hostname
    expected_addresses: list[IpAddress] = Field(default_factory=list, max_length=64)


class DnsCheck(Model):
    timeout_seconds: PositiveSeconds = Field(default=2, le=60)
    nameservers: list[Nameserver] = Field(default_factory=list, max_length=8)
    names: list[DnsName] = Field(min_length=1, max_length=100)

    @model_validator(mode="after")
    def _distinct(self) -> DnsCheck:
        _refuse_repeats("names", [n.name.rstrip(".").lower() for n in self.names])
        ports = {split_nameserver(n)[1] for n in self.nameservers}
        if len(ports) > 1:
            raise ValueError(
                f"nameservers: all on one port (the resolver asks each on the same), "
                f"got {', '.join(map(str, sorted(ports)))}"
            )
        return self


class CertificateInput(Model):
    endpoint: CertificateEndpoint
    timeout_seconds: PositiveSeconds
    key: str


class CertificateReport(Model):
    """The leaf certificate an endpoint presented, or why the handshake failed."""

    endpoint: str
    not_after: datetime | None = None
    subject: str | None = None
    issuer: str | None = None
    error: str | None = None


class ResolveInput(Model):
    check: DnsCheck
    key: str


class NameAnswer(Model):
    """The addresses ``name`` resolved to, or why it did not resolve."""

    name: str
    addresses: list[str] = Field(default_factory=list)
    error: Literal["nxdomain", "no-answer", "timeout", "error"] | None = None
    message: str | None = None


class ResolveReport(Model):
    answers: list[NameAnswer]
