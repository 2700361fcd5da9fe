"""The account-wide login ceiling and the device cookie that exempts the owner's browsers (OWASP).

A guesser that rotates through addresses meets a ceiling per account; a browser that logged in
to the account before carries a signed device cookie and is held only to its own small limit, so
the attack cannot lock the owner out.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from auth_service.devices import DEVICE_COOKIE, LoginDevices
from tests.auth_service.conftest import PASSWORD

VICTIM = "victim@example.com"


def _login(client, password=PASSWORD, *, address="198.51.100.1", email=VICTIM, device=None):
    if device is not None:
        client.set_cookie(DEVICE_COOKIE, device, path="/api/auth/login")
    else:
        client.delete_cookie(DEVICE_COOKIE, path="/api/auth/login")
    return client.post(
        "/api/auth/login", json={"email": email, "password": password}, environ_base={"REMOTE_ADDR": address}
    )


def _device_cookie(response) -> str | None:
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith(f"{DEVICE_COOKIE}="):
            return header.split(";", 1)[0].split("=", 1)[1]
    return None


@pytest.fixture
def client(make_app):
    app = make_app(login_max_failures=3, login_account_max_failures=5, login_failure_window=60)
    client = app.test_client()
    client.post("/api/auth/signup", json={"email": VICTIM, "password": PASSWORD, "name": "V"})
    return client


def test_a_login_sets_a_device_cookie_scoped_to_login(client):
    response = _login(client)
    assert response.status_code == 200
    [header] = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(f"{DEVICE_COOKIE}=")]
    attributes = {
        part.strip().split("=", 1)[0].lower(): part.strip().partition("=")[2] for part in header.split(";")[1:]
    }
    assert set(attributes) == {"httponly", "secure", "samesite", "path", "max-age"}  # no Expires (docs/API.md)
    assert attributes["httponly"] == "" and attributes["secure"] == ""
    assert attributes["samesite"] == "Strict"
    assert attributes["path"] == "/api/auth/login"
    assert attributes["max-age"] == str(365 * 86400)
    assert VICTIM not in header


def test_guesses_from_many_addresses_meet_the_account_ceiling(client):
    # Two guesses from each address stay under the per-address limit (3) ...
    statuses = [_login(client, "wrong-pass", address=f"203.0.113.{n // 2}").status_code for n in range(6)]
    # ... but the sixth attempt on the account is past its ceiling (5), whatever the address.
    assert statuses == [401] * 5 + [429]
    refused = _login(client, address="192.0.2.99")
    assert refused.status_code == 429 and refused.json["code"] == "too_many_attempts"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert _device_cookie(refused) is None


def test_the_owners_browser_is_not_locked_out(client):
    device = _device_cookie(_login(client))
    for n in range(6):
        _login(client, "wrong-pass", address=f"203.0.113.{n}")
    assert _login(client, address="192.0.2.99").status_code == 429  # a new browser meets the ceiling
    owner = _login(client, address="192.0.2.99", device=device)  # the owner's browser does not
    assert owner.status_code == 200
    assert _device_cookie(owner) not in (None, device)  # renewed at every login


def test_a_device_cookie_gets_only_its_own_few_guesses(client):
    device = _device_cookie(_login(client))
    statuses = [_login(client, "wrong-pass", address=f"203.0.113.{n}", device=device).status_code for n in range(4)]
    assert statuses == [401, 401, 401, 429]  # its own limit (3), not the account's (5)
    assert _login(client, address="192.0.2.50", device=device).status_code == 429


def test_a_device_cookie_of_another_account_or_a_forged_one_does_not_exempt(client):
    client.post("/api/auth/signup", json={"email": "mallory@example.com", "password": PASSWORD, "name": "M"})
    mallory_device = _device_cookie(_login(client, email="mallory@example.com"))
    forged = LoginDevices(b"\0" * 32).issue("victim@example.com", None)
    for n in range(6):
        _login(client, "wrong-pass", address=f"203.0.113.{n}")
    for device in (mallory_device, forged, "garbage", "~" * 400, mallory_device.split(".")[0] + ".x"):
        assert _login(client, address="192.0.2.99", device=device).status_code == 429, device


def test_one_browser_keeps_device_entries_for_several_accounts(client):
    client.post("/api/auth/signup", json={"email": "second@example.com", "password": PASSWORD, "name": "S"})
    device = _device_cookie(_login(client))
    device = _device_cookie(_login(client, email="second@example.com", device=device))
    assert device.count("~") == 1
    for n in range(6):
        _login(client, "wrong-pass", address=f"203.0.113.{n}")
    assert _login(client, address="192.0.2.99", device=device).status_code == 200


def test_successful_logins_do_not_use_up_the_ceiling(client):
    for n in range(8):
        assert _login(client, address=f"203.0.113.{n}").status_code == 200
    for n in range(4):
        _login(client, "wrong-pass", address=f"198.18.0.{n}")
    assert _login(client, address="192.0.2.99").status_code == 200


def test_parallel_guesses_from_many_addresses_never_pass_the_ceiling(client):
    """All guesses start together; counting before the password check lets exactly 5 through."""
    barrier = threading.Barrier(12)

    def guess(n: int) -> int:
        local = client.application.test_client()
        barrier.wait(timeout=10)
        return _login(local, "wrong-pass", address=f"203.0.113.{n}").status_code

    with ThreadPoolExecutor(12) as pool:
        statuses = list(pool.map(guess, range(12)))
    assert sorted(statuses) == [401] * 5 + [429] * 7
