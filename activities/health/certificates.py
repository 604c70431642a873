"""``check_certificate``: the leaf certificate a TLS endpoint presents, parsed.

A TLS handshake to ``address or host``:``port`` with ``host`` as SNI, without verifying the
chain (the monitor judges expiry; trust is the clients' business), bounded by the check's
timeout. The certificate is parsed with ``cryptography``. A refused connection, a timeout or
a failed handshake is a result (``error``), never a raise: the workflow makes it a finding.
"""

from __future__ import annotations

import asyncio
import ssl

import structlog
from cryptography import x509
from temporalio import activity

from activities.health.security_spec import CertificateInput, CertificateReport

log = structlog.get_logger()


def _context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def presented_certificate(input: CertificateInput) -> CertificateReport:
    """Handshake and parse; what went wrong as ``error`` (``connect: …``, ``handshake: …``)."""
    endpoint = input.endpoint
    shown = str(endpoint)
    try:
        async with asyncio.timeout(input.timeout_seconds):
            _, writer = await asyncio.open_connection(
                endpoint.address or endpoint.host,
                endpoint.port,
                ssl=_context(),
                server_hostname=endpoint.host,
            )
    except TimeoutError:
        return CertificateReport(
            endpoint=shown, error=f"handshake: no answer within {input.timeout_seconds:g} s"
        )
    except ssl.SSLError as exc:
        return CertificateReport(endpoint=shown, error=f"handshake: {exc.reason or exc}")
    except OSError as exc:
        return CertificateReport(endpoint=shown, error=f"connect: {exc.strerror or exc}")
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
    finally:
        writer.close()
    if not der:
        return CertificateReport(endpoint=shown, error="handshake: no certificate presented")
    try:
        certificate = x509.load_der_x509_certificate(der)
    except ValueError as exc:
        return CertificateReport(endpoint=shown, error=f"certificate unreadable: {exc}")
    return CertificateReport(
        endpoint=shown,
        not_after=certificate.not_valid_after_utc,
        subject=certificate.subject.rfc4514_string(),
        issuer=certificate.issuer.rfc4514_string(),
    )


@activity.defn(name="check_certificate")
async def check_certificate(input: CertificateInput) -> CertificateReport:
    """The certificate ``input.endpoint`` presents (``error`` when there is none to read)."""
    report = await presented_certificate(input)
    log.info(
        "check_certificate",
        key=input.key,
        endpoint=report.endpoint,
        not_after=report.not_after.isoformat() if report.not_after else None,
        error=report.error,
    )
    return report
