"""Service databases brought to head by the services' real migrations, as `db upgrade` does."""

from __future__ import annotations

from shared.database import create_database_engine
from shared.migrations import MigrationHistory, upgrade


def migrate(database_url: str, history: MigrationHistory) -> None:
    """Upgrade the database at `database_url` to the head of `history`."""
    engine = create_database_engine(database_url)
    try:
        upgrade(engine, history)
    finally:
        engine.dispose()
