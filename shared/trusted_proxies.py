"""Believe X-Forwarded-For only when the connection comes from a proxy we run."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import TYPE_CHECKING

from werkzeug.middleware.proxy_fix import ProxyFix

from shared.config import Network

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


class TrustedProxyFix:
    """Apply werkzeug's ProxyFix (`hops` proxies) to requests from `networks`; others keep their peer address.

    ProxyFix alone believes the header from anybody, so a caller that reaches a service directly
    could name any address and dodge the per-address login throttle.
    """

    def __init__(self, app: WSGIApplication, *, hops: int, networks: Iterable[Network]) -> None:
        self.app = app
        self.networks = tuple(networks)
        self.behind_proxy = ProxyFix(app, x_for=hops)

    def _trusted(self, peer: str) -> bool:
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if self._trusted(environ.get("REMOTE_ADDR", "")):
            return self.behind_proxy(environ, start_response)
        return self.app(environ, start_response)
