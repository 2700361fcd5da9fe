"""Password hashing with argon2id; unknown users cost the same as wrong passwords."""

from __future__ import annotations

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from opentelemetry import trace

# A login's trace shows the hash as its own span: argon2 is most of a login's time, by design.
tracer = trace.get_tracer(__name__)


class Passwords:
    def __init__(self, *, time_cost: int, memory_cost: int, parallelism: int) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism, type=Type.ID
        )
        # Verified when the email is unknown, so both failures take the same path and time.
        self._dummy_hash = self._hasher.hash("not a real password, only spends the same time")

    def hash(self, password: str) -> str:
        with tracer.start_as_current_span("password.hash"):
            return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        with tracer.start_as_current_span("password.verify"):
            try:
                return self._hasher.verify(password_hash or self._dummy_hash, password) and password_hash is not None
            except (VerificationError, InvalidHashError):
                return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)
