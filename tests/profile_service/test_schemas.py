"""Unit tests of the profile request bodies: pure validation, no I/O."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from profile_service.schemas import ProfileUpdate


def test_absent_fields_stay_unset() -> None:
    update = ProfileUpdate.model_validate_json(b'{"other": 1}')
    assert (update.name, update.bio) == (None, None)


def test_name_and_bio_are_stripped() -> None:
    update = ProfileUpdate.model_validate_json(b'{"name": "  Ada  ", "bio": "\\n hello \\n"}')
    assert (update.name, update.bio) == ("Ada", "hello")


def test_null_bio_clears_it() -> None:
    assert ProfileUpdate.model_validate_json(b'{"bio": null}').bio == ""


def test_bio_keeps_inner_line_breaks_and_tabs() -> None:
    assert ProfileUpdate.model_validate_json(b'{"bio": "a\\n\\tb\\r\\nc"}').bio == "a\n\tb\r\nc"


@pytest.mark.parametrize(
    "body",
    [
        b'{"name": null}',
        b'{"name": ""}',
        b'{"name": "   "}',
        b'{"name": "' + b"x" * 51 + b'"}',
        b'{"name": 5}',
        b'{"name": "a\\nb"}',
        b'{"name": "a\\u0000"}',
        b'{"bio": "' + b"x" * 501 + b'"}',
        b'{"bio": "a\\u0000b"}',
        b'{"bio": 1}',
    ],
)
def test_invalid_fields_are_rejected(body: bytes) -> None:
    with pytest.raises(ValidationError):
        ProfileUpdate.model_validate_json(body)


def test_limits_are_inclusive() -> None:
    update = ProfileUpdate(name="n" * 50, bio="b" * 500)
    assert (len(update.name or ""), len(update.bio or "")) == (50, 500)
