"""Database migrations around a rollout: the ``Migrator`` seam.

base.py        Migrator (Protocol)
spec.py        MigrationSpec (one-of), AlembicMigrationSpec, CommandMigrationSpec
url.py         the database URL from the worker's environment, and redacting it
alembic.py     AlembicMigrator: alembic's Python API, in-process, one transaction
command.py     CommandMigrator: templated argv hooks (any migration tool)
factory.py     migrator_for(spec, clients)
models.py      the activities' inputs and result
activities.py  MigrationActivities: the resolve_target, current_revision and migrate
               activities

Before traffic moves a workflow records ``current_revision`` and ``resolve_target``, then
``migrate``s up to that concrete revision; on rollback it migrates down to the recorded
revision by name. Never a relative step (``-1``): retried, it would step twice.
"""
