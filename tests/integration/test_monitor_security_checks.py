"""Certificate expiry against a real TLS server on 127.0.0.1 and DNS resolution against a
real DNS server on 127.0.0.1 (tests/fixtures/security_servers.py): first the activities'
own readings, then a ServiceMonitor run on the dev server turning them into findings."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio import activity
from temporalio.testing import WorkflowEnvironment

from activities.health.certificates import check_certificate, presented_certificate
from activities.health.dns import resolve, resolve_names
from activities.health.security_spec import CertificateInput, DnsCheck
from tests.fixtures.harness import worker
from tests.fixtures.parts import free_port
from tests.fixtures.security_servers import TLS_NAME, StartDNS, StartTLS
from workflows.incidents.models import OpenIncidentInput
from workflows.monitors.models import MonitorResult
from workflows.monitors.monitor import ServiceMonitorRun
from workflows.monitors.spec import ServiceMonitor

pytestmark = pytest.mark.integration


def certificate_input(port: int, host: str = TLS_NAME) -> CertificateInput:
    return CertificateInput.model_validate(
        {
            "endpoint": {"host": host, "port": port, "address": "127.0.0.1"},
            "timeoutSeconds": 2,
            "key": "test",
        }
    )


async def test_the_certificate_a_server_presents_is_read_with_its_expiry(
    tls_server: StartTLS,
) -> None:
    server = await tls_server(days_left=7)
    report = await presented_certificate(certificate_input(server.port))
    assert report.error is None
    assert report.not_after == server.not_after
    assert report.subject == server.subject == f"CN={TLS_NAME},O=deployflow tests"
    assert report.issuer == server.issuer


async def test_a_refused_connection_and_a_non_tls_server_are_handshake_errors(
    tls_server: StartTLS, dns_server: StartDNS
) -> None:
    refused = await presented_certificate(certificate_input(free_port()))
    assert refused.error is not None
    assert refused.error.startswith("connect: ")
    plain = await _plain_server()
    try:
        report = await presented_certificate(certificate_input(plain.sockets[0].getsockname()[1]))
    finally:
        plain.close()
    assert report.error is not None
    assert report.error.startswith("handshake: "), report


async def _plain_server() -> asyncio.Server:
    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        await writer.drain()
        writer.close()

    return await asyncio.start_server(greet, "127.0.0.1", 0)


async def test_names_resolve_through_the_given_nameserver(dns_server: StartDNS) -> None:
    server = await dns_server({"checkout.test.": ["10.0.0.5", "10.0.0.6"]}, silent={"slow.test."})
    check = DnsCheck.model_validate(
        {
            "nameservers": [server.address],
            "timeoutSeconds": 0.5,
            "names": [{"name": "checkout.test"}, {"name": "gone.test"}, {"name": "slow.test"}],
        }
    )
    answers = {a.name: a for a in (await resolve(check)).answers}
    assert answers["checkout.test"].addresses == ["10.0.0.5", "10.0.0.6"]
    assert answers["checkout.test"].error is None
    assert answers["gone.test"].error == "nxdomain"
    assert answers["slow.test"].error == "timeout"
    assert "checkout.test. A" in server.queries  # asked of our server, not the system's


async def test_without_nameservers_the_system_resolver_answers_for_localhost() -> None:
    check = DnsCheck.model_validate({"names": [{"name": "localhost"}]})
    [answer] = (await resolve(check)).answers
    assert answer.error is None
    assert "127.0.0.1" in answer.addresses or "::1" in answer.addresses


async def test_a_monitor_run_reports_an_expiring_certificate_and_broken_names(
    temporal_env: WorkflowEnvironment, tls_server: StartTLS, dns_server: StartDNS
) -> None:
    """Real check activities; only ``open_incident`` is a stand-in recording what the run
    escalates (the incident path has its own tests)."""
    expiring, fine = await tls_server(days_left=5), await tls_server(days_left=90)
    nameserver = await dns_server({"checkout.test.": ["10.0.0.9"]})
    monitor = ServiceMonitor.model_validate(
        {
            "apiVersion": "deployflow/v1",
            "kind": "ServiceMonitor",
            "metadata": {"name": "checkout"},
            "spec": {
                "service": "checkout",
                "environment": f"test-{uuid.uuid4().hex[:6]}",
                "schedule": {"offHours": {"every": "15m"}},
                "certificates": {
                    "minDaysLeft": 14,
                    "timeoutSeconds": 2,
                    "endpoints": [
                        {"host": TLS_NAME, "port": p, "address": "127.0.0.1"}
                        for p in (expiring.port, fine.port, free_port())
                    ],
                },
                "dns": {
                    "nameservers": [nameserver.address],
                    "names": [
                        {"name": "checkout.test", "expectedAddresses": ["10.0.0.5"]},
                        {"name": "gone.test"},
                    ],
                },
            },
        }
    )
    escalated: list[OpenIncidentInput] = []

    @activity.defn(name="open_incident")
    async def open_incident(input: OpenIncidentInput) -> str:
        escalated.append(input)
        return "incident-test"

    queue = f"tq-{uuid.uuid4().hex}"
    async with worker(
        temporal_env,
        [ServiceMonitorRun],
        [check_certificate, resolve_names, open_incident],
        task_queue=queue,
    ):
        result: MonitorResult = await temporal_env.client.execute_workflow(
            ServiceMonitorRun.run, monitor, id=f"monitor-{uuid.uuid4().hex[:6]}", task_queue=queue
        )
    assert not result.healthy
    kinds = sorted(f.kind for f in result.findings)
    assert kinds == ["certificate-expiry", "dns", "dns", "tls-handshake"]
    [expiry] = [f for f in result.findings if f.kind == "certificate-expiry"]
    assert expiry.servers == [f"{TLS_NAME}:{expiring.port}"]
    assert expiry.details["notAfter"] == expiring.not_after.isoformat()
    assert expiry.details["subject"] == expiring.subject
    assert expiry.details["issuer"] == expiring.issuer
    assert f"expires {expiring.not_after:%Y-%m-%d %H:%M} UTC (5.0 days left), under 14 days" in (
        expiry.message
    )
    dns_messages = sorted(f.message for f in result.findings if f.kind == "dns")
    assert "not to expected 10.0.0.5" in dns_messages[0]
    assert "gone.test: does not resolve (nxdomain" in dns_messages[1]
    assert escalated == []  # no runbook configured: nothing to open
    assert "no incident runbook configured" in result.actions
