"""What the auth service's views need, built once by `create_app`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from auth_service.accounts import Accounts
from auth_service.config import AuthConfig
from auth_service.tokens import TokenIssuer
from shared.redis_client import RedisClient
from shared.service_context import DatabaseServiceContext

if TYPE_CHECKING:  # auth_service.dpop reaches the context at request time
    from auth_service.dpop import CookieProofs


@dataclass(frozen=True, kw_only=True)
class AuthContext(DatabaseServiceContext):
    config: AuthConfig
    accounts: Accounts
    issuer: TokenIssuer
    redis: RedisClient
    dpop: CookieProofs
