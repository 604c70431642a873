"""A ServiceMonitor's security checks: certificate expiry and DNS resolution (seed 002).

Each runs one activity per run (``check_certificate`` per endpoint, ``resolve_names`` for
all names) and turns the reports into findings here, in the workflow, with
``workflow.now()`` as the clock: days left are counted against the run's own time, so a
replay judges the same. The findings escalate like an SLO breach (a restart cannot renew a
certificate or fix a record).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.health.security_spec import (
        CertificateCheck,
        CertificateEndpoint,
        CertificateInput,
        CertificateReport,
        DnsCheck,
        ResolveInput,
        ResolveReport,
    )
    from workflows.core import retry
    from workflows.monitors.models import Finding

SECONDS_PER_DAY = 86400


async def certificate_findings(check: CertificateCheck | None, key: str) -> list[Finding]:
    if check is None:
        return []
    reports = await asyncio.gather(*(_certificate(check, e, key) for e in check.endpoints))
    now = workflow.now()
    return [f for r in reports for f in judge_certificate(check, r, now)]


async def _certificate(
    check: CertificateCheck, endpoint: CertificateEndpoint, key: str
) -> CertificateReport:
    request = CertificateInput(endpoint=endpoint, timeout_seconds=check.timeout_seconds, key=key)
    try:
        report: CertificateReport = await workflow.execute_activity(
            "check_certificate",
            request,
            result_type=CertificateReport,
            start_to_close_timeout=timedelta(seconds=check.timeout_seconds + 10),
            retry_policy=retry.MEASURE,
            summary=f"certificate of {request.endpoint}",
        )
    except ActivityError as exc:
        if is_cancelled_exception(exc):
            raise
        return CertificateReport(endpoint=str(request.endpoint), error=f"activity failed: {exc}")
    return report


def judge_certificate(
    check: CertificateCheck, report: CertificateReport, now: datetime
) -> list[Finding]:
    """A ``tls-handshake`` finding when there was no certificate to read; a
    ``certificate-expiry`` one when fewer than ``minDaysLeft`` days are left (or none)."""
    if report.error is not None or report.not_after is None:
        message = f"{report.endpoint}: {report.error or 'no certificate'}"
        return [Finding(kind="tls-handshake", message=message, servers=[report.endpoint])]
    left = (report.not_after - now).total_seconds() / SECONDS_PER_DAY
    if left >= check.min_days_left:
        return []
    when = f"{report.not_after:%Y-%m-%d %H:%M} UTC"
    state = f"expired {when}" if left < 0 else f"expires {when} ({left:.1f} days left)"
    return [
        Finding(
            kind="certificate-expiry",
            message=f"{report.endpoint}: certificate {state}, under {check.min_days_left} "
            f"days; subject {report.subject}, issuer {report.issuer}",
            servers=[report.endpoint],
            details={
                "notAfter": report.not_after.isoformat(),
                "daysLeft": f"{left:.1f}",
                "subject": report.subject or "",
                "issuer": report.issuer or "",
            },
        )
    ]


async def dns_findings(check: DnsCheck | None, key: str) -> list[Finding]:
    if check is None:
        return []
    try:
        report: ResolveReport = await workflow.execute_activity(
            "resolve_names",
            ResolveInput(check=check, key=key),
            result_type=ResolveReport,
            start_to_close_timeout=timedelta(seconds=2 * check.timeout_seconds + 10),
            retry_policy=retry.MEASURE,
            summary=f"resolve {', '.join(n.name for n in check.names)}"[:200],
        )
    except ActivityError as exc:
        if is_cancelled_exception(exc):
            raise
        return [Finding(kind="inconclusive", message=f"DNS cannot be checked: {exc}")]
    return judge_dns(check, report)


def judge_dns(check: DnsCheck, report: ResolveReport) -> list[Finding]:
    """One ``dns`` finding per name that did not resolve, or resolved without an
    expected address."""
    expected = {n.name: set(n.expected_addresses) for n in check.names}
    findings = []
    for answer in report.answers:
        if answer.error is not None:
            message = f"{answer.name}: does not resolve ({answer.error}: {answer.message})"
            findings.append(Finding(kind="dns", message=message, details={"error": answer.error}))
            continue
        missing = sorted(expected.get(answer.name, set()) - set(answer.addresses))
        if missing:
            findings.append(
                Finding(
                    kind="dns",
                    message=f"{answer.name}: resolves to {', '.join(answer.addresses)}, "
                    f"not to expected {', '.join(missing)}",
                    details={"missing": ", ".join(missing)},
                )
            )
    return findings
