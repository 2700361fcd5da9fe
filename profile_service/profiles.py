"""Profile storage in SQL (SQLite by default, PostgreSQL in production)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Column, Connection, DateTime, Engine, MetaData, String, Table, select, update
from sqlalchemy.dialects import postgresql, sqlite

from shared.database import as_utc

MAX_USER_ID = 255
MAX_NAME = 50
MAX_BIO = 500

# The models; databases get them from profile_service/migrations/, and tests/migrations checks the two agree.
metadata = MetaData()

profiles = Table(
    "profiles",
    metadata,
    # The access token's `sub`: the auth service owns users, this service only keeps its view of them.
    Column("user_id", String(MAX_USER_ID), primary_key=True),
    Column("name", String(MAX_NAME), nullable=False),
    Column("bio", String(MAX_BIO), nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True, slots=True)
class Profile:
    user_id: str
    name: str
    bio: str
    created_at: datetime
    updated_at: datetime


def _initial_name(token_name: str) -> str:
    # The token's name passed auth's own checks; trim it anyway so a longer one never breaks the insert.
    return token_name.replace("\x00", "").strip()[:MAX_NAME]


class ProfileStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        dialect = {"sqlite": sqlite, "postgresql": postgresql}.get(engine.dialect.name)
        if dialect is None:
            raise ValueError(f"unsupported database {engine.dialect.name!r}: use SQLite or PostgreSQL")
        self._insert = dialect.insert

    def find(self, user_id: str) -> Profile | None:
        """Return the profile of `user_id`, or None."""
        # No stored id is that long or holds NUL, which PostgreSQL would refuse as a parameter.
        if len(user_id) > MAX_USER_ID or "\x00" in user_id:
            return None
        with self.engine.connect() as connection:
            return self._select(connection, user_id)

    def find_or_create(self, user_id: str, token_name: str) -> Profile:
        """Return the profile of `user_id`, creating it with `token_name` on first access."""
        found = self.find(user_id)
        if found is not None:
            return found  # the common case: one read, no write lock
        with self.engine.begin() as connection:
            self._create_if_missing(connection, user_id, token_name)
            return self._require(connection, user_id)

    def update(self, user_id: str, *, token_name: str, name: str | None = None, bio: str | None = None) -> Profile:
        """Change the given fields (None leaves a field as it is), creating the profile first if missing."""
        changes = {key: value for key, value in (("name", name), ("bio", bio)) if value is not None}
        with self.engine.begin() as connection:
            # Write first: on SQLite a transaction that starts with a read cannot always upgrade to a write.
            self._create_if_missing(connection, user_id, token_name)
            if changes:
                connection.execute(
                    update(profiles)
                    .where(profiles.c.user_id == user_id)
                    .values(**changes, updated_at=datetime.now(UTC))
                )
            return self._require(connection, user_id)

    def _create_if_missing(self, connection: Connection, user_id: str, token_name: str) -> None:
        # Concurrent first accesses race here; the loser's insert is a no-op instead of an IntegrityError.
        now = datetime.now(UTC)
        connection.execute(
            self._insert(profiles)
            .values(user_id=user_id, name=_initial_name(token_name), bio="", created_at=now, updated_at=now)
            .on_conflict_do_nothing(index_elements=[profiles.c.user_id])
        )

    def _require(self, connection: Connection, user_id: str) -> Profile:
        profile = self._select(connection, user_id)
        if profile is None:  # only if someone deleted the row inside our transaction's window
            raise RuntimeError(f"profile {user_id} vanished right after it was written")
        return profile

    @staticmethod
    def _select(connection: Connection, user_id: str) -> Profile | None:
        row = connection.execute(
            select(
                profiles.c.user_id, profiles.c.name, profiles.c.bio, profiles.c.created_at, profiles.c.updated_at
            ).where(profiles.c.user_id == user_id)
        ).first()
        if row is None:
            return None
        return Profile(row.user_id, row.name, row.bio, as_utc(row.created_at), as_utc(row.updated_at))
