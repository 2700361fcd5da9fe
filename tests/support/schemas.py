"""Service databases brought to head by the services' real migrations, as `db upgrade` does."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from sqlalchemy.engine import make_url

from shared.database import create_database_engine
from shared.migrations import MigrationHistory, upgrade

# One migrated SQLite file per service and test process; a new database starts as a copy of it,
# which is what the migrations would write, in a fraction of the time (the migrations themselves
# are tested in tests/migrations/).
_SQLITE_TEMPLATES: dict[str, Path] = {}


def _upgrade(database_url: str, history: MigrationHistory) -> None:
    engine = create_database_engine(database_url)
    try:
        upgrade(engine, history)
    finally:
        engine.dispose()


def migrate(database_url: str, history: MigrationHistory) -> None:
    """Upgrade the database at `database_url` to the head of `history`."""
    url = make_url(database_url)
    target = Path(url.database) if url.get_backend_name() == "sqlite" and url.database else None
    if target is None or target.exists():
        _upgrade(database_url, history)
        return
    template = _SQLITE_TEMPLATES.get(history.version_table)
    if template is None:
        template = Path(tempfile.mkdtemp(prefix="schema-")) / f"{history.version_table}.db"
        _upgrade(f"sqlite:///{template}", history)
        _SQLITE_TEMPLATES[history.version_table] = template
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, target)
