"""``resolve_names``: each of a service's names, resolved now.

With ``nameservers`` the names are asked of those servers with dnspython's asyncio resolver
(A and AAAA; NXDOMAIN, an empty answer and a timeout are told apart). Without, the system
resolver answers, as the service's clients would see it (``/etc/hosts``, nsswitch), through
the event loop's ``getaddrinfo`` under the check's timeout. A name that does not resolve is
a result, never a raise: the workflow makes it a finding.
"""

from __future__ import annotations

import asyncio
import socket

import dns.asyncresolver
import dns.exception
import dns.resolver
import structlog
from temporalio import activity

from activities.health.security_spec import (
    DnsCheck,
    NameAnswer,
    ResolveInput,
    ResolveReport,
    split_nameserver,
)

log = structlog.get_logger()
RECORD_TYPES = ("A", "AAAA")


async def _from_nameservers(check: DnsCheck, name: str) -> NameAnswer:
    resolver = dns.asyncresolver.Resolver(configure=False)
    servers = [split_nameserver(s) for s in check.nameservers]
    resolver.nameservers = [host for host, _ in servers]
    resolver.port = servers[0][1]  # dnspython asks every server on one port
    resolver.lifetime = check.timeout_seconds
    addresses: list[str] = []
    try:
        for record_type in RECORD_TYPES:
            try:
                answer = await resolver.resolve(name, record_type, search=False)
            except dns.resolver.NoAnswer:
                continue
            addresses += [r.to_text() for r in answer]
    except dns.resolver.NXDOMAIN:
        return NameAnswer(name=name, error="nxdomain", message="no such name (NXDOMAIN)")
    except dns.exception.Timeout:
        message = f"no answer within {check.timeout_seconds:g} s"
        return NameAnswer(name=name, error="timeout", message=message)
    except dns.exception.DNSException as exc:
        return NameAnswer(name=name, error="error", message=str(exc))
    if not addresses:
        return NameAnswer(name=name, error="no-answer", message="no A or AAAA records")
    return NameAnswer(name=name, addresses=sorted(set(addresses)))


async def _from_system(check: DnsCheck, name: str) -> NameAnswer:
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(check.timeout_seconds):
            infos = await loop.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except TimeoutError:
        message = f"no answer within {check.timeout_seconds:g} s"
        return NameAnswer(name=name, error="timeout", message=message)
    except socket.gaierror as exc:
        if exc.errno == socket.EAI_NONAME:
            return NameAnswer(name=name, error="nxdomain", message=exc.strerror)
        return NameAnswer(name=name, error="error", message=exc.strerror or str(exc))
    return NameAnswer(name=name, addresses=sorted({str(info[4][0]) for info in infos}))


async def resolve(check: DnsCheck) -> ResolveReport:
    """Every name of ``check``, concurrently."""
    one = _from_nameservers if check.nameservers else _from_system
    answers = await asyncio.gather(*(one(check, n.name) for n in check.names))
    return ResolveReport(answers=list(answers))


@activity.defn(name="resolve_names")
async def resolve_names(input: ResolveInput) -> ResolveReport:
    """What each name resolves to now (``error`` on those that do not)."""
    report = await resolve(input.check)
    log.info(
        "resolve_names",
        key=input.key,
        resolved=[a.name for a in report.answers if a.error is None],
        failed={a.name: a.error for a in report.answers if a.error is not None},
    )
    return report
