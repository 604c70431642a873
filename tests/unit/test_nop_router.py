"""The nop router: a dry run selected in a spec, remembering per worker what it was told."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.clients import Clients
from activities.errors import INVALID_SPEC
from activities.routing.activities import RouterActivities
from activities.routing.base import ServerState, Weights
from activities.routing.factory import rotation_for, router_for
from activities.routing.models import GetWeightsInput, SetServerStatesInput, SetWeightInput
from activities.routing.nop import NopRouter
from activities.routing.spec import RouterSpec
from starters.cli import main
from tests.unit.test_spec import GOOD
from tests.workflows.harness import rollout
from workflows.core.spec import SpecError

NOP = RouterSpec.model_validate({"nop": {"stable": ["10.0.0.1:80"], "canary": ["10.0.0.2:80"]}})
READY, DRAIN = ServerState.READY, ServerState.DRAIN


def test_a_spec_selects_the_nop_router():
    router = router_for(NOP, Clients())

    assert isinstance(router, NopRouter)
    assert NOP.kind == "nop"
    assert NOP.pools() == NOP.nop


def test_it_starts_all_stable_and_every_server_ready():
    clients = Clients()

    assert router_for(NOP, clients).get_weights() == Weights(stable=100, canary=0)
    assert rotation_for(NOP, clients).get_server_states() == {
        "10.0.0.1:80": READY,
        "10.0.0.2:80": READY,
    }


def test_what_one_activity_set_the_next_reads_back_on_the_same_worker():
    routing = RouterActivities(Clients())
    env = ActivityEnvironment()

    applied = env.run(
        routing.set_weight, SetWeightInput(router=NOP, weights=Weights.canary_at(30), key="k")
    )
    states = env.run(
        routing.set_server_states,
        SetServerStatesInput(router=NOP, states={"10.0.0.2:80": DRAIN}, key="k"),
    )

    assert applied == Weights.canary_at(30)
    assert env.run(routing.get_weights, GetWeightsInput(router=NOP)) == Weights.canary_at(30)
    assert states == {"10.0.0.1:80": READY, "10.0.0.2:80": DRAIN}


def test_another_worker_and_other_server_lists_remember_their_own():
    clients = Clients()
    router_for(NOP, clients).set_weights(Weights.canary_at(100))
    other = RouterSpec.model_validate({"nop": {"stable": ["10.0.0.1:80"], "canary": ["c:1"]}})

    assert router_for(NOP, Clients()).get_weights() == Weights(stable=100, canary=0)
    assert router_for(other, clients).get_weights() == Weights(stable=100, canary=0)
    assert router_for(NOP, clients).get_weights() == Weights.canary_at(100)


def test_server_states_survive_a_weight_change_and_unknown_servers_are_refused():
    clients = Clients()
    rotation_for(NOP, clients).set_server_states({"10.0.0.1:80": DRAIN})
    router_for(NOP, clients).set_weights(Weights.canary_at(50))

    with pytest.raises(ApplicationError) as raised:
        rotation_for(NOP, clients).set_server_states({"10.0.0.9:80": DRAIN})

    assert raised.value.type == INVALID_SPEC
    assert raised.value.non_retryable
    assert rotation_for(NOP, clients).get_server_states() == {
        "10.0.0.1:80": DRAIN,
        "10.0.0.2:80": READY,
    }


def test_a_nop_spec_is_checked_like_the_server_lists_of_a_real_router():
    router = {"nop": {"stable": ["10.0.0.1:80"], "canary": ["10.0.0.1:80", "x"]}}

    with pytest.raises(SpecError) as refused:
        rollout([{"setWeight": 50}], router=router)

    assert refused.value.problems == ["spec.router.nop.canary[1]: 'x' is not host:port"]


NOP_ROUTER_YAML = """\
  router:
    nop: {stable: [127.0.0.1:8001], canary: [127.0.0.1:8002]}
"""


@pytest.fixture
def nop_spec_file(tmp_path: Path) -> Path:
    nginx = GOOD[GOOD.index("  router:\n") : GOOD.index("  strategy:\n")]
    path = tmp_path / "rollout.yaml"
    path.write_text(GOOD.replace(nginx, NOP_ROUTER_YAML))
    return path


def test_a_nop_rollout_lints_and_has_no_router_file_to_adopt(nop_spec_file, capsys):
    assert main(["rollout", "lint", str(nop_spec_file)]) == 0

    assert main(["router", "adopt", str(nop_spec_file)]) == 2
    err = capsys.readouterr().err
    assert "router nop keeps no file: nothing to adopt" in err
    assert "Traceback" not in err
