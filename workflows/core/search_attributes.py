"""The custom search attributes deployflow keeps current, for filtering in the Temporal UI.

They must be registered on the namespace first: ``deployflow dev-server`` does it at start;
for a shared cluster see docker-compose.temporal.yml.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

DEPLOY_SERVICE = SearchAttributeKey.for_keyword("DeployService")
DEPLOY_ENVIRONMENT = SearchAttributeKey.for_keyword("DeployEnvironment")
DEPLOY_STRATEGY = SearchAttributeKey.for_keyword("DeployStrategy")
DEPLOY_PHASE = SearchAttributeKey.for_keyword("DeployPhase")

ALL = (DEPLOY_SERVICE, DEPLOY_ENVIRONMENT, DEPLOY_STRATEGY, DEPLOY_PHASE)
