"""Schema migrations with Alembic: each service keeps its own history and version table.

A service's history lives in `<service>/migrations/` (env.py and versions/); Alembic is configured
here in code, so no alembic.ini is needed. `python -m <service> db ...` runs `main` below.
"""

from __future__ import annotations

import argparse
import logging
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, inspect, text

from shared.config import ConfigError
from shared.database import create_database_engine


@dataclass(frozen=True, slots=True)
class MigrationHistory:
    """Where a service's migrations live, and how an unversioned database of it is recognised."""

    service: str
    directory: Path
    version_table: str
    # The revision equal to what `create_all` made before migrations existed, and its tables.
    baseline_revision: str
    baseline_tables: frozenset[str]

    def config(self, connection: Connection) -> Config:
        config = Config()
        config.set_main_option("script_location", str(self.directory))
        config.attributes.update(connection=connection, version_table=self.version_table)
        return config

    @property
    def head(self) -> str | None:
        return ScriptDirectory(str(self.directory)).get_current_head()

    def current(self, connection: Connection) -> str | None:
        """Return the revision the database is at, or None when it has none yet."""
        migration_context = MigrationContext.configure(connection, opts={"version_table": self.version_table})
        return migration_context.get_current_revision()


def run_migrations(target_metadata: MetaData) -> None:
    """Run the pending Alembic command on the connection `MigrationHistory.config` passed; env.py calls this."""
    config = context.config
    context.configure(
        connection=config.attributes["connection"],
        target_metadata=target_metadata,
        version_table=config.attributes["version_table"],
        # SQLite alters tables by copying them; batch mode lets one migration serve both databases.
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def upgrade(engine: Engine, history: MigrationHistory, revision: str = "head") -> str | None:
    """Migrate to `revision`, first adopting a database `create_all` made; return the revision reached."""
    with engine.begin() as connection:
        _one_migrator_at_a_time(connection, history)
        config = history.config(connection)
        if _created_before_migrations(connection, history):
            # Its tables are the baseline's: record that instead of creating them again.
            command.stamp(config, history.baseline_revision)
        command.upgrade(config, revision)
        return history.current(connection)


def downgrade(engine: Engine, history: MigrationHistory, revision: str) -> str | None:
    """Migrate back to `revision` ("base" drops every table); return the revision reached."""
    with engine.begin() as connection:
        _one_migrator_at_a_time(connection, history)
        command.downgrade(history.config(connection), revision)
        return history.current(connection)


def write_revision(engine: Engine, history: MigrationHistory, message: str) -> Path:
    """Write the next migration from what the models add to the database at head; return its path."""
    with engine.begin() as connection:
        script = command.revision(
            history.config(connection), message=message, autogenerate=True, rev_id=f"{int(history.head or 0) + 1:04d}"
        )
    assert isinstance(script, Script)  # one history with one head gives one script
    return Path(script.path)


def _one_migrator_at_a_time(connection: Connection, history: MigrationHistory) -> None:
    # Two upgrades at once (a retried job, two replicas) would both try to create the same tables.
    # PostgreSQL releases the lock with the transaction. SQLite is only migrated by `make run` and
    # tests, one process at a time.
    if connection.dialect.name == "postgresql":
        connection.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": zlib.crc32(history.version_table.encode())}
        )


def _created_before_migrations(connection: Connection, history: MigrationHistory) -> bool:
    # Only some of the baseline's tables means something else made them: migrating from the start
    # then fails on the first one that exists, which is the right answer to an unknown schema.
    tables = set(inspect(connection).get_table_names())
    return history.version_table not in tables and history.baseline_tables <= tables


def main(argv: Sequence[str], history: MigrationHistory, database_url: Callable[[], str]) -> int | str:
    """Run `db upgrade|downgrade|current|revision` against the service's database; return an exit status."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {history.service}_service db", description=f"Migrate the {history.service} service's database."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    upgrade_parser = commands.add_parser(
        "upgrade", help="migrate to REVISION (default head); adopts a database made before migrations"
    )
    upgrade_parser.add_argument("revision", nargs="?", default="head")
    downgrade_parser = commands.add_parser("downgrade", help="migrate back to REVISION (base drops every table)")
    downgrade_parser.add_argument("revision")
    commands.add_parser("current", help="print the revision the database is at")
    revision_parser = commands.add_parser(
        "revision", help="write the next migration from the models (autogenerate, against a database at head)"
    )
    revision_parser.add_argument("-m", "--message", required=True)
    arguments = parser.parse_args(argv)

    # Alembic reports each step it runs ("Running upgrade  -> 0001, ...") through logging, among chatter.
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    steps = logging.getLogger("alembic.runtime.migration")
    steps.setLevel(logging.INFO)
    steps.addFilter(lambda record: record.levelno > logging.INFO or record.getMessage().startswith("Running "))
    try:
        engine = create_database_engine(database_url())
    except ConfigError as exc:
        return str(exc)
    try:
        if arguments.command == "upgrade":
            reached = upgrade(engine, history, arguments.revision)
        elif arguments.command == "downgrade":
            reached = downgrade(engine, history, arguments.revision)
        elif arguments.command == "revision":
            print(f"wrote {write_revision(engine, history, arguments.message)}: review it before committing")
            return 0
        else:
            with engine.connect() as connection:
                reached = history.current(connection)
    finally:
        engine.dispose()
    at_head = " (head)" if reached is not None and reached == history.head else ""
    print(f"{history.service} database at revision {reached or 'base'}{at_head}")
    return 0
