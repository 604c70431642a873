"""The custom search attributes deployflow keeps current, for filtering in the Temporal UI.

They must be registered on the namespace first: ``deployflow dev-server`` does it at start;
for a shared cluster see docker-compose.temporal.yml.

``DeployGroups`` (a keyword list: a rollout's ``spec.groups``) is set by the starter in the
start call, never by the workflow, so a scope rollback finds a service's groups in
visibility; runs started before it existed do not have it (``groups_of`` says None).
"""

from __future__ import annotations

from typing import Final

from temporalio.common import (
    SearchAttributeIndexedValueType,
    SearchAttributeKey,
    TypedSearchAttributes,
)

DEPLOY_SERVICE = SearchAttributeKey.for_keyword("DeployService")
DEPLOY_ENVIRONMENT = SearchAttributeKey.for_keyword("DeployEnvironment")
DEPLOY_STRATEGY = SearchAttributeKey.for_keyword("DeployStrategy")
DEPLOY_PHASE = SearchAttributeKey.for_keyword("DeployPhase")
DEPLOY_GROUPS = SearchAttributeKey.for_keyword_list("DeployGroups")

ALL = (DEPLOY_SERVICE, DEPLOY_ENVIRONMENT, DEPLOY_STRATEGY, DEPLOY_PHASE, DEPLOY_GROUPS)

CLI_TYPES: Final = {
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.KEYWORD_LIST: "KeywordList",
}
"""The ``temporal`` CLI's name of each type these attributes have."""


def groups_of(attributes: TypedSearchAttributes) -> list[str] | None:
    """A rollout's ``spec.groups`` from its search attributes; None when it has none (no
    groups, or started before ``DeployGroups`` existed: read its input instead)."""
    groups = attributes.get(DEPLOY_GROUPS)
    return list(groups) if groups else None
