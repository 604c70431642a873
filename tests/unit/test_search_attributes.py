"""deployflow's search attributes: what the dev server registers, what a start call sets."""

from __future__ import annotations

from temporalio.common import SearchAttributePair, TypedSearchAttributes

from starters.devserver import build_command
from workflows.core import search_attributes as sa


def test_the_dev_server_registers_each_attribute_with_its_type():
    command = build_command("temporal")
    registered = [command[i + 1] for i, arg in enumerate(command) if arg == "--search-attribute"]
    assert registered == [
        "DeployService=Keyword",
        "DeployEnvironment=Keyword",
        "DeployStrategy=Keyword",
        "DeployPhase=Keyword",
        "DeployGroups=KeywordList",
    ]


def test_groups_of_a_run_are_its_deploy_groups_or_none_without_them():
    listed = TypedSearchAttributes([SearchAttributePair(sa.DEPLOY_GROUPS, ["backend", "edge"])])
    assert sa.groups_of(listed) == ["backend", "edge"]
    assert sa.groups_of(TypedSearchAttributes([])) is None  # older run, or no groups
