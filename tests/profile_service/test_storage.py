"""ProfileStore against a real SQLite file and a real PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC

import pytest

from profile_service.migrations import HISTORY
from profile_service.profiles import ProfileStore
from shared.database import create_database_engine
from tests.support.schemas import migrate


@pytest.fixture
def store(database_url: str) -> Iterator[ProfileStore]:
    migrate(database_url, HISTORY)
    engine = create_database_engine(database_url)
    store = ProfileStore(engine)
    yield store
    engine.dispose()


def test_timestamps_come_back_in_utc(store: ProfileStore) -> None:
    created = store.find_or_create("u1", "Ada")
    found = store.find("u1")
    assert found == created
    assert found is not None and found.created_at.tzinfo is not None
    assert found.created_at.utcoffset() == UTC.utcoffset(None)


def test_find_or_create_keeps_the_first_name(store: ProfileStore) -> None:
    first = store.find_or_create("u1", "Ada")
    assert store.find_or_create("u1", "Someone Else") == first


def test_token_names_are_made_to_fit(store: ProfileStore) -> None:
    assert store.find_or_create("u1", "  " + "n" * 80 + "\x00").name == "n" * 50


def test_update_changes_only_given_fields_and_the_update_time(store: ProfileStore) -> None:
    created = store.find_or_create("u1", "Ada")
    updated = store.update("u1", token_name="ignored", bio="hello")
    assert (updated.name, updated.bio, updated.created_at) == ("Ada", "hello", created.created_at)
    assert updated.updated_at >= created.updated_at
    assert store.update("u1", token_name="ignored") == updated


def test_update_creates_a_missing_profile(store: ProfileStore) -> None:
    profile = store.update("u2", token_name="From Token", name="Chosen")
    assert (profile.user_id, profile.name, profile.bio) == ("u2", "Chosen", "")


@pytest.mark.parametrize("user_id", ["missing", "nul\x00id", "x" * 1000])
def test_find_of_unknown_ids_is_none(store: ProfileStore, user_id: str) -> None:
    assert store.find(user_id) is None


def test_upgrading_again_keeps_the_data(store: ProfileStore, database_url: str) -> None:
    store.find_or_create("u1", "Ada")
    migrate(database_url, HISTORY)
    assert store.find("u1") is not None
