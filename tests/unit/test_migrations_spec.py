"""Migration specs, the one-of, and keeping the database URL out of messages."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from temporalio.exceptions import ApplicationError

from activities.migrations.alembic import AlembicMigrator
from activities.migrations.models import MigrateInput
from activities.migrations.spec import AlembicMigrationSpec, CommandMigrationSpec, MigrationSpec
from activities.migrations.url import database_url, display, redact
from workflows.core.spec import validation_problems

URL = "postgresql+psycopg://app:s3cr%40t%2Fpw@db.internal:5432/checkout"
COMMAND = {
    "upgrade": ["migrate", "up", "{revision}"],
    "downgrade": ["migrate", "down", "{revision}"],
    "current": ["migrate", "version"],
    "target": "20240601_email",
}


def problems(model: type[AlembicMigrationSpec | CommandMigrationSpec | MigrationSpec], data):
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return validation_problems(caught.value), str(caught.value)


def test_alembic_spec_reads_spec_spelling_and_defaults():
    spec = AlembicMigrationSpec.model_validate(
        {"config": "/srv/app/alembic.ini", "urlEnv": "APP_DB", "scriptLocation": "/srv/app/m"}
    )
    assert (spec.target, spec.url_env, spec.script_location) == ("head", "APP_DB", "/srv/app/m")
    assert AlembicMigrationSpec(config="/a.ini").model_dump()["urlEnv"] == "DATABASE_URL"


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("config", "alembic.ini", "config: must be an absolute path on the worker"),
        ("config", "./app/alembic.ini", "config: must be an absolute path on the worker"),
        ("target", "-1", "target: must name a revision (head, a revision id), not a step or range"),
        (
            "target",
            "head+1",
            "target: must name a revision (head, a revision id), not a step or range",
        ),
        (
            "target",
            "ae10:head",
            "target: must name a revision (head, a revision id), not a step or range",
        ),
        (
            "urlEnv",
            "DATABASE-URL",
            "urlEnv: must be the name of an environment variable, like DATABASE_URL",
        ),
        ("urlEnv", "1DB", "urlEnv: must be the name of an environment variable, like DATABASE_URL"),
        (
            "scriptLocation",
            "migrations",
            "scriptLocation: must be an absolute path or a package resource (pkg:dir)",
        ),
    ],
)
def test_alembic_spec_errors_name_the_field(field, value, expected):
    found, _ = problems(AlembicMigrationSpec, {"config": "/srv/app/alembic.ini", field: value})
    assert found == [expected]


def test_a_url_pasted_into_url_env_is_not_echoed_by_the_error():
    found, text = problems(AlembicMigrationSpec, {"config": "/a.ini", "urlEnv": URL})
    assert found == ["urlEnv: must be the name of an environment variable, like DATABASE_URL"]
    assert "s3cr" not in text
    assert "db.internal" not in text


def test_migration_spec_is_a_one_of():
    spec = MigrationSpec.model_validate({"alembic": {"config": "/a.ini", "target": "ae10"}})
    assert (spec.kind, spec.target) == ("alembic", "ae10")
    assert MigrationSpec.model_validate({"command": COMMAND}).target == "20240601_email"
    found, _ = problems(MigrationSpec, {})
    assert found == ["(top level): migrations: set exactly one of alembic, command; got none"]
    found, _ = problems(MigrationSpec, {"alembic": {"config": "/a.ini"}, "command": COMMAND})
    assert found == [
        "(top level): migrations: set exactly one of alembic, command; got alembic, command"
    ]


def test_migrate_input_revision_defaults_to_the_spec_target():
    parsed = MigrateInput.model_validate(
        {"migrations": {"alembic": {"config": "/a.ini"}}, "direction": "upgrade", "key": "wf/m"}
    )
    assert parsed.revision is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"current": ["migrate", "{revision}"]},
            "current[1]: unknown placeholder {revision} (this command takes no placeholders)",
        ),
        (
            {"upgrade": ["migrate", "{version}"]},
            "upgrade[1]: unknown placeholder {version} (this command takes {revision})",
        ),
        (
            {"downgrade": ["migrate", "{revision!r}"]},
            "downgrade[1]: {revision} takes no conversion or format spec",
        ),
        (
            {"upgrade": ["migrate", "{"]},
            "upgrade[1]: Single '{' encountered in format string (write {{ or }} for a literal brace)",
        ),
        ({"upgrade": []}, "upgrade: List should have at least 1 item after validation, not 0"),
        (
            {"target": "head"},
            "target: must be a concrete revision; 'head' means nothing to 'current'",
        ),
        ({"timeoutSeconds": 0}, "timeoutSeconds: Input should be greater than 0"),
    ],
)
def test_command_spec_errors_name_the_field(change, expected):
    found, _ = problems(CommandMigrationSpec, {**COMMAND, **change})
    assert found == [expected]


def test_command_spec_allows_literal_braces():
    spec = CommandMigrationSpec.model_validate({**COMMAND, "current": ["jq", "{{.rev}}"]})
    assert spec.current == ["jq", "{{.rev}}"]


def test_redact_removes_the_url_and_its_password_in_every_spelling():
    text = (
        f"cannot connect to {URL}: password 's3cr@t/pw' rejected "
        "(sent s3cr%40t%2Fpw; query ?password=hunter2)"
    )
    redacted = redact(text, URL)
    assert "s3cr" not in redacted
    assert "postgresql+psycopg://app@db.internal:5432/checkout" in redacted
    with_query = "postgresql://app@db/x?password=hunter2"
    assert "hunter2" not in redact(f"failed: {text} {with_query}", with_query)


def test_display_keeps_what_tells_databases_apart():
    assert display(URL) == "postgresql+psycopg://app@db.internal:5432/checkout"
    assert display("sqlite:////var/db.sqlite") == "sqlite:////var/db.sqlite"


def test_missing_environment_variable_is_invalid_spec_naming_it(monkeypatch):
    monkeypatch.delenv("NO_SUCH_DB_URL", raising=False)
    with pytest.raises(ApplicationError) as caught:
        database_url("NO_SUCH_DB_URL")
    assert caught.value.type == "InvalidSpec"
    assert caught.value.non_retryable
    assert caught.value.message == "environment variable NO_SUCH_DB_URL is not set on this worker"


def test_a_variable_that_holds_no_url_is_named_not_echoed(monkeypatch):
    monkeypatch.setenv("APP_DB", "hunter2 is not a url")
    with pytest.raises(ApplicationError) as caught:
        AlembicMigrator(AlembicMigrationSpec(config="/a.ini", url_env="APP_DB"))
    assert caught.value.message == "APP_DB does not hold a database URL"


def test_a_bare_postgresql_url_means_psycopg_3_with_a_connect_timeout(monkeypatch):
    monkeypatch.setenv("APP_DB", "postgresql://app:pw@db.internal/checkout")
    migrator = AlembicMigrator(AlembicMigrationSpec(config="/a.ini", url_env="APP_DB"))
    assert migrator._bounded_url == (
        "postgresql+psycopg://app:pw@db.internal/checkout?connect_timeout=10"
    )
    monkeypatch.setenv("APP_DB", "postgresql+psycopg://app@db/x?connect_timeout=3")
    migrator = AlembicMigrator(AlembicMigrationSpec(config="/a.ini", url_env="APP_DB"))
    assert migrator._bounded_url == "postgresql+psycopg://app@db/x?connect_timeout=3"
