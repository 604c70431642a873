"""Reading hand-written NGINX upstreams and HAProxy backends, and deciding whether
deployflow may take one over (pure: no nginx, no haproxy)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from temporalio.exceptions import ApplicationError

from activities.errors import ROUTER_CONFIG_FOREIGN
from activities.routing.adoption import (
    STABLE_ONLY,
    Recorded,
    backup_path,
    check_adoptable,
    recorded,
)
from activities.routing.base import ServerState, Weights
from activities.routing.handwritten import (
    ForeignConfig,
    HandWrittenServer,
    address_key,
    parse_haproxy_backend,
    parse_nginx_upstream,
)
from activities.routing.haproxy.plan import render_backend
from activities.routing.nginx import render_upstream

STABLE = ["10.0.0.1:8080", "10.0.0.2:8080"]
CANARY = ["10.0.0.3:8080"]
PATH = Path("/etc/nginx/conf.d/checkout-upstream.conf")

NGINX_FILE = """\
# checkout, by hand (ops, 2023)
upstream checkout {
    least_conn;                      # fewest active connections
    keepalive 32;
    server 10.0.0.1:8080 weight=3 max_fails=3 fail_timeout=30s;
    server 10.0.0.2:8080 weight=1;
    server 10.0.0.3:8080 down;       # the canary slot, idle
    server 10.0.0.9:8080 backup;
}
"""

LOSSY = NGINX_FILE.replace("    server 10.0.0.9:8080 backup;\n", "")  # adoptable, with losses

HAPROXY_FILE = """\
# checkout backend, loaded with -f
backend checkout
    balance roundrobin
    option httpchk GET /healthz
    server web1 10.0.0.1:8080 check inter 2s weight 10
    server web2 10.0.0.2:8080 check
    server canary 10.0.0.3:8080 disabled
"""


def nginx(servers: str, upstream: str = "checkout") -> str:
    return f"upstream {upstream} {{\n{servers}\n}}\n"


def test_nginx_upstream_servers_are_read_with_what_deployflow_keeps_and_drops():
    block = parse_nginx_upstream(NGINX_FILE, "checkout")

    assert (block.kind, block.name) == ("upstream", "checkout")
    assert block.dropped == ("least_conn;", "keepalive 32;")
    assert block.servers == (
        HandWrittenServer(
            "10.0.0.1:8080", 5, weight=3, dropped=("max_fails=3", "fail_timeout=30s")
        ),
        HandWrittenServer("10.0.0.2:8080", 6, weight=1),
        HandWrittenServer("10.0.0.3:8080", 7, down=True),
        HandWrittenServer("10.0.0.9:8080", 8, backup=True),
    )
    assert [s.serves for s in block.servers] == [True, True, False, False]


def test_nginx_quotes_comments_and_layout_do_not_matter():
    text = "upstream 'checkout'{server \"10.0.0.1:8080\"   weight=2;#x\nserver 10.0.0.2:8080;}"

    block = parse_nginx_upstream(text, "checkout")

    assert [(s.address, s.weight) for s in block.servers] == [
        ("10.0.0.1:8080", 2),
        ("10.0.0.2:8080", None),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no 'upstream checkout { ... }' block: it is empty"),
        (
            nginx("server a:1;", "payments"),
            "no 'upstream checkout { ... }' block: it holds upstream payments {...} (line 1)",
        ),
        (
            nginx("server a:1;") + "server { listen 80; }\n",
            "it holds more than upstream checkout: server {...} (line 4)",
        ),
        (
            nginx("server a:1;") * 2,
            "it holds more than upstream checkout: upstream checkout {...} (line 4)",
        ),
        ("upstream checkout {\n  server a:1\n}\n", "line 2: 'server a:1' lacks its ';'"),
        ("upstream checkout {\n  server a:1;\n", "'}' missing at the end"),
        ("upstream checkout { server a:1; }\n}\n", "line 2: '}' closes no block"),
        ("upstream checkout { ; }", "line 1: ';' with no directive before it"),
        ("upstream checkout { server 'a:1; }", "line 1: cannot read"),
        (nginx("  server;"), "line 2: 'server' without an address"),
        (nginx("  server a:1 weight=x;"), "line 2: 'weight=x': the weight is not a number"),
        (nginx("  zone { }"), "line 2: a block inside the upstream"),
    ],
)
def test_nginx_files_deployflow_cannot_read_are_refused_saying_where(text: str, message: str):
    with pytest.raises(ForeignConfig) as refused:
        parse_nginx_upstream(text, "checkout")

    assert message in str(refused.value)


def test_haproxy_backend_servers_are_read_with_what_deployflow_keeps_and_drops():
    block = parse_haproxy_backend(HAPROXY_FILE, "checkout")

    assert (block.kind, block.name) == ("backend", "checkout")
    assert block.dropped == ("option httpchk GET /healthz",)  # balance roundrobin is kept
    assert block.servers == (
        HandWrittenServer(
            "10.0.0.1:8080", 5, weight=10, name="web1", dropped=("check", "inter", "2s")
        ),
        HandWrittenServer("10.0.0.2:8080", 6, name="web2", dropped=("check",)),
        HandWrittenServer("10.0.0.3:8080", 7, down=True, name="canary"),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("# nothing\n", "no 'backend checkout' section: it is empty"),
        (
            "backend payments\n  server a 10.0.0.1:80\n",
            "no 'backend checkout' section: it holds backend payments",
        ),
        (
            "frontend web\n  bind :80\n" + HAPROXY_FILE,
            "it holds more than backend checkout: frontend web",
        ),
        (HAPROXY_FILE + HAPROXY_FILE, "a second backend checkout (line 9)"),
        ("  server a 10.0.0.1:80\n", "line 1: 'server a 10.0.0.1:80' outside any section"),
        ("backend checkout\n  server a\n", "line 2: 'server' needs a name and an address"),
        (
            "backend checkout\n  server a 10.0.0.1:80 weight\n",
            "line 2: 'weight ': the weight is not a number",
        ),
        ("backend checkout\n  server-template web 3 10.0.0.1:80\n", "line 2: server-template"),
        ("backend checkout\n  option httpchk 'GET /\n", "line 2: No closing quotation"),
    ],
)
def test_haproxy_files_deployflow_cannot_read_are_refused_saying_where(text: str, message: str):
    with pytest.raises(ForeignConfig) as refused:
        parse_haproxy_backend(text, "checkout")

    assert message in str(refused.value)


@pytest.mark.parametrize(
    ("address", "default", "key"),
    [
        ("10.0.0.1:8080", None, ("10.0.0.1", 8080)),
        ("10.0.0.1", 80, ("10.0.0.1", 80)),
        ("10.0.0.1", None, None),  # HAProxy without a port: the client's port
        ("Web-1.Internal.:80", None, ("web-1.internal", 80)),
        ("[::1]:8080", None, ("::1", 8080)),
        ("[0:0::1]", 80, ("::1", 80)),
        ("ipv6@::1:8080", None, ("::1", 8080)),
        ("ipv4@127.0.0.1:80", None, ("127.0.0.1", 80)),
        ("unix:/run/app.sock", 80, None),
        ("10.0.0.1:99999", None, None),
        ("10.0.0.1:8000-8010", None, None),
        ("10.0.0.1:²", None, None),
    ],
)
def test_addresses_compare_however_they_are_spelled(
    address: str, default: int | None, key: tuple[str, int] | None
):
    assert address_key(address, default) == key


def test_a_file_serving_exactly_the_stable_list_is_adopted_with_its_losses_named():
    block = parse_nginx_upstream(LOSSY, "checkout")

    adoption = check_adoptable(block, STABLE, CANARY, "nginx")

    assert adoption.losses == (
        "'least_conn;'",
        "'keepalive 32;'",
        "'max_fails=3' on 10.0.0.1:8080",
        "'fail_timeout=30s' on 10.0.0.1:8080",
        "unequal weights (10.0.0.1:8080 3, 10.0.0.2:8080 1): every server of a side gets the same",
    )


def test_a_plain_file_is_adopted_without_losses_also_with_the_canary_absent():
    block = parse_nginx_upstream(
        nginx("server 10.0.0.1:8080;\nserver 10.0.0.2:8080 weight=2;"), "checkout"
    )

    assert check_adoptable(block, STABLE, CANARY, "nginx").losses == (
        "unequal weights (10.0.0.1:8080 1, 10.0.0.2:8080 2): every server of a side gets the same",
    )
    equal = parse_nginx_upstream(
        nginx("server 10.0.0.1:8080;\nserver 10.0.0.2:8080 weight=1;"), "checkout"
    )
    assert check_adoptable(equal, STABLE, CANARY, "nginx").losses == ()


@pytest.mark.parametrize(
    ("servers", "problem"),
    [
        ("server 10.0.0.1:8080;", "it lacks the stable server 10.0.0.2:8080"),
        (
            "server 10.0.0.1:8080; server 10.0.0.2:8080; server 10.0.0.7:8080;",
            "10.0.0.7:8080 is in neither the stable nor the canary list",
        ),
        (
            "server 10.0.0.1:8080; server 10.0.0.2:8080; server 10.0.0.3:8080;",
            "canary server 10.0.0.3:8080 takes traffic in the file",
        ),
        (
            "server 10.0.0.1:8080; server 10.0.0.2:8080 down;",
            "stable server 10.0.0.2:8080 takes no traffic in the file",
        ),
        (
            "server 10.0.0.1:8080; server 10.0.0.2:8080; server 10.0.0.3:8080 backup;",
            "10.0.0.3:8080 is a backup server",
        ),
        (
            "server 10.0.0.1:8080; server 10.0.0.2:8080; server 10.0.0.1:8080;",
            "10.0.0.1:8080 is listed twice",
        ),
        (
            "server 10.0.0.1:8080; server 10.0.0.2:8080; server unix:/x.sock;",
            "unix:/x.sock is not a host:port deployflow can compare",
        ),
    ],
)
def test_a_file_whose_servers_are_not_the_spec_s_is_refused_saying_what_differs(
    servers: str, problem: str
):
    block = parse_nginx_upstream(nginx(servers), "checkout")

    with pytest.raises(ForeignConfig) as refused:
        check_adoptable(block, STABLE, CANARY, "nginx")

    message = str(refused.value)
    assert problem in message
    assert "upstream checkout lists 10.0.0.1:8080" in message
    assert f"the spec expects the stable list {STABLE} taking traffic" in message
    assert f"the canary list {CANARY} absent or down" in message


def test_a_file_serving_the_canary_list_asks_whether_the_lists_are_swapped():
    block = parse_nginx_upstream(nginx("server 10.0.0.3:8080;"), "checkout")

    with pytest.raises(ForeignConfig, match="are stable and canary swapped"):
        check_adoptable(block, STABLE, CANARY, "nginx")


def test_haproxy_canary_servers_at_weight_0_or_disabled_count_as_absent():
    text = HAPROXY_FILE.replace("check inter 2s weight 10", "weight 1").replace(
        "disabled", "weight 0"
    )
    block = parse_haproxy_backend(text, "checkout")

    adoption = check_adoptable(block, STABLE, CANARY, "haproxy")

    assert adoption.losses == ("'option httpchk GET /healthz'", "'check' on 10.0.0.2:8080")


def test_recorded_reads_deployflow_s_own_file_and_a_missing_one_as_before():
    own = render_upstream(
        "checkout", STABLE, CANARY, Weights.canary_at(25), {"10.0.0.2:8080": ServerState.DRAIN}
    )

    assert recorded("nginx", PATH, own, "checkout", STABLE, CANARY).weights == Weights.canary_at(25)
    assert recorded("nginx", PATH, own, "checkout", STABLE, CANARY).states == {
        "10.0.0.2:8080": ServerState.DRAIN
    }
    assert recorded("nginx", PATH, None, "checkout", STABLE, CANARY).weights == STABLE_ONLY
    backend = render_backend("checkout", STABLE, CANARY, Weights.canary_at(100))
    assert recorded("haproxy", PATH, backend, "checkout", STABLE, CANARY).adoption is None


def test_recorded_refuses_a_lossy_takeover_unless_an_operator_accepts_it():
    def read(accept_losses: bool) -> Recorded:
        return recorded(
            "nginx", PATH, LOSSY, "checkout", STABLE, CANARY, accept_losses=accept_losses
        )

    with pytest.raises(ApplicationError) as refused:
        read(accept_losses=False)

    assert refused.value.type == ROUTER_CONFIG_FOREIGN
    assert refused.value.non_retryable
    assert refused.value.message.startswith(
        f"upstream file {PATH} was not written by deployflow; its servers are the spec's "
        "stable list, but deployflow's file would not keep: 'least_conn;'; 'keepalive 32;'"
    )
    assert (
        "`deployflow router adopt <spec file>` shows the file it would write"
        in refused.value.message
    )
    assert str(backup_path(PATH)) == "/etc/nginx/conf.d/.checkout-upstream.conf.pre-deployflow"
    accepted = read(accept_losses=True)
    assert accepted.weights == STABLE_ONLY
    assert accepted.adoption is not None


def test_recorded_refuses_a_mismatch_with_the_file_the_spec_and_what_to_do():
    with pytest.raises(ApplicationError) as refused:
        recorded(
            "nginx",
            PATH,
            nginx("server 10.0.0.7:8080;"),
            "checkout",
            STABLE,
            CANARY,
            accept_losses=True,
        )

    assert refused.value.type == ROUTER_CONFIG_FOREIGN
    assert refused.value.message == (
        f"upstream file {PATH} was not written by deployflow and cannot be taken over: "
        "upstream checkout lists 10.0.0.7:8080; the spec expects the stable list "
        "['10.0.0.1:8080', '10.0.0.2:8080'] taking traffic and the canary list "
        "['10.0.0.3:8080'] absent or down: 10.0.0.7:8080 is in neither the stable nor the "
        "canary list; it lacks the stable servers 10.0.0.1:8080, 10.0.0.2:8080. Make the "
        "spec's stable list the servers that take traffic now (or edit the file to match "
        "the spec). Check with `deployflow router adopt <spec file>`; or move the file away "
        "and write a fresh one with `deployflow router init <spec file>`"
    )


# -- any text: parsed, or a clear refusal; never another exception ---------------------

_NGINX_PIECES = st.sampled_from(
    ["upstream", "checkout", "server", "10.0.0.1:8080", "10.0.0.3:8080", "weight=2", "weight=",
     "down", "backup", "max_fails=1", "{", "}", ";", "#", "\n", " ", "'", '"', "\\", "[::1]:80",
     "unix:/x", "keepalive 8;", "${x}"]
)  # fmt: skip
_HAPROXY_PIECES = st.sampled_from(
    ["backend", "checkout", "frontend", "server", "web1", "10.0.0.1:8080", "10.0.0.3:8080",
     "weight", "0", "7", "disabled", "backup", "check", "server-template", "balance", "\n",
     " ", "#", "'", '"', "\\", "ipv6@::1:80"]
)  # fmt: skip


@st.composite
def _mutated(draw: st.DrawFn, text: str, pieces: st.SearchStrategy[str]) -> str:
    """``text`` with a few spans replaced by a piece, a few characters, or nothing."""
    for _ in range(draw(st.integers(0, 4))):
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, min(len(text), start + 12)))
        text = text[:start] + draw(st.one_of(pieces, st.text(max_size=3))) + text[end:]
    return text


_ADDRESSES = st.one_of(
    st.sampled_from([*STABLE, *CANARY, "10.0.0.9:1", "[::1]:80", "unix:/x", "web", "a:b:c"]),
    st.text(max_size=10),
)


def _blocks(
    head: str, server: str, end: str, tail: str, params: list[str]
) -> st.SearchStrategy[str]:
    """A well-formed block of ``server`` lines (each ending in ``end``) with any
    addresses and parameters."""
    line = st.builds(
        lambda address, chosen: " ".join([server, address, *chosen]) + end,
        _ADDRESSES,
        st.lists(st.one_of(st.sampled_from(params), st.text(max_size=6)), max_size=4),
    )
    return st.lists(line, max_size=5).map(lambda lines: head + "".join(lines) + tail)


def _texts(
    base: str, pieces: st.SearchStrategy[str], blocks: st.SearchStrategy[str]
) -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=200),
        st.lists(pieces, max_size=60).map("".join),
        st.lists(pieces, max_size=60).map(" ".join),
        _mutated(base, pieces),
        blocks,
    )


def refusal(read: Callable[[], object]) -> str | None:
    """None when ``read()`` succeeds, the message of a ForeignConfig / RouterConfigForeign
    refusal; any other exception escapes (and fails the test)."""
    try:
        read()
    except ForeignConfig as refused:
        return str(refused)
    except ApplicationError as refused:
        return f"{refused.type}: {refused.message}"
    return None


@given(
    _texts(
        NGINX_FILE,
        _NGINX_PIECES,
        _blocks(
            "upstream checkout {\n",
            "  server",
            ";\n",
            "}\n",
            ["weight=", "weight=1", "weight=x", "weight=²", "down", "backup", "max_fails=2", ";"],
        ),
    )
)
@example("upstream checkout {" * 5000)
@example(nginx("server 10.0.0.1:8080; server 10.0.0.2:8080 weight=9999999;"))
def test_any_nginx_text_is_read_or_refused_clearly(text: str):
    message = refusal(
        lambda: check_adoptable(parse_nginx_upstream(text, "checkout"), STABLE, CANARY, "nginx")
    )
    assert message is None or len(message) > 10


@given(
    _texts(
        HAPROXY_FILE,
        _HAPROXY_PIECES,
        _blocks(
            "backend checkout\n",
            "  server web",
            "\n",
            "",
            ["weight", "1", "0", "x", "disabled", "backup", "check", "#"],
        ),
    )
)
@example("backend checkout\n server web1 10.0.0.1:8080 weight 1 weight")
def test_any_haproxy_text_is_read_or_refused_clearly(text: str):
    message = refusal(lambda: recorded("haproxy", PATH, text, "checkout", STABLE, CANARY))
    assert message is None or message.startswith(
        f"{ROUTER_CONFIG_FOREIGN}: backend file {PATH} was not written by deployflow"
    )


@given(st.text(max_size=80), st.one_of(st.none(), st.integers(-5, 70000)))
def test_any_address_has_a_key_or_none(address: str, default: int | None):
    key = address_key(address, default)
    assert key is None or 1 <= key[1] <= 65535
