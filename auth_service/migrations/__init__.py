"""The auth database's migration history: env.py and versions/ in this folder."""

from pathlib import Path

from shared.migrations import MigrationHistory

HISTORY = MigrationHistory(
    service="auth",
    directory=Path(__file__).parent,
    version_table="alembic_version_auth",
    # A database that create_all made before migrations existed holds exactly this revision's tables.
    baseline_revision="0001",
    baseline_tables=frozenset({"users"}),
)
