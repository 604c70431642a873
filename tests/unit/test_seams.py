"""The seams hold: workflow code reads specs and sends inputs, and never loads the code that
runs commands, opens sockets or builds clients (that is the worker's, through factories)."""

from __future__ import annotations

import json
import subprocess
import sys

# What a workflow may load of these rooms: the seam, the spec vocabulary, the inputs.
ROOMS = ("activities.routing", "activities.platforms", "activities.migrations")
SPEC_SIDE = {
    *ROOMS,
    *(f"{room}.{name}" for room in ROOMS for name in ("base", "spec", "models")),
    "activities.migrations.url",  # the URL's environment variable name, for the spec
    "activities.routing.kube_spec",  # the Kubernetes routers' spec vocabulary
    "activities.platforms.deployments",  # pure: the pod template a promotion moves to
}

IMPORT_EVERY_WORKFLOW_MODULE = """
import importlib, json, pkgutil, sys
import workflows
for module in pkgutil.walk_packages(workflows.__path__, "workflows."):
    importlib.import_module(module.name)
"""


def loaded_after(imports: str) -> set[str]:
    """``sys.modules`` of a fresh interpreter once it ran ``imports``."""
    script = imports + "\nprint(json.dumps(sorted(sys.modules)))\n"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(result.stdout))


def test_workflows_load_no_router_platform_or_migrator_implementation():
    loaded = loaded_after(IMPORT_EVERY_WORKFLOW_MODULE)

    implementations = {m for m in loaded if m.startswith(ROOMS)} - SPEC_SIDE
    assert implementations == set()
    assert "activities.clients" not in loaded
    assert {m for m in loaded if m.split(".")[0] == "kubernetes"} == set()
    assert {"alembic", "sqlalchemy"} & loaded == set()


def test_the_worker_does_load_them():
    """The check above can fail: the worker's own imports trip it."""
    loaded = loaded_after(IMPORT_EVERY_WORKFLOW_MODULE + "import workers.main\n")

    assert {
        "activities.routing.nginx",
        "activities.routing.haproxy.runtime",
        "activities.routing.files",
        "activities.platforms.process",
        "activities.clients",
        "activities.platforms.kubernetes",
    } <= loaded


def test_workflows_load_neither_the_kubernetes_client_nor_its_test_double():
    loaded = loaded_after(IMPORT_EVERY_WORKFLOW_MODULE)

    assert {m for m in loaded if m.split(".")[0] in ("kubernetes", "kmock")} == set()
    # The Kubernetes names (pure pydantic types) are spec vocabulary; nothing else of the room.
    spec_side = {"activities.kubernetes", "activities.kubernetes.names"}
    assert {m for m in loaded if m.startswith("activities.kubernetes")} - spec_side == set()
