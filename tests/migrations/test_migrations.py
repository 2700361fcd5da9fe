"""Each service's migrations against empty SQLite and PostgreSQL databases, and against old ones.

The models (the storage modules' SQLAlchemy tables) and the migrated schema must not differ: the
stores are written against the models, while every real database gets its schema from migrations.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from flask import Flask
from sqlalchemy import Column, DateTime, Engine, Index, MetaData, String, Table, Text, insert, inspect, select

import auth_service
import board_service
import profile_service
from auth_service.config import AuthConfig
from auth_service.migrations import HISTORY as AUTH_HISTORY
from auth_service.users import UserStore
from auth_service.users import metadata as auth_metadata
from board_service.config import BoardConfig
from board_service.migrations import HISTORY as BOARD_HISTORY
from board_service.posts import Post, PostStore
from board_service.posts import metadata as board_metadata
from profile_service.config import ProfileConfig
from profile_service.migrations import HISTORY as PROFILE_HISTORY
from profile_service.profiles import ProfileStore
from profile_service.profiles import metadata as profile_metadata
from shared.database import as_utc, create_database_engine
from shared.migrations import MigrationHistory, downgrade, upgrade
from shared.service_context import DatabaseServiceContext
from tests.support.backends import postgres_database
from tests.support.processes import REPO


@dataclass(frozen=True)
class Service:
    history: MigrationHistory
    metadata: MetaData
    # Store row n through the service's own store, and read it back: the data the schema must keep.
    write: Callable[[Engine, int], Any]
    read: Callable[[Engine, Any], Any]
    # The tables create_all made before migrations existed, and row n stored in them as the service
    # then stored it; None while those are still the models and `write`.
    baseline_metadata: MetaData | None = None
    write_at_baseline: Callable[[Engine, int], Any] | None = None


# The board's models before revision 0002 renamed its table: what its create_all made.
BOARD_BASELINE_METADATA = MetaData()
BOARDS = Table(
    "boards",
    BOARD_BASELINE_METADATA,
    Column("id", String(32), primary_key=True),
    Column("title", String(200), nullable=False),
    Column("content", Text, nullable=False),
    Column("author_id", Text, nullable=False),
    Column("author_name", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_boards_created_at_id", "created_at", "id"),
)


def write_board_post(engine: Engine, n: int) -> Post:
    """Store post n in the boards table, as the board service did before revision 0002."""
    now = datetime.now(UTC)
    post = Post(
        id=uuid.uuid4().hex,
        title=f"Notes {n}",
        content="On the engine",
        author_id="u-1",
        author_name="Ada",
        created_at=now,
        updated_at=now,
    )
    with engine.begin() as connection:
        connection.execute(insert(BOARDS).values(**asdict(post)))
    return post


def read_board_posts(engine: Engine) -> list[Post]:
    """Return every post in the boards table, newest first."""
    with engine.connect() as connection:
        rows = connection.execute(select(BOARDS).order_by(BOARDS.c.created_at.desc(), BOARDS.c.id.desc())).all()
    return [
        Post(**{**row._mapping, "created_at": as_utc(row.created_at), "updated_at": as_utc(row.updated_at)})
        for row in rows
    ]


SERVICES = {
    "auth": Service(
        AUTH_HISTORY,
        auth_metadata,
        write=lambda engine, n: UserStore(engine).add(
            email=f"Ada{n}@Example.com", name="Ada", password_hash="$argon2id$x"
        ),
        read=lambda engine, user: UserStore(engine).find_by_email(user.email),
    ),
    "profile": Service(
        PROFILE_HISTORY,
        profile_metadata,
        write=lambda engine, n: ProfileStore(engine).update(f"u-{n}", token_name="Ada", bio="Analyst"),
        read=lambda engine, profile: ProfileStore(engine).find(profile.user_id),
    ),
    "board": Service(
        BOARD_HISTORY,
        board_metadata,
        write=lambda engine, n: PostStore(engine).add(
            author_id="u-1", author_name="Ada", title=f"Notes {n}", content="On the engine"
        ),
        read=lambda engine, post: PostStore(engine).get(post.id),
        baseline_metadata=BOARD_BASELINE_METADATA,
        write_at_baseline=write_board_post,
    ),
}


@pytest.fixture(params=sorted(SERVICES))
def service(request: pytest.FixtureRequest) -> Service:
    return SERVICES[request.param]


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_database_engine(database_url)
    yield engine
    engine.dispose()  # lets the PostgreSQL fixture drop its database


def schema_differences(engine: Engine, service: Service, metadata: MetaData | None = None) -> list[Any]:
    """What autogenerate would write to make the database match the models (nothing, if they agree)."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": service.history.version_table})
        return compare_metadata(context, metadata or service.metadata)


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def current(engine: Engine, service: Service) -> str | None:
    with engine.connect() as connection:
        return service.history.current(connection)


def test_each_service_has_its_own_version_table() -> None:
    assert len({service.history.version_table for service in SERVICES.values()}) == len(SERVICES)


def test_an_empty_database_upgrades_to_head_and_matches_the_models(engine: Engine, service: Service) -> None:
    assert upgrade(engine, service.history) == service.history.head == current(engine, service)
    assert schema_differences(engine, service) == []
    assert tables(engine) == set(service.metadata.tables) | {service.history.version_table}
    written = service.write(engine, 0)
    assert service.read(engine, written) == written


def test_upgrading_a_database_at_head_changes_nothing(engine: Engine, service: Service) -> None:
    upgrade(engine, service.history)
    written = service.write(engine, 0)
    assert upgrade(engine, service.history) == service.history.head
    assert service.read(engine, written) == written


def test_downgrade_to_base_drops_the_tables_and_upgrade_rebuilds_them(engine: Engine, service: Service) -> None:
    upgrade(engine, service.history)
    service.write(engine, 0)
    assert downgrade(engine, service.history, "base") is None
    assert tables(engine) == {service.history.version_table}  # Alembic keeps its (now empty) table
    assert upgrade(engine, service.history) == service.history.head
    assert schema_differences(engine, service) == []
    written = service.write(engine, 0)
    assert service.read(engine, written) == written


def test_a_database_made_by_create_all_is_adopted_with_its_data(engine: Engine, service: Service) -> None:
    # What every service did at start before migrations existed.
    (service.baseline_metadata or service.metadata).create_all(engine)
    assert tables(engine) == service.history.baseline_tables  # what the upgrade recognises as adoptable
    written = [(service.write_at_baseline or service.write)(engine, n) for n in range(3)]
    assert current(engine, service) is None

    assert upgrade(engine, service.history) == service.history.head
    assert [service.read(engine, row) for row in written] == written
    assert schema_differences(engine, service) == []


def test_posts_stored_as_boards_are_read_as_posts_after_0002_and_kept_by_its_downgrade(engine: Engine) -> None:
    board = SERVICES["board"]
    assert upgrade(engine, BOARD_HISTORY, "0001") == "0001"
    written = [write_board_post(engine, n) for n in range(3)]

    assert upgrade(engine, BOARD_HISTORY) == BOARD_HISTORY.head == "0002"
    assert tables(engine) == {"posts", BOARD_HISTORY.version_table}
    assert [PostStore(engine).get(post.id) for post in written] == written
    assert PostStore(engine).page(limit=10).items == written[::-1]
    assert schema_differences(engine, board) == []  # also the index, by its new name

    assert downgrade(engine, BOARD_HISTORY, "0001") == "0001"
    assert tables(engine) == {"boards", BOARD_HISTORY.version_table}
    assert read_board_posts(engine) == written[::-1]
    assert schema_differences(engine, board, BOARD_BASELINE_METADATA) == []

    assert upgrade(engine, BOARD_HISTORY) == "0002"
    assert PostStore(engine).page(limit=10).items == written[::-1]


@pytest.fixture
def postgres_engine() -> Iterator[Engine]:
    """PostgreSQL only: it is the database several processes (jobs, replicas) migrate at once."""
    with postgres_database() as url:
        engine = create_database_engine(url)
        yield engine
        engine.dispose()


def test_two_upgrades_at_once_migrate_once(postgres_engine: Engine, service: Service) -> None:
    engine = postgres_engine
    barrier = threading.Barrier(2)

    def migrate(_: int) -> str | None:
        barrier.wait(timeout=10)
        return upgrade(engine, service.history)

    with ThreadPoolExecutor(max_workers=2) as pool:
        reached = list(pool.map(migrate, range(2)))  # re-raises a thread's failure here
    assert reached == [service.history.head] * 2
    assert schema_differences(engine, service) == []


def test_create_app_leaves_the_schema_to_the_migrations(database_url: str, engine: Engine, keys_dir: Path) -> None:
    apps: list[Flask] = [
        auth_service.create_app(
            AuthConfig(
                database_url=database_url,
                app_env="test",
                signing_key_path=keys_dir / "signing.pem",
                jwks_path=keys_dir / "jwks.json",
            )
        ),
        profile_service.create_app(
            ProfileConfig(database_url=database_url, app_env="test", jwks_path=keys_dir / "jwks.json")
        ),
        board_service.create_app(
            BoardConfig(database_url=database_url, app_env="test", jwks_path=keys_dir / "jwks.json")
        ),
    ]
    for app in apps:
        DatabaseServiceContext.of(app).engine.dispose()
    assert tables(engine) == set()


def test_0002_renames_the_postgresql_primary_key_with_its_table(postgres_engine: Engine) -> None:
    # PostgreSQL named the key after the table: a key still called boards_pkey would mislead whoever
    # reads the schema or writes a migration that names it.
    upgrade(postgres_engine, BOARD_HISTORY)
    assert inspect(postgres_engine).get_pk_constraint("posts")["name"] == "posts_pkey"
    downgrade(postgres_engine, BOARD_HISTORY, "0001")
    assert inspect(postgres_engine).get_pk_constraint("boards")["name"] == "boards_pkey"


@pytest.mark.servers  # runs the command line as a process
@pytest.mark.parametrize("name", sorted(SERVICES))
def test_the_command_line_migrates_the_database_the_service_is_configured_with(name: str, tmp_path: Path) -> None:
    env = {**os.environ, f"{name.upper()}_DATABASE_URL": f"sqlite:///{tmp_path / 'service.db'}"}

    def db(*arguments: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", f"{name}_service", "db", *arguments],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    head = SERVICES[name].history.head
    assert db("upgrade") == f"{name} database at revision {head} (head)\n"
    engine = create_database_engine(env[f"{name.upper()}_DATABASE_URL"])
    try:
        assert schema_differences(engine, SERVICES[name]) == []
    finally:
        engine.dispose()
    assert db("downgrade", "base") == f"{name} database at revision base\n"
