"""The Set-Cookie headers of the private cookies: byte for byte what werkzeug's dump_cookie writes."""

from __future__ import annotations

import pytest
from werkzeug.http import dump_cookie

from auth_service.routes import COOKIE_PATH, DEVICE_COOKIE_PATH, REFRESH_COOKIE, private_cookie

TOKEN = "0123456789abcdef0123456789abcdef.42.AbC-_dEf0123456789abcdefghijklmnopqrstuvwxyzA"


@pytest.mark.parametrize(
    "value",
    [
        TOKEN,  # a refresh token: hex session id, generation, base64url proof
        "device.cookie-value_1",
        "",
        # Values werkzeug quotes or escapes are rendered by werkzeug whole.
        "a b",
        'say "hi"',
        "semi;colon",
        "comma,value",
        "back\\slash",
        "caf\u00e9",
    ],
)
@pytest.mark.parametrize(
    ("name", "max_age", "path"),
    [(REFRESH_COOKIE, 1209600, COOKIE_PATH), ("login_device", 31536000, DEVICE_COOKIE_PATH)],
)
def test_private_cookie_is_what_dump_cookie_writes(name: str, max_age: int, path: str, value: str) -> None:
    expected = dump_cookie(
        name, value, max_age=max_age, path=path, secure=True, httponly=True, samesite="Strict", sync_expires=False
    )
    assert private_cookie(name, value, max_age, path) == expected


def test_each_lifetime_gets_its_own_attributes() -> None:
    assert private_cookie(REFRESH_COOKIE, TOKEN, 60, COOKIE_PATH).endswith(
        "; Max-Age=60; Secure; HttpOnly; Path=/api/auth; SameSite=Strict"
    )
    assert "Max-Age=120;" in private_cookie(REFRESH_COOKIE, TOKEN, 120, COOKIE_PATH)
