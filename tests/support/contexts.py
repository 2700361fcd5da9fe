"""A service context for apps that test the shared wiring alone: a config and a verifier, no stores."""

from __future__ import annotations

from shared.access_tokens import AccessTokenVerifier
from shared.config import ServiceConfig
from shared.service_context import ServiceContext


def bare_context(**settings: object) -> ServiceContext:
    config = ServiceConfig(jwks_path=None, **settings)  # type: ignore[arg-type]
    return ServiceContext(config=config, verifier=AccessTokenVerifier.from_config(config))
