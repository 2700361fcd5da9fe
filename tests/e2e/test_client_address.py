"""Under `make run`, only the gateway may tell a service who the client is (X-Forwarded-For)."""

from __future__ import annotations

import json
import uuid

import requests

PASSWORD = "correct horse battery"


def _wrong_login(url: str, email: str, **headers: str) -> requests.Response:
    return requests.post(f"{url}/api/auth/login", json={"email": email, "password": "wrong-pass"}, headers=headers)


def test_a_direct_caller_cannot_forge_its_address_to_dodge_the_throttle(stack):
    auth = stack.service_url("auth")
    email = f"xff-{uuid.uuid4().hex[:8]}@example.com"
    # Ten failures per account and address (the default); every guess names a new address.
    statuses = [_wrong_login(auth, email, **{"X-Forwarded-For": f"198.51.100.{n}"}).status_code for n in range(11)]
    assert statuses == [401] * 10 + [429]


def test_the_gateway_tells_the_service_the_clients_address(stack):
    request_id = f"xff-{uuid.uuid4().hex}"
    # A forged header sent to the gateway is replaced by the address nginx saw.
    _wrong_login(
        stack.url, f"{request_id}@example.com", **{"X-Request-ID": request_id, "X-Forwarded-For": "198.51.100.77"}
    )
    [line] = [line for line in stack.log_lines(request_id, "auth") if "auth.1" in line and '"path"' in line]
    entry = json.loads(line[line.index("{") :])
    assert entry["remote_addr"] == "127.0.0.1"  # the client's, not the gateway's 127.0.0.2, not the forged one
