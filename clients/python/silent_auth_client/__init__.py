"""A requests session for silent-auth, for scripts, command lines and service tests."""

from silent_auth_client.session import AuthError, AuthSession, LoopbackSecureCookies

__all__ = ["AuthError", "AuthSession", "LoopbackSecureCookies"]
