"""Post storage in SQL (SQLite by default, PostgreSQL in production), paged newest first by keyset."""

from __future__ import annotations

import base64
import json
import re
import uuid
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Engine,
    Index,
    MetaData,
    Row,
    String,
    Table,
    Text,
    and_,
    delete,
    insert,
    or_,
    select,
    update,
)

from shared.database import as_utc

# The models; databases get them from board_service/migrations/, and tests/migrations checks the two agree.
metadata = MetaData()

posts = Table(
    "posts",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("title", String(200), nullable=False),
    Column("content", Text, nullable=False),
    # The author as the access token named them at creation: the board keeps its own view of
    # authors instead of asking the auth service. The issuer decides their shape, so no length cap.
    Column("author_id", Text, nullable=False),
    Column("author_name", Text, nullable=False),
    # Microsecond precision on both databases, so the paging order is the order of creation.
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Newest-first paging walks this index from its end.
    Index("ix_posts_created_at_id", "created_at", "id"),
)

_POST_ID = re.compile(r"[0-9a-f]{32}")
_CURSOR_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"
# Far above any cursor we issue (about 90 characters), far below what could make json.loads recurse deeply.
MAX_CURSOR_LENGTH = 200


class PostNotFound(Exception):
    """No post has this id."""


class NotAuthor(Exception):
    """The caller did not write this post, so may not change or delete it."""


class InvalidCursor(ValueError):
    """The paging cursor is not one this service issued."""


@dataclass(frozen=True, slots=True)
class Post:
    id: str
    title: str
    content: str
    author_id: str
    author_name: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Post]
    next_cursor: str | None


def encode_cursor(created_at: datetime, post_id: str) -> str:
    """Return the opaque cursor for the position just after this post in newest-first order."""
    position = json.dumps([created_at.strftime(_CURSOR_TIME), post_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(position.encode()).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Return the (created_at, id) position a cursor names, or raise InvalidCursor."""
    # A cursor only names a position, never grants anything, so strict parsing is enough: a forged
    # one that still parses just starts a page elsewhere, which paging could reach anyway.
    try:
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise ValueError("too long")
        position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not (isinstance(position, list) and len(position) == 2 and all(isinstance(part, str) for part in position)):
            raise ValueError("not a [time, id] pair")
        created, post_id = position
        if not _POST_ID.fullmatch(post_id):
            raise ValueError("not a post id")
        created_at = datetime.strptime(created, _CURSOR_TIME).replace(tzinfo=UTC)
    except ValueError:  # also base64's binascii.Error, JSON and UTF-8 decoding errors
        raise InvalidCursor(cursor) from None
    # Only the exact text we would issue is accepted: no padding, stray characters or variants.
    if encode_cursor(created_at, post_id) != cursor:
        raise InvalidCursor(cursor)
    return created_at, post_id


def _post(row: Row[Any]) -> Post:
    values = dict(row._mapping)
    values["created_at"] = as_utc(values["created_at"])
    values["updated_at"] = as_utc(values["updated_at"])
    return Post(**values)


class PostStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, *, author_id: str, author_name: str, title: str, content: str) -> Post:
        now = datetime.now(UTC)
        post = Post(
            id=uuid.uuid4().hex,
            title=title,
            content=content,
            author_id=author_id,
            author_name=author_name,
            created_at=now,
            updated_at=now,
        )
        with self.engine.begin() as connection:
            connection.execute(insert(posts).values(**asdict(post)))
        return post

    def get(self, post_id: str) -> Post:
        with self.engine.connect() as connection:
            return self._find(connection, post_id)

    def page(self, *, limit: int, cursor: str | None = None) -> Page:
        """Return up to `limit` posts older than the cursor's position, newest first."""
        query = (
            select(posts).order_by(posts.c.created_at.desc(), posts.c.id.desc()).limit(limit + 1)
        )  # one more than asked tells whether another page exists
        if cursor is not None:
            created_at, post_id = decode_cursor(cursor)
            # Keyset, not OFFSET: posts added meanwhile are newer than the position, so they can
            # neither shift a post onto the next page twice nor push one past unseen.
            query = query.where(
                or_(posts.c.created_at < created_at, and_(posts.c.created_at == created_at, posts.c.id < post_id))
            )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        items = [_post(row) for row in rows[:limit]]
        if len(rows) <= limit:
            return Page(items=items, next_cursor=None)
        return Page(items=items, next_cursor=encode_cursor(items[-1].created_at, items[-1].id))

    def update(self, post_id: str, *, editor_id: str, title: str | None = None, content: str | None = None) -> Post:
        """Change the given fields of the editor's own post; None keeps a field."""
        changes: dict[str, Any] = {k: v for k, v in (("title", title), ("content", content)) if v is not None}
        with self.engine.begin() as connection:
            post = self._find_authored(connection, post_id, editor_id)
            if not changes:
                return post
            changes["updated_at"] = datetime.now(UTC)
            result = connection.execute(update(posts).where(posts.c.id == post_id).values(**changes))
            if result.rowcount == 0:
                raise PostNotFound(post_id)  # deleted between our read and our write
        return replace(post, **changes)

    def delete(self, post_id: str, *, editor_id: str) -> None:
        with self.engine.begin() as connection:
            self._find_authored(connection, post_id, editor_id)
            result = connection.execute(delete(posts).where(posts.c.id == post_id))
            if result.rowcount == 0:
                raise PostNotFound(post_id)  # deleted between our read and our write

    def _find(self, connection: Connection, post_id: str, *, for_update: bool = False) -> Post:
        # Ids we never issue are not looked up: they cannot exist, and odd bytes (NUL) upset PostgreSQL.
        if not _POST_ID.fullmatch(post_id):
            raise PostNotFound(post_id)
        query = select(posts).where(posts.c.id == post_id)
        if for_update:
            query = query.with_for_update()  # PostgreSQL locks the row; SQLite ignores it
        row = connection.execute(query).first()
        if row is None:
            raise PostNotFound(post_id)
        return _post(row)

    def _find_authored(self, connection: Connection, post_id: str, editor_id: str) -> Post:
        post = self._find(connection, post_id, for_update=True)
        if post.author_id != editor_id:
            raise NotAuthor(post_id)
        return post
