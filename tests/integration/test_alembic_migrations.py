"""Migrations against a real PostgreSQL: the test project in tests/data/alembic (0001 creates
accounts, 0002 adds accounts.email; alembic-broken.ini adds 0003, which fails halfway)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from structlog.testing import capture_logs
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.clients import Clients
from activities.migrations import activities as migration_activities
from activities.migrations.activities import MigrationActivities
from activities.migrations.models import MigrateInput, MigrationResult, RevisionInput
from activities.migrations.spec import MigrationSpec
from tests.fixtures.postgres import PostgresServer

pytestmark = pytest.mark.integration

MIGRATIONS = MigrationActivities(Clients())

PROJECT = Path(__file__).resolve().parents[1] / "data" / "alembic"
ALEMBIC_CLI = str(Path(sys.executable).parent / "alembic")
PASSWORD = "pa55:w/rd@s3cret"


def alembic(ini: str = "alembic.ini", url_env: str = "APP_DATABASE_URL") -> MigrationSpec:
    return MigrationSpec.model_validate(
        {"alembic": {"config": str(PROJECT / ini), "urlEnv": url_env}}
    )


def up(spec: MigrationSpec, revision: str | None = None) -> MigrationResult:
    return MIGRATIONS.migrate(
        MigrateInput(migrations=spec, revision=revision, direction="upgrade", key="t")
    )


def down(spec: MigrationSpec, revision: str | None) -> MigrationResult:
    return MIGRATIONS.migrate(
        MigrateInput(migrations=spec, revision=revision, direction="downgrade", key="t")
    )


def failed(call, *args) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        call(*args)
    return caught.value


def schema(server: PostgresServer, url: str) -> dict[str, object]:
    """Tables and their columns in ``public``, and what alembic_version holds."""
    with server.connect(url.rsplit("/", 1)[1]) as conn:
        rows = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"
        ).fetchall()
        tables: dict[str, list[str]] = {}
        for table, column in rows:
            tables.setdefault(table, []).append(column)
        versions = []
        if "alembic_version" in tables:
            versions = [r[0] for r in conn.execute("SELECT version_num FROM alembic_version")]
    return {"tables": tables, "alembic_version": versions}


@pytest.fixture
def db(postgres_database, monkeypatch):
    monkeypatch.setenv("APP_DATABASE_URL", postgres_database)
    return postgres_database


def test_upgrade_to_head_records_the_revisions_before_and_after(db, postgres_server):
    spec = alembic()
    key = RevisionInput(migrations=spec, key="wf/migrate")
    assert MIGRATIONS.current_revision(key) is None
    assert MIGRATIONS.resolve_target(key) == "0002_email"

    result = up(spec)

    assert result == MigrationResult(before=None, after="0002_email", changed=True)
    assert MIGRATIONS.current_revision(key) == "0002_email"
    assert schema(postgres_server, db) == {
        "tables": {"accounts": ["id", "name", "email"], "alembic_version": ["version_num"]},
        "alembic_version": ["0002_email"],
    }


def test_migrating_again_to_the_same_revision_changes_nothing(db):
    spec = alembic()
    up(spec, "0002")  # a unique prefix resolves to the full id
    assert up(spec) == MigrationResult(before="0002_email", after="0002_email", changed=False)
    assert down(spec, "0002_email").changed is False


def test_rollback_returns_to_the_recorded_revision_by_name(db, postgres_server):
    spec = alembic()
    up(spec, "0001_accounts")
    recorded = MIGRATIONS.current_revision(RevisionInput(migrations=spec, key="wf/record"))
    before_rollout = schema(postgres_server, db)
    up(spec)

    result = down(spec, recorded)

    assert result == MigrationResult(before="0002_email", after="0001_accounts", changed=True)
    assert schema(postgres_server, db) == before_rollout
    assert down(spec, recorded).changed is False  # a retried rollback is a no-op
    assert down(spec, None) == MigrationResult(before="0001_accounts", after=None, changed=True)
    assert schema(postgres_server, db)["tables"] == {"alembic_version": ["version_num"]}


def test_upgrade_never_goes_down(db):
    spec = alembic()
    up(spec)
    error = failed(up, spec, "0001_accounts")
    assert (error.type, error.non_retryable) == ("MigrationFailed", True)
    assert error.message.startswith("upgrade to 0001_accounts: alembic finished but the database")
    assert error.message.endswith("the schema was left at 0002_email")


def test_a_failing_migration_leaves_the_schema_exactly_as_it_was(db, postgres_server):
    up(alembic(), "0002_email")
    before = schema(postgres_server, db)
    broken = alembic("alembic-broken.ini")
    assert MIGRATIONS.resolve_target(RevisionInput(migrations=broken, key="t")) == "0003_broken"

    error = failed(up, broken)

    assert (error.type, error.non_retryable) == ("MigrationFailed", True)
    assert "upgrade to 0003_broken" in error.message
    assert "function no_such_function() does not exist" in error.message
    assert error.message.endswith("the schema was left at 0002_email")
    assert schema(postgres_server, db) == before  # no audit_log table, no nickname column


def test_all_pending_revisions_run_in_one_transaction(db, postgres_server):
    error = failed(up, alembic("alembic-broken.ini"))
    assert error.message.endswith("the schema was left at base")
    # 0001 and 0002 succeeded before 0003 failed: rolled back with it, version table too.
    assert schema(postgres_server, db) == {"tables": {}, "alembic_version": []}


def test_unknown_revision_is_invalid_spec(db):
    error = failed(up, alembic(), "0009_nope")
    assert (error.type, error.non_retryable) == ("InvalidSpec", True)
    assert "Can't locate revision identified by '0009_nope'" in error.message


def test_missing_environment_variable_is_invalid_spec_naming_it(db):
    error = failed(up, alembic(url_env="CHECKOUT_DATABASE_URL"))
    assert (error.type, error.non_retryable) == ("InvalidSpec", True)
    assert error.message == "environment variable CHECKOUT_DATABASE_URL is not set on this worker"


def test_an_unreachable_database_is_retryable(monkeypatch):
    secret = quote(PASSWORD, safe="")
    monkeypatch.setenv("APP_DATABASE_URL", f"postgresql+psycopg://app:{secret}@127.0.0.1:1/x")
    error = failed(up, alembic())
    assert (error.type, error.non_retryable) == ("DatabaseUnavailable", False)
    assert "Connection refused" in error.message
    assert "s3cret" not in error.message


def test_the_url_and_its_password_appear_in_no_log_line_or_error(
    postgres_server, postgres_database, monkeypatch, caplog
):
    name = postgres_database.rsplit("/", 1)[1]
    url = postgres_server.url(name, password=PASSWORD)  # trust auth: accepted and ignored
    monkeypatch.setenv("APP_DATABASE_URL", url)
    caplog.set_level(logging.DEBUG)
    errors = []
    with capture_logs() as logs:
        up(alembic(), "0001_accounts")
        errors.append(failed(up, alembic("alembic-broken.ini")))
        monkeypatch.setenv("APP_DATABASE_URL", url.replace(f"/{name}", "/no_such_db"))
        errors.append(failed(up, alembic()))

    assert [e.type for e in errors] == ["MigrationFailed", "DatabaseUnavailable"]
    assert {entry["event"] for entry in logs} >= {"migrate", "migrate_failed"}
    texts = [repr(logs), caplog.text] + [str(e) for e in errors] + [repr(e.details) for e in errors]
    for secret in (PASSWORD, "pa55", "s3cret", "pa55%3Aw%2Frd%40s3cret"):
        assert not [t for t in texts if secret in t], secret
    # Nothing chained: a cause's text would reach the workflow history unredacted.
    assert all(e.__cause__ is None and e.__suppress_context__ for e in errors)


def test_the_activity_heartbeats_while_migrating(db, monkeypatch):
    monkeypatch.setattr(migration_activities, "HEARTBEAT_INTERVAL_S", 0.01)
    env = ActivityEnvironment()
    beats: list[object] = []
    env.on_heartbeat = lambda *details: beats.append(details)
    spec = alembic()

    result = env.run(
        MIGRATIONS.migrate, MigrateInput(migrations=spec, direction="upgrade", key="t")
    )

    assert result.after == "0002_email"
    assert beats
    assert beats[0] == ("upgrade to target running",)


# A stand-in migration tool: the revision lives in a file; flags make it fail or lie.
FAKE_TOOL = """
import sys, time
from pathlib import Path
state, action, args = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
if "--exit" in args:
    print("migrate: cannot reach the database", file=sys.stderr)
    sys.exit(int(args[args.index("--exit") + 1]))
if "--sleep" in args:
    time.sleep(30)
if action == "current":
    print("connecting to the database", file=sys.stderr)
    print(f"{state.read_text()} (head)" if state.exists() and state.read_text() else "")
else:
    revision = "r0" if "--lie" in args else args[0]
    state.write_text("" if revision == "base" else revision)
"""


def command_spec(tmp_path: Path, target: str = "r2", **flags: list[str]) -> MigrationSpec:
    tool = tmp_path / "migrate.py"
    tool.write_text(FAKE_TOOL)
    run = [sys.executable, "-I", "-S", str(tool), str(tmp_path / "revision")]
    return MigrationSpec.model_validate(
        {
            "command": {
                "upgrade": [*run, "up", "{revision}", *flags.get("upgrade", [])],
                "downgrade": [*run, "down", "{revision}", *flags.get("downgrade", [])],
                "current": [*run, "current", *flags.get("current", [])],
                "target": target,
                "timeoutSeconds": 1,
            }
        }
    )


def test_command_migrations_are_declarative(tmp_path):
    spec = command_spec(tmp_path)
    assert MIGRATIONS.current_revision(RevisionInput(migrations=spec, key="t")) is None
    assert MIGRATIONS.resolve_target(RevisionInput(migrations=spec, key="t")) == "r2"

    assert up(spec) == MigrationResult(before=None, after="r2", changed=True)
    assert up(spec).changed is False
    assert down(spec, "r1") == MigrationResult(before="r2", after="r1", changed=True)
    assert down(spec, None) == MigrationResult(before="r1", after=None, changed=True)


@pytest.mark.parametrize(
    ("flags", "error_type", "message"),
    [
        (
            {"upgrade": ["--exit", "1"]},
            "MigrationFailed",
            "upgrade to r2: exited 1:\nmigrate: cannot reach the database; the schema was left at r1",
        ),
        (
            {"upgrade": ["--exit", "75"]},
            "DatabaseUnavailable",
            "upgrade to r2: exited 75:\nmigrate: cannot reach the database",
        ),
        (
            {"upgrade": ["--sleep"]},
            "MigrationFailed",
            "upgrade to r2: timed out after 1s and was killed; the schema was left at r1",
        ),
        (
            {"upgrade": ["--lie"]},
            "MigrationFailed",
            "upgrade to r2: the command succeeded but 'current' reports r0; the schema is now at r0, not at r1 as before",
        ),
    ],
)
def test_command_migration_failures(tmp_path, flags, error_type, message):
    (tmp_path / "revision").write_text("r1")
    error = failed(up, command_spec(tmp_path, **flags))
    assert (error.type, error.message) == (error_type, message)
    assert error.non_retryable is (error_type == "MigrationFailed")


def test_a_failing_current_command_is_retryable(tmp_path):
    error = failed(up, command_spec(tmp_path, current=["--exit", "2"]))
    assert (error.type, error.non_retryable) == ("DatabaseUnavailable", False)
    assert error.details[0]["exitCode"] == 2


def test_command_current_reads_what_alembic_current_prints(db, monkeypatch):
    up(alembic())
    monkeypatch.setenv("DATABASE_URL", db)  # the test project's env.py reads it under the CLI
    cli = [ALEMBIC_CLI, "-c", str(PROJECT / "alembic.ini")]
    spec = MigrationSpec.model_validate(
        {
            "command": {
                "upgrade": [*cli, "upgrade", "{revision}"],
                "downgrade": [*cli, "downgrade", "{revision}"],
                "current": [*cli, "current"],  # prints "0002_email (head)"
                "target": "0002_email",
            }
        }
    )
    assert MIGRATIONS.current_revision(RevisionInput(migrations=spec, key="t")) == "0002_email"
