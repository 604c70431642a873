"""A router that names several load balancers (``router.instances``): lint names the field
of every mistake, each instance gets the router with its own host's files and commands,
and ``deployflow worker --host NAME`` polls that instance's task queue."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities import errors
from activities.clients import Clients
from activities.routing.activities import RouterActivities
from activities.routing.base import Weights
from activities.routing.models import GetWeightsInput, SetWeightInput
from activities.routing.spec import RouterSpec, agent_queue
from starters.cli import main, parse_args
from tests.workflows.harness import rollout
from workers.options import WorkerOptions
from workers.usage import UsageError
from workflows.core.spec import SpecError
from workflows.rollouts.emergency import flip_target

NGINX = {
    "upstream": "app",
    "configPath": "/etc/nginx/conf.d/app.conf",
    "stable": ["10.0.0.1:80"],
    "canary": ["10.0.0.2:80"],
}


def problems(router: dict[str, Any]) -> list[str]:
    with pytest.raises(SpecError) as raised:
        rollout([{"setWeight": 50}], router=router)
    return raised.value.problems


def test_each_instance_gets_the_shared_router_with_its_own_files_and_queue():
    router = RouterSpec.model_validate(
        {
            "nginx": NGINX,
            "instances": [
                {"name": "lb-a"},
                {
                    "name": "lb-b.example.com",
                    "taskQueue": "prod-lb-b",
                    "configPath": "/srv/nginx/app.conf",
                    "reloadCommand": ["systemctl", "reload", "nginx"],
                },
            ],
        }
    )
    (a, spec_a), (b, spec_b) = router.on_instances()
    assert (a.queue, b.queue) == ("deployflow-router-lb-a", "prod-lb-b")
    assert spec_a.instances is None
    assert spec_a.nginx == router.nginx
    assert spec_b.nginx is not None
    assert router.nginx is not None
    assert spec_b.nginx.config_path == "/srv/nginx/app.conf"
    assert spec_b.nginx.reload_command == ["systemctl", "reload", "nginx"]
    assert spec_b.nginx.stable == router.nginx.stable  # one pair fronts the same servers
    assert agent_queue("lb-a") == a.queue


def test_a_router_without_instances_serialises_as_it_always_did():
    dumped = RouterSpec.model_validate({"nginx": NGINX}).model_dump(mode="json")
    assert "instances" not in dumped
    assert RouterSpec.model_validate({"nginx": NGINX}).on_instances() == []


@pytest.mark.parametrize(
    ("instances", "expected"),
    [
        (
            [{"name": "lb-a"}, {"name": "lb-a"}],
            "spec.router.instances: instances[1] has the name 'lb-a' of instances[0]",
        ),
        (
            [{"name": "a", "taskQueue": "q"}, {"name": "b", "taskQueue": "q"}],
            "spec.router.instances: instances[1] has the task queue 'q' of instances[0]",
        ),
        (
            [{"name": "lb-a", "taskQueue": "deployflow-router-lb-b"}, {"name": "lb-b"}],
            "instances[1] has the task queue 'deployflow-router-lb-b' of instances[0]",
        ),
        ([{"name": "LB_A"}], "spec.router.instances[0].name: 'LB_A' is not a host name"),
        ([], "spec.router.instances: List should have at least 1 item"),
        ([{"name": "lb-a", "socket": "/run/haproxy.sock"}], "instances[0].socket: a nginx router"),
        ([{"name": "lb-a", "configPath": "relative.conf"}], "instances[0].configPath: 'relative"),
        ([{"name": "lb-a", "password": "x"}], "instances[0].password: Extra inputs"),
    ],
)
def test_lint_names_the_field_of_each_instance_mistake(instances, expected):
    found = problems({"nginx": NGINX, "instances": instances})
    assert any(expected in p for p in found), found


def test_a_kubernetes_router_takes_no_instances():
    istio = {"virtualService": {"name": "checkout"}, "stableService": "s", "canaryService": "c"}
    found = problems({"istio": istio, "instances": [{"name": "lb-a"}]})
    assert any("instances: router istio is reached through its API" in p for p in found), found


def test_an_haproxy_instances_check_command_still_needs_the_config_placeholder():
    haproxy = {k: v for k, v in NGINX.items() if k != "upstream"}
    haproxy |= {"backend": "app", "socket": "/run/haproxy/admin.sock"}
    found = problems(
        {"haproxy": haproxy, "instances": [{"name": "lb-a", "checkCommand": ["haproxy", "-c"]}]}
    )
    assert any("instances[0]: checkCommand: must contain '{config}'" in p for p in found), found


def agent(*argv: str, **env: str) -> WorkerOptions:
    return WorkerOptions.from_args(parse_args(["worker", *argv]), env)


def test_worker_host_makes_an_agent_of_that_load_balancer():
    assert agent().host is None
    assert agent("--host", "lb-a").host == "lb-a"
    assert agent(DEPLOYFLOW_AGENT_HOST="lb-b").host == "lb-b"
    given = agent("--host", "lb-a", "--task-queue", "prod-lb-a")
    assert (given.host, given.agent_queue) == ("lb-a", "prod-lb-a")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--host", "LB A"], "--host: 'LB A' is not a host name"),
        (["--task-queue", "q"], "--task-queue is the agent's task queue: it needs --host NAME"),
    ],
)
def test_a_bad_agent_option_names_the_flag(argv, message):
    with pytest.raises(UsageError, match=message):
        agent(*argv)


def test_router_init_on_a_load_balancer_uses_that_hosts_file(tmp_path, capsys):
    lb_b_file = tmp_path / "lb-b.conf"
    router = {
        "nginx": {**NGINX, "configPath": str(tmp_path / "shared.conf")},
        "instances": [{"name": "lb-a"}, {"name": "lb-b", "configPath": str(lb_b_file)}],
    }
    spec = tmp_path / "rollout.yaml"
    body = rollout([{"setWeight": 50}], router=router, analysisTemplates=[])
    spec.write_text(yaml.safe_dump(body.model_dump(mode="json")))
    assert main(["router", "init", str(spec), "--host", "lb-b", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["file"] == str(lb_b_file)
    assert main(["router", "init", str(spec)]) == 2
    assert "several load balancers (lb-a, lb-b): say which this is with --host NAME" in (
        capsys.readouterr().err
    )
    assert main(["router", "init", str(spec), "--host", "lb-c"]) == 2
    assert "--host lb-c: not one of the router's instances (lb-a, lb-b)" in capsys.readouterr().err


NOP = RouterSpec.model_validate({"nop": {"stable": ["10.0.0.1:80"], "canary": ["10.0.0.2:80"]}})


def test_an_agent_refuses_a_shift_meant_for_another_load_balancer():
    clients = Clients()
    agent_of_a = RouterActivities(clients, host="lb-a")
    shift = SetWeightInput(router=NOP, weights=Weights.canary_at(20), key="k", instance="lb-b")
    with pytest.raises(ApplicationError) as raised:
        agent_of_a.set_weight(shift)
    assert raised.value.type == errors.WRONG_LOAD_BALANCER
    assert raised.value.non_retryable
    assert "set_weight for load balancer lb-b reached the agent of lb-a" in raised.value.message
    held = ActivityEnvironment().run(agent_of_a.get_weights, GetWeightsInput(router=NOP))
    assert held == Weights(stable=100, canary=0)  # nothing applied


def test_an_agent_applies_its_own_and_unnamed_inputs_and_the_worker_any():
    env = ActivityEnvironment()
    for routing, instance in [
        (RouterActivities(Clients(), host="lb-a"), "lb-a"),
        (RouterActivities(Clients(), host="lb-a"), None),  # sent before inputs named hosts
        (RouterActivities(Clients()), "lb-b"),  # the central worker checks nothing
    ]:
        shift = SetWeightInput(
            router=NOP, weights=Weights.canary_at(20), key="k", instance=instance
        )
        assert env.run(routing.set_weight, shift) == Weights.canary_at(20)


def test_inputs_without_an_instance_serialise_as_before():
    """Histories recorded before inputs named their instance replay: no new field."""
    shift = SetWeightInput(router=NOP, weights=Weights.canary_at(20), key="k")
    assert set(json.loads(shift.model_dump_json())) == {"router", "weights", "key"}
    named = shift.model_copy(update={"instance": "lb-a"})
    assert json.loads(named.model_dump_json())["instance"] == "lb-a"


def split(stable: int) -> Weights:
    return Weights(stable=stable, canary=100 - stable)


@pytest.mark.parametrize(
    ("held", "flipped_to"),
    [
        ([split(0)], split(100)),  # one router: the other list
        ([split(100)], split(0)),
        ([split(70)], split(100)),  # a split goes to stable
        ([split(0), split(0)], split(100)),
        ([split(0), split(80)], split(100)),  # the whole one says the canary list is live
        ([split(100), split(80)], split(0)),  # ... the stable list is live
        ([split(20), split(80)], split(100)),  # none whole
        ([split(0), split(100)], split(100)),  # different lists live: stable
    ],
)
def test_an_emergency_flip_sends_every_load_balancer_to_one_split(held, flipped_to):
    assert flip_target(held) == flipped_to
