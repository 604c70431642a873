"""`deployflow ui-views`: the Temporal UI links that tell outcomes apart, for this UI and
namespace (tests/integration/test_cli_light_commands.py runs their queries on the server)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

from starters.cli import main


def test_each_view_links_to_the_workflows_list_with_its_query_and_its_name(capsys, monkeypatch):
    monkeypatch.setenv("DEPLOYFLOW_UI_URL", "https://temporal.example.com/")
    monkeypatch.setenv("TEMPORAL_NAMESPACE", "deploys")
    assert main(["ui-views", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["columns"] == ["DeployPhase", "DeployService", "DeployEnvironment"]
    views = {view["name"]: view for view in report["views"]}
    rolled_back = views["Rollouts: rolled back"]
    assert rolled_back["query"] == 'DeployPhase = "RolledBack"'
    url = urlsplit(rolled_back["url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == (
        "https://temporal.example.com/namespaces/deploys/workflows"
    )
    assert parse_qs(url.query) == {
        "query": ['DeployPhase = "RolledBack"'],
        "savedQuery": ["Rollouts: rolled back"],
    }
    assert {"Rollouts: aborted", "Rollouts: promoted", "Incidents: open"} <= set(views)


def test_a_service_and_environment_narrow_every_view_and_name_it(capsys, monkeypatch):
    monkeypatch.delenv("DEPLOYFLOW_UI_URL", raising=False)
    monkeypatch.delenv("TEMPORAL_NAMESPACE", raising=False)
    assert main(["ui-views", "--service", "checkout", "--env", "production"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        "Rollouts: rolled back (checkout in production)\n"
        '  DeployPhase = "RolledBack" AND DeployService = "checkout" '
        'AND DeployEnvironment = "production"\n'
        "  http://localhost:8233/namespaces/default/workflows?query=DeployPhase+%3D+"
    )
    assert out.count('AND DeployService = "checkout" AND DeployEnvironment = "production"') == 6
    assert "Configure Columns adds DeployPhase, DeployService, DeployEnvironment" in out
