"""The board database's migration history: env.py and versions/ in this folder."""

from pathlib import Path

from shared.migrations import MigrationHistory

HISTORY = MigrationHistory(
    service="board",
    directory=Path(__file__).parent,
    version_table="alembic_version_board",
    # A database that create_all made before migrations existed holds exactly this revision's tables
    # (`boards`, which revision 0002 renames to `posts`).
    baseline_revision="0001",
    baseline_tables=frozenset({"boards"}),
)
