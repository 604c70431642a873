"""An HAProxy that accepts every command but keeps running what it ran: the router notices
on the read-back, fails retryably and leaves its file alone. A real HAProxy never does
this, so a stand-in speaks its admin-socket protocol here."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError

from activities.errors import ROUTER_COMMAND_FAILED
from activities.routing.base import ServerState, Weights
from activities.routing.haproxy.router import HAProxyRouter
from activities.routing.spec import HAProxyRouterSpec

COLUMNS = (
    "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight"
    " srv_iweight srv_time_since_last_change srv_check_status srv_check_result"
    " srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id"
    " srv_fqdn srv_port"
)
STUCK = (  # both servers ready at weight 1, whatever they are told
    f"1\n{COLUMNS}\n"
    "3 app 1 stable-1 127.0.0.1 2 0 1 1 0 1 0 2 0 0 0 0 - 18001\n"
    "3 app 2 canary-1 127.0.0.1 2 0 1 1 0 1 0 2 0 0 0 0 - 18002\n"
)


def serve(listener: socket.socket) -> None:
    """Answer each connection's commands: the stuck table, an empty reply to anything else."""
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return  # the listener was closed
        with conn, conn.makefile("rwb") as stream:
            for line in stream:
                if line.strip() == b"quit":
                    break
                reply = STUCK.encode() if line.startswith(b"show servers state") else b""
                stream.write(reply + b"\n> ")
                stream.flush()


@pytest.fixture
def stuck_haproxy(tmp_path: Path) -> Iterator[HAProxyRouterSpec]:
    path = tmp_path / "admin.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen()
    thread = threading.Thread(target=serve, args=(listener,), daemon=True)
    thread.start()
    yield HAProxyRouterSpec(
        backend="app",
        socket=str(path),
        config_path=str(tmp_path / "backend.cfg"),
        stable=["127.0.0.1:18001"],
        canary=["127.0.0.1:18002"],
        check_command=None,
    )
    listener.shutdown(socket.SHUT_RDWR)  # wakes the accept()
    listener.close()
    thread.join(timeout=5)


def test_weights_that_do_not_read_back_fail_retryably_and_write_no_file(stuck_haproxy):
    router = HAProxyRouter(stuck_haproxy)

    with pytest.raises(ApplicationError) as raised:
        router.set_weights(Weights.canary_at(25))

    assert raised.value.type == ROUTER_COMMAND_FAILED
    assert not raised.value.non_retryable
    assert raised.value.message == (
        "backend app: weights read back {'stable-1': 1, 'canary-1': 1}, "
        "expected {'stable-1': 75, 'canary-1': 25}"
    )
    assert not Path(stuck_haproxy.config_path).exists()


def test_states_that_do_not_read_back_fail_retryably_and_write_no_file(stuck_haproxy):
    router = HAProxyRouter(stuck_haproxy)

    with pytest.raises(ApplicationError) as raised:
        router.set_server_states({"127.0.0.1:18002": ServerState.DRAIN})

    assert raised.value.type == ROUTER_COMMAND_FAILED
    assert raised.value.message.startswith(
        "backend app: states read back {'canary-1': 'ready'}, expected"
    )
    assert not Path(stuck_haproxy.config_path).exists()
