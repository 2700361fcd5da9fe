"""SQLAlchemy engines with sane defaults for SQLite files and PostgreSQL (schemas: shared/migrations.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

# Errors that mean "the database is not reachable now": answered with 503, not 500.
DATABASE_UNAVAILABLE_ERRORS = (OperationalError,)
# How long a statement may wait for a lock (SQLite busy timeout; PostgreSQL lock_timeout and
# statement_timeout) before the request becomes a 503. README and SECURITY.md quote it.
LOCK_WAIT_SECONDS = 5
# How long opening a PostgreSQL connection, or waiting for a pooled one, may take.
CONNECT_SECONDS = 2


def normalize_database_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and use the psycopg 3 driver for them."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def create_database_engine(url: str) -> Engine:
    """Create an engine whose connections fail fast instead of hanging when the database is gone."""
    url = normalize_database_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": LOCK_WAIT_SECONDS, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
            # WAL lets readers and one writer from several gunicorn workers work side by side.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={LOCK_WAIT_SECONDS * 1000}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    # A statement waiting on a lock gives up after LOCK_WAIT_SECONDS (like SQLite's busy_timeout) and
    # becomes a 503; TCP keepalives notice a database host that vanished without closing the connection.
    wait_ms = LOCK_WAIT_SECONDS * 1000
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=5,
        pool_timeout=CONNECT_SECONDS,
        pool_recycle=1800,
        connect_args={
            "connect_timeout": CONNECT_SECONDS,
            "options": f"-c statement_timeout={wait_ms} -c lock_timeout={wait_ms}",
            "keepalives": 1,
            "keepalives_idle": 5,
            "keepalives_interval": 2,
            "keepalives_count": 3,
        },
    )


def as_utc(moment: datetime) -> datetime:
    """A stored timestamp as an aware UTC datetime: SQLite hands back naive ones (we write UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def ping(engine: Engine) -> None:
    """Run a trivial query, raising when the database is unreachable."""
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
