"""The paging cursor codec: pure logic, no I/O."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone

import pytest

from board_service.posts import InvalidCursor, decode_cursor, encode_cursor

POST_ID = "0123456789abcdef0123456789abcdef"
ISSUED = encode_cursor(datetime(2026, 11, 27, 8, 0, 0, 500000, tzinfo=UTC), POST_ID)


@pytest.mark.parametrize(
    "created_at",
    [
        datetime(2026, 11, 27, 8, 0, 0, 0, tzinfo=UTC),
        datetime(2026, 11, 27, 8, 0, 0, 1, tzinfo=UTC),
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ],
)
def test_a_cursor_names_its_position_exactly(created_at):
    cursor = encode_cursor(created_at, POST_ID)

    assert decode_cursor(cursor) == (created_at, POST_ID)
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_a_cursor_is_in_utc_whatever_zone_it_was_made_in():
    in_seoul = datetime(2026, 11, 27, 17, 0, tzinfo=timezone(timedelta(hours=9)))

    created_at, _ = decode_cursor(encode_cursor(in_seoul.astimezone(UTC), POST_ID))

    assert created_at == in_seoul and created_at.tzinfo == UTC


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "=",
        "garbage",
        ISSUED + "==",
        ISSUED[:8] + " " + ISSUED[8:],
        ISSUED[:-2],
        base64.b64encode(b'["2026-11-27T08:00:00.5Z","0123456789abcdef0123456789abcdef"]').decode().rstrip("="),
        base64.b64encode(b'["2026-13-27T08:00:00.000000Z","0123456789abcdef0123456789abcdef"]').decode().rstrip("="),
        base64.b64encode(b"\xff\xfe").decode().rstrip("="),
        base64.b64encode(b"[" * 150).decode().rstrip("="),
    ],
)
def test_anything_but_an_issued_cursor_is_refused(cursor):
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor)
