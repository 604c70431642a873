"""docker-compose.temporal.yml without Docker: the services wait for what they need, the
one-shot jobs' shell scripts parse (and pass shellcheck when it is installed), and run
against stand-ins for ``temporal-sql-tool`` and ``temporal``: the schema job stops on any
error but "already exists", the setup job's two retry loops each get their own budget."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((REPO / "docker-compose.temporal.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]


def script(service: str) -> str:
    """The job's ``/bin/sh -euc`` script as the container's shell sees it (``$$`` is
    compose's escape for ``$``)."""
    assert SERVICES[service]["entrypoint"] == ["/bin/sh", "-euc"]
    [text] = SERVICES[service]["command"]
    return text.replace("$$", "$")


def option(argv: list[str], name: str) -> str:
    [value] = [a.split("=", 1)[1] for a in argv if a.startswith(f"{name}=")]
    return value


def seconds(duration: str) -> float:
    assert duration.endswith("s"), duration
    return float(duration[:-1])


def test_every_dependency_exists_and_its_condition_can_be_met():
    for name, service in SERVICES.items():
        for dependency, how in service.get("depends_on", {}).items():
            assert dependency in SERVICES, f"{name} depends on unknown {dependency}"
            condition = how["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in SERVICES[dependency], f"{dependency}: no healthcheck"
            elif condition == "service_completed_successfully":
                assert SERVICES[dependency]["restart"] == "no", f"{dependency} is not one-shot"
            else:
                assert condition == "service_started", f"{name}: {condition}"


@pytest.mark.parametrize("name", ["deployflow-worker", "deployflow-serve"])
def test_deployflow_is_built_from_the_repository_and_waits_for_the_search_attributes(name):
    service = SERVICES[name]
    assert service["build"] == "."
    assert (REPO / "Dockerfile").exists()
    assert service["depends_on"] == {
        "temporal-setup": {"condition": "service_completed_successfully"}
    }
    assert service["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert "healthcheck" in service


def test_the_worker_gets_longer_to_stop_than_its_grace_period_and_is_probed_on_readyz():
    worker = SERVICES["deployflow-worker"]
    argv = worker["command"]
    assert argv[0] == "worker"
    assert seconds(worker["stop_grace_period"]) > float(option(argv, "--grace-period"))
    health = option(argv, "--health-listen").rsplit(":", 1)[1]
    assert f"http://127.0.0.1:{health}/readyz" in worker["healthcheck"]["test"][-1]
    metrics = option(argv, "--metrics-listen").rsplit(":", 1)[1]
    assert metrics in worker["expose"]
    assert "ports" not in worker, "published ports would stop --scale deployflow-worker=N"


@pytest.mark.parametrize("service", ["temporal-schema", "temporal-setup"])
def test_the_job_scripts_parse_and_pass_shellcheck(service):
    done = subprocess.run(["sh", "-n", "-c", script(service)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (Debian: apt-get install shellcheck)")
    done = subprocess.run(
        [shellcheck, "--shell=sh", "-"], input=script(service), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout


def stand_in(directory: Path, name: str, body: str) -> None:
    path = directory / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)


def run_job(service: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The job's script with the stand-ins in ``tmp_path/bin`` first on PATH; ``calls``
    records what they were asked."""
    bin_dir = tmp_path / "bin"
    stand_in(bin_dir, "sleep", "exit 0\n")  # the loops' pauses cost nothing here
    return subprocess.run(
        ["/bin/sh", "-euc", script(service)],
        env={
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "STATE": str(tmp_path),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


SQL_TOOL = """echo "$*" >> "$STATE/calls"
case "$*" in
  *" create") echo "$CREATE_SAYS" >&2; exit "$CREATE_EXITS" ;;
esac
"""


def calls(tmp_path: Path) -> list[str]:
    path = tmp_path / "calls"
    return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def sql_tool(tmp_path):
    (tmp_path / "bin").mkdir()
    stand_in(tmp_path / "bin", "temporal-sql-tool", SQL_TOOL)


@pytest.mark.usefixtures("sql_tool")
def test_the_schema_job_goes_on_when_the_databases_already_exist(tmp_path):
    done = run_job(
        "temporal-schema",
        tmp_path,
        CREATE_SAYS='pq: database "temporal" already exists',
        CREATE_EXITS="1",
    )
    assert done.returncode == 0, done.stderr
    made = [c.split(" --db ")[1] for c in calls(tmp_path)]
    assert [m.split()[:2] for m in made] == [
        ["temporal", "create"],
        ["temporal", "setup-schema"],
        ["temporal", "update-schema"],
        ["temporal_visibility", "create"],
        ["temporal_visibility", "setup-schema"],
        ["temporal_visibility", "update-schema"],
    ]
    assert "database temporal exists" in done.stdout


@pytest.mark.usefixtures("sql_tool")
def test_the_schema_job_stops_on_any_other_create_error(tmp_path):
    done = run_job(
        "temporal-schema",
        tmp_path,
        CREATE_SAYS="dial tcp 172.18.0.2:5432: connect: connection refused",
        CREATE_EXITS="1",
    )
    assert done.returncode != 0
    assert "connection refused" in done.stderr
    assert [c.rsplit(" ", 1)[-1] for c in calls(tmp_path)] == ["create"]


TEMPORAL = """case "$1 $2 $3" in
  "operator cluster health") counter=health; failures=$HEALTH_FAILURES ;;
  "operator search-attribute create") counter=attributes; failures=$ATTRIBUTE_FAILURES ;;
  *) echo "$*" >> "$STATE/calls"; exit 0 ;;
esac
n=$(cat "$STATE/$counter" 2>/dev/null || echo 0)
echo $((n + 1)) > "$STATE/$counter"
[ "$n" -ge "$failures" ]
"""


def test_the_setup_job_gives_each_wait_its_own_retries(tmp_path):
    (tmp_path / "bin").mkdir()
    stand_in(tmp_path / "bin", "temporal", TEMPORAL)
    # 20 + 40 failures: within each loop's budget (30 and 60), beyond a shared one.
    done = run_job(
        "temporal-setup",
        tmp_path,
        NAMESPACE="default",
        HEALTH_FAILURES="20",
        ATTRIBUTE_FAILURES="40",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "attributes").read_text().strip() == "41"
    assert calls(tmp_path)[-1] == "operator search-attribute list --namespace default"


def test_the_setup_job_gives_up_when_the_search_attributes_never_register(tmp_path):
    (tmp_path / "bin").mkdir()
    stand_in(tmp_path / "bin", "temporal", TEMPORAL)
    done = run_job(
        "temporal-setup",
        tmp_path,
        NAMESPACE="default",
        HEALTH_FAILURES="0",
        ATTRIBUTE_FAILURES="1000",
    )
    assert done.returncode == 1
    assert "search attributes not registered" in done.stdout
    assert (tmp_path / "attributes").read_text().strip() == "60"
