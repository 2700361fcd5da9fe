"""Keyset paging: following next_cursor visits every post exactly once, also while posts are added."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import insert

from board_service.context import BoardContext
from board_service.posts import posts


def read_all(client, limit: int, between_pages=lambda: None) -> tuple[list[str], int]:
    """Follow next_cursor from the first page to the last; return the ids seen and the page count."""
    seen: list[str] = []
    cursor, pages = None, 0
    while True:
        query = {"limit": limit} if cursor is None else {"limit": limit, "cursor": cursor}
        response = client.get("/api/boards", query_string=query)
        assert response.status_code == 200, response.json
        pages += 1
        assert len(response.json["items"]) <= limit
        seen += [post["id"] for post in response.json["items"]]
        cursor = response.json["next_cursor"]
        if cursor is None:
            return seen, pages
        between_pages()


def test_paging_visits_every_post_once_while_posts_are_added(client, alice, bob):
    originals = [(alice if n % 2 else bob).publish()["id"] for n in range(11)]
    added: list[str] = []

    seen, pages = read_all(client, 3, between_pages=lambda: added.extend([alice.publish()["id"], bob.publish()["id"]]))

    assert len(seen) == len(set(seen)), "a post was seen twice"
    # New posts are newer than the position already reached, so only the originals remain, in order.
    assert seen == originals[::-1]
    assert pages == 4 and len(added) == 6
    assert read_all(client, 100)[0] == (originals + added)[::-1]


def test_a_last_full_page_has_no_next_cursor(client, alice):
    ids = [alice.publish()["id"] for _ in range(6)]

    seen, pages = read_all(client, 3)

    assert seen == ids[::-1] and pages == 2


def test_paging_survives_deletes(client, alice):
    ids = [alice.publish()["id"] for _ in range(7)][::-1]
    first = client.get("/api/boards?limit=3").json
    assert [post["id"] for post in first["items"]] == ids[:3]
    client.delete(f"/api/boards/{ids[2]}", headers=alice.headers)  # the post the cursor points after
    client.delete(f"/api/boards/{ids[4]}", headers=alice.headers)  # a post on the next page

    second = client.get("/api/boards", query_string={"limit": 3, "cursor": first["next_cursor"]}).json

    assert [post["id"] for post in second["items"]] == [ids[3], ids[5], ids[6]]
    assert second["next_cursor"] is None


def test_posts_created_in_the_same_microsecond_are_ordered_by_id(app, client):
    # Two workers can stamp the same instant; the id breaks the tie, so paging still sees each once.
    same_instant = datetime(2026, 11, 27, 8, 0, 0, 123456, tzinfo=UTC)
    ids = sorted(uuid.uuid4().hex for _ in range(7))
    with BoardContext.of(app).engine.begin() as connection:
        connection.execute(
            insert(posts),
            [
                {
                    "id": post_id,
                    "title": "Same time",
                    "content": "x",
                    "author_id": "u-1",
                    "author_name": "A",
                    "created_at": same_instant,
                    "updated_at": same_instant,
                }
                for post_id in ids
            ],
        )

    seen, pages = read_all(client, 2)

    assert seen == ids[::-1] and pages == 4


def test_timestamps_keep_microseconds(app, alice):
    store = BoardContext.of(app).posts
    created = store.add(author_id=alice.id, author_name="Alice", title="T", content="C")

    stored = store.get(created.id)

    assert stored.created_at == created.created_at and stored.created_at.tzinfo is not None
    assert stored.created_at.utcoffset().total_seconds() == 0
