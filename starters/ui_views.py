"""`deployflow ui-views`: links to Temporal UI views that tell rollout outcomes apart.

A rollout that rolled back or was aborted still *completes* as a workflow (its result says
how it ended), so the UI's Status column shows "Completed" for all three outcomes. The
``DeployPhase`` search attribute holds the outcome; filtering on it, or showing it as a
column, tells them apart. Each link opens the workflows list with the view's query and
offers it as a Saved View under its name (Saved Views and columns live in the browser).
"""

from __future__ import annotations

import argparse
import json
from urllib.parse import urlencode

from starters.errors import EXIT_OK
from workers.config import TemporalConfig
from workflows.core.names import INCIDENT_WORKFLOW_TYPE, ROLLOUT_WORKFLOW_TYPES

ROLLOUTS = f"WorkflowType IN ({', '.join(json.dumps(t) for t in ROLLOUT_WORKFLOW_TYPES)})"
VIEWS = (
    ("Rollouts: rolled back", 'DeployPhase = "RolledBack"'),
    ("Rollouts: aborted", 'DeployPhase = "Aborted"'),
    ("Rollouts: promoted", 'DeployPhase = "Promoted"'),
    ("Rollouts: in flight", f'{ROLLOUTS} AND ExecutionStatus = "Running"'),
    (
        "Rollouts: ended without an outcome",
        f'{ROLLOUTS} AND ExecutionStatus != "Running" AND ExecutionStatus != "Completed"',
    ),
    (
        "Incidents: open",
        f'WorkflowType = "{INCIDENT_WORKFLOW_TYPE}" AND ExecutionStatus = "Running"',
    ),
)
COLUMNS = ("DeployPhase", "DeployService", "DeployEnvironment")


def views(service: str | None = None, environment: str | None = None) -> list[tuple[str, str]]:
    """(name, visibility query) of every view, narrowed to a service and/or environment
    (named after them, so each narrowing is a Saved View of its own)."""
    chosen = [
        (a, v) for a, v in (("DeployService", service), ("DeployEnvironment", environment)) if v
    ]
    narrow = "".join(f" AND {attribute} = {json.dumps(value)}" for attribute, value in chosen)
    suffix = f" ({' in '.join(value for _, value in chosen)})" if chosen else ""
    return [(name + suffix, query + narrow) for name, query in VIEWS]


def view_url(config: TemporalConfig, name: str, query: str) -> str:
    """The workflows list filtered by ``query``, offered as the Saved View ``name``."""
    parameters = urlencode({"query": query, "savedQuery": name})
    return f"{config.ui_url}/namespaces/{config.namespace}/workflows?{parameters}"


def ui_views(args: argparse.Namespace) -> int:
    config = TemporalConfig.from_env(args.profile)
    found = views(args.service, args.env)
    if args.json:
        rows = [{"name": n, "query": q, "url": view_url(config, n, q)} for n, q in found]
        print(json.dumps({"views": rows, "columns": list(COLUMNS)}))
        return EXIT_OK
    for name, query in found:
        print(f"{name}\n  {query}\n  {view_url(config, name, query)}")
    print(
        f"\nColumns: under the workflows list, Configure Columns adds {', '.join(COLUMNS)};\n"
        "DeployPhase then says Promoted, RolledBack or Aborted where Status says Completed.\n"
        "Saved Views and columns are kept in the browser that opened the links."
    )
    return EXIT_OK
