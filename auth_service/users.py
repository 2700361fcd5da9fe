"""User storage in SQL (SQLite by default, PostgreSQL in production)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, Engine, MetaData, String, Table, insert, select, update
from sqlalchemy.exc import IntegrityError

# The models; databases get them from auth_service/migrations/, and tests/migrations checks the two agree.
metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("email", String(320), nullable=False),
    # Emails compare case-insensitively: the unique key is the case-folded address.
    Column("email_key", String(320), nullable=False, unique=True),
    Column("name", String(50), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


class EmailTaken(Exception):
    """Another account already uses this email."""


@dataclass(frozen=True, slots=True)
class User:
    id: str
    email: str
    name: str
    password_hash: str


def email_key(email: str) -> str:
    return email.strip().casefold()


class UserStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, *, email: str, name: str, password_hash: str) -> User:
        user = User(id=uuid.uuid4().hex, email=email.strip(), name=name, password_hash=password_hash)
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    insert(users).values(
                        id=user.id,
                        email=user.email,
                        email_key=email_key(email),
                        name=name,
                        password_hash=password_hash,
                        created_at=datetime.now(UTC),
                    )
                )
        except IntegrityError:
            raise EmailTaken(email) from None
        return user

    def find_by_email(self, email: str) -> User | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                select(users.c.id, users.c.email, users.c.name, users.c.password_hash).where(
                    users.c.email_key == email_key(email)
                )
            ).first()
        return User(*row) if row else None

    def set_password_hash(self, user_id: str, password_hash: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(update(users).where(users.c.id == user_id).values(password_hash=password_hash))
