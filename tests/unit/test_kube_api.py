"""The shared raw request's reading of a refusal: the Status message, else the body."""

from __future__ import annotations

import pytest
from temporalio.exceptions import ApplicationError

from activities.kubernetes.api import status_message
from activities.routing.kube import Conflict, NotFound, refusal


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"kind": "Status", "message": "deployments.apps \\"web\\" not found"}',
         'deployments.apps "web" not found'),
        (b'{"kind": "Status", "reason": "InternalError"}', ""),
        (b"{}", ""),
        (b"<html>502 Bad Gateway</html>", "<html>502 Bad Gateway</html>"),
        (b'["not", "a", "status"]', '["not", "a", "status"]'),
        (b"x" * 300, "x" * 200),
    ],
)  # fmt: skip
def test_a_refusal_reads_the_status_message_else_the_start_of_the_body(body, message):
    assert status_message(body) == message


def test_the_routers_leave_404_and_409_to_the_caller_and_classify_the_rest():
    assert isinstance(refusal("read x", 404, "gone"), NotFound)
    assert isinstance(refusal("patch x", 409, "changed"), Conflict)
    forbidden = refusal("read x", 403, "forbidden")
    assert isinstance(forbidden, ApplicationError)
    assert (forbidden.type, forbidden.non_retryable) == ("KubernetesForbidden", True)
    unavailable = refusal("read x", 503, "")  # no message: the status stands in, as before
    assert isinstance(unavailable, ApplicationError)
    assert (unavailable.type, unavailable.message) == ("KubernetesRequestFailed", "read x: 503 503")
