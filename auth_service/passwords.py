"""Password hashing with argon2id; unknown users cost the same as wrong passwords.

Every hash and verify goes through admission control (`HashSlots`): a login flood cannot take
more than `concurrency` hashes at once per process, and the hashing runs at the lowest CPU priority,
so refreshes and everything else keep the cores they need.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from typing import TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from opentelemetry import trace

from shared.metrics import password_hash_shed

T = TypeVar("T")
log = logging.getLogger("auth_service.passwords")
LOWEST_PRIORITY = 19  # nice value of the threads that hash
# A login's trace shows the hash as its own span: argon2 is most of a login's time, by design.
tracer = trace.get_tracer(__name__)


class PasswordHashingBusy(Exception):
    """No hashing slot became free in time; the request is refused, not queued."""

    def __init__(self, retry_after: int, reason: str) -> None:
        super().__init__(f"password hashing busy ({reason}); retry after {retry_after}s")
        self.retry_after = retry_after
        self.reason = reason  # "queue_full" or "wait_timed_out"


class HashSlots:
    """At most `concurrency` holders at once and at most `queue` callers waiting up to `wait` seconds for a slot.

    A caller that finds the queue full, or whose wait runs out, is refused at once with
    `PasswordHashingBusy`: under a flood the excess is shed instead of piling up in every request thread.
    """

    def __init__(self, *, concurrency: int, queue: int, wait: float) -> None:
        if concurrency < 1 or queue < 0 or wait < 0:
            raise ValueError("concurrency must be at least 1, queue and wait at least 0")
        self.concurrency = concurrency
        self.queue = queue
        self.wait = wait
        self.retry_after = max(1, math.ceil(wait))  # whole seconds for Retry-After, never 0
        self._changed = threading.Condition()
        self._running = 0
        self._waiting = 0

    @property
    def running(self) -> int:
        return self._running

    @property
    def waiting(self) -> int:
        return self._waiting

    @contextmanager
    def held(self) -> Iterator[None]:
        """Hold a slot for the body of the `with`; raise `PasswordHashingBusy` when none is given."""
        refused = self._acquire()
        if refused is not None:
            raise PasswordHashingBusy(self.retry_after, refused)
        try:
            yield
        finally:
            with self._changed:
                self._running -= 1
                self._changed.notify()

    def _acquire(self) -> str | None:
        """Take a slot, waiting if the queue has room; return why not when no slot was given."""
        with self._changed:
            if self._running < self.concurrency:
                self._running += 1
                return None
            if self._waiting >= self.queue:
                return "queue_full"
            self._waiting += 1
            try:
                if not self._changed.wait_for(lambda: self._running < self.concurrency, timeout=self.wait):
                    return "wait_timed_out"
                self._running += 1
                return None
            finally:
                self._waiting -= 1


def _run_at_lowest_priority() -> None:
    # Linux keeps a nice value per thread; argon2's lane threads, started from this one, inherit it.
    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOWEST_PRIORITY)


class Passwords:
    def __init__(self, *, time_cost: int, memory_cost: int, parallelism: int, slots: HashSlots) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism, type=Type.ID
        )
        self.slots = slots
        # One thread per slot, so a holder never waits for a thread; made lazily, after gunicorn's fork.
        self._executor = ThreadPoolExecutor(
            max_workers=slots.concurrency, thread_name_prefix="argon2", initializer=_run_at_lowest_priority
        )
        self._holding = threading.local()
        # Verified when the email is unknown, so both failures take the same path and time.
        self._dummy_hash = self._hasher.hash("not a real password, only spends the same time")

    @contextmanager
    def admitted(self, operation: str) -> Iterator[None]:
        """Hold a hashing slot for a whole operation (its hashes run in it); shed it when none is free in time.

        Taken before anything else the operation does, so a shed request costs no Redis or database
        call, counts no login attempt, and is refused alike whether or not the account exists.
        """
        if getattr(self._holding, "slot", False):  # nested: the operation's slot already covers it
            yield
            return
        with ExitStack() as slot:
            try:
                slot.enter_context(self.slots.held())
            except PasswordHashingBusy as exc:
                # Its own event and counter, so sheds are counted apart from failed logins; no account named.
                password_hash_shed.labels(operation).inc()
                log.warning(
                    "password hashing busy: request shed",
                    extra={"fields": {"event": "password_hash_shed", "operation": operation, "reason": exc.reason}},
                )
                raise
            self._holding.slot = True
            try:
                yield
            finally:
                self._holding.slot = False

    def _hash_in_slot(self, operation: str, work: Callable[[], T]) -> T:
        """Run `work` on a hashing thread, in the caller's slot or one of its own."""
        with self.admitted(operation):
            return self._executor.submit(work).result()

    def hash(self, password: str) -> str:
        with tracer.start_as_current_span("password.hash"):
            return self._hash_in_slot("hash", lambda: self._hasher.hash(password))

    def verify(self, password_hash: str | None, password: str) -> bool:
        def check() -> bool:
            try:
                return self._hasher.verify(password_hash or self._dummy_hash, password) and password_hash is not None
            except (VerificationError, InvalidHashError):
                return False

        # In the request's thread, so the span sits under the request's (the hashing thread has no context).
        with tracer.start_as_current_span("password.verify"):
            return self._hash_in_slot("verify", check)

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)
