"""X-Forwarded-For is believed only from the configured proxies; everyone else is their peer address."""

from __future__ import annotations

import pytest
from flask import jsonify, request

from shared.app_wiring import create_service_app
from shared.config import ConfigError, ServiceConfig
from tests.support.contexts import bare_context


def _app(**settings):
    app = create_service_app("proxy_test", bare_context(**settings), readiness_checks={})

    @app.get("/whoami")
    def whoami():
        return jsonify(address=request.remote_addr)

    return app.test_client()


def _address(client, peer: str, forwarded: str | None) -> str:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return client.get("/whoami", headers=headers, environ_base={"REMOTE_ADDR": peer}).json["address"]


@pytest.mark.parametrize(
    ("peer", "forwarded", "seen"),
    [
        ("127.0.0.2", "198.51.100.7", "198.51.100.7"),  # the gateway tells the client's address
        ("127.0.0.2", "6.6.6.6, 198.51.100.7", "198.51.100.7"),  # one hop: only the entry it appended
        ("127.0.0.1", "198.51.100.7", "127.0.0.1"),  # a direct caller cannot forge it
        ("10.1.2.3", "198.51.100.7", "10.1.2.3"),
        ("127.0.0.2", None, "127.0.0.2"),
        ("::1", "198.51.100.7", "::1"),
    ],
)
def test_forwarded_for_is_believed_only_from_a_trusted_proxy(peer, forwarded, seen):
    client = _app(trusted_proxy_hops=1, trusted_proxy_addresses="127.0.0.2")
    assert _address(client, peer, forwarded) == seen


def test_trusted_proxies_may_be_networks():
    client = _app(trusted_proxy_hops=1, trusted_proxy_addresses="172.30.80.0/24, ::1")
    assert _address(client, "172.30.80.10", "198.51.100.7") == "198.51.100.7"
    assert _address(client, "::1", "198.51.100.7") == "198.51.100.7"
    assert _address(client, "172.30.81.10", "198.51.100.7") == "172.30.81.10"


def test_without_hops_the_header_is_ignored():
    assert _address(_app(trusted_proxy_addresses="127.0.0.2"), "127.0.0.2", "198.51.100.7") == "127.0.0.2"


def test_hops_without_trusted_addresses_stop_start_up(monkeypatch):
    monkeypatch.setenv("TRUSTED_PROXY_HOPS", "1")
    with pytest.raises(ConfigError, match="TRUSTED_PROXY_ADDRESSES"):
        ServiceConfig.from_env()


@pytest.mark.parametrize("addresses", ["localhost", "127.0.0.300", "10.0.0.0/33", "127.0.0.2;rm"])
def test_malformed_trusted_addresses_stop_start_up(monkeypatch, addresses):
    monkeypatch.setenv("TRUSTED_PROXY_HOPS", "1")
    monkeypatch.setenv("TRUSTED_PROXY_ADDRESSES", addresses)
    with pytest.raises(ConfigError, match="TRUSTED_PROXY_ADDRESSES"):
        ServiceConfig.from_env()
