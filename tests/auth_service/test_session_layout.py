"""The session layout is defined once: every field a script names exists, every argument is passed by name."""

from __future__ import annotations

import re

import pytest

from auth_service import sessions
from auth_service.sessions import SESSION_FIELDS, SessionScript
from shared.redis_client import create_redis_client

SCRIPTS = {
    name: value
    for name, value in vars(sessions).items()
    if name.startswith("_")
    and name.isupper()
    and isinstance(value, str)
    and "KEYS[" in value
    and name != "_DOCUMENT_CODEC"
}


def test_every_field_a_script_names_is_a_session_field():
    assert set(SCRIPTS) == {"_CREATE", "_ROTATE", "_REVOKE_BY_TOKEN", "_REVOKE_OWNED", "_REVOKE_ALL"}
    named = {field for body in SCRIPTS.values() for field in re.findall(r"\bF\.(\w+)", body)}
    assert named <= set(SESSION_FIELDS)
    assert not any(re.search(r"\bARGV\[", body) for body in SCRIPTS.values())  # arguments by name only
    assert not any(re.search(r"'(" + "|".join(SESSION_FIELDS) + r")'", body) for body in SCRIPTS.values())
    assert not any(re.search(r"\bs\[\d", body) for body in SCRIPTS.values())  # a field by its name, never its place


def test_a_script_call_with_a_missing_or_unknown_argument_is_refused(redis_url):
    script = SessionScript(
        create_redis_client(redis_url), "return {user_id, session_id}", args=("user_id", "session_id")
    )
    assert script(keys=[], user_id="u", session_id="s") == [b"u", b"s"]
    with pytest.raises(TypeError):
        script(keys=[], user_id="u")
    with pytest.raises(TypeError):
        script(keys=[], user_id="u", session_id="s", extra="x")
