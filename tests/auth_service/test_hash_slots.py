"""Admission control for password hashing (auth_service/passwords.py HashSlots): pure logic, real threads.

Holders block on events the test sets, so every race is decided by barriers and events, not by luck;
each thread runs in a pool whose result is read, so an exception or failed assertion in one fails the test.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

import pytest

from auth_service.passwords import LOWEST_PRIORITY, HashSlots, PasswordHashingBusy, Passwords

LONG = 30.0  # seconds: a wait the test ends itself, long before this
SAFETY_NET = 10.0


def until(condition: Callable[[], bool]) -> None:
    """Wait for a state another thread reaches; the deadline only keeps a broken build from hanging."""
    deadline = time.monotonic() + SAFETY_NET
    while not condition():
        assert time.monotonic() < deadline, "the state was never reached"
        time.sleep(0.001)


@contextmanager
def holders(slots: HashSlots, count: int) -> Iterator[tuple[threading.Event, list[Future[None]]]]:
    """`count` threads that each hold a slot until the yielded event is set; all hold one when this yields."""
    inside = threading.Barrier(count + 1)
    release = threading.Event()

    def hold() -> None:
        with slots.held():
            inside.wait(SAFETY_NET)
            assert release.wait(SAFETY_NET)

    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(hold) for _ in range(count)]
        try:
            inside.wait(SAFETY_NET)
            yield release, futures
        finally:
            release.set()
        for future in futures:
            future.result()


def refused(slots: HashSlots) -> str:
    """Try to take a slot that must not be given; return the reason it was refused."""
    with pytest.raises(PasswordHashingBusy) as refusal, slots.held():
        pytest.fail("a slot was given past the bound")
    assert refusal.value.retry_after >= 1
    return refusal.value.reason


def test_no_more_holders_than_the_concurrency():
    slots = HashSlots(concurrency=3, queue=0, wait=LONG)
    with holders(slots, 3):
        assert slots.running == 3
        assert refused(slots) == "queue_full"  # at once: no queue to wait in
    with slots.held():  # the holders left: slots are free again
        assert slots.running == 1
    assert slots.running == 0


def test_no_more_waiters_than_the_queue_and_a_waiter_gets_the_freed_slot():
    slots = HashSlots(concurrency=1, queue=2, wait=LONG)
    admitted: list[int] = []

    def wait_for_a_slot(n: int) -> None:
        with slots.held():
            admitted.append(n)

    with holders(slots, 1) as (release, _), ThreadPoolExecutor(max_workers=2) as pool:
        waiters = [pool.submit(wait_for_a_slot, n) for n in range(2)]
        until(lambda: slots.waiting == 2)
        assert refused(slots) == "queue_full"  # a third would-be waiter is shed at once
        assert admitted == []  # nobody passed the holder
        release.set()
        for waiter in waiters:
            waiter.result()
    assert sorted(admitted) == [0, 1]
    assert (slots.running, slots.waiting) == (0, 0)


def test_a_waiter_gives_up_after_the_wait_and_leaves_the_queue():
    slots = HashSlots(concurrency=1, queue=1, wait=0.05)
    with holders(slots, 1):
        assert refused(slots) == "wait_timed_out"
        assert slots.waiting == 0  # its place in the queue is free again
        assert refused(slots) == "wait_timed_out"  # and the next one may wait (and give up) in turn


def test_a_zero_wait_never_waits():
    slots = HashSlots(concurrency=1, queue=5, wait=0)
    with holders(slots, 1):
        assert refused(slots) == "wait_timed_out"


def test_a_slot_is_released_when_the_work_raises():
    slots = HashSlots(concurrency=1, queue=0, wait=0)
    for _ in range(3):
        with pytest.raises(RuntimeError, match="argon2 failed"), slots.held():
            raise RuntimeError("argon2 failed")
    assert slots.running == 0
    with slots.held():  # the only slot is still usable
        pass


def test_retry_after_is_whole_seconds_and_never_zero():
    assert HashSlots(concurrency=1, queue=1, wait=0.25).retry_after == 1
    assert HashSlots(concurrency=1, queue=1, wait=2.5).retry_after == 3


@pytest.mark.parametrize(("concurrency", "queue", "wait"), [(0, 1, 1.0), (1, -1, 1.0), (1, 1, -0.1)])
def test_nonsense_bounds_are_refused(concurrency: int, queue: int, wait: float):
    with pytest.raises(ValueError, match="at least"):
        HashSlots(concurrency=concurrency, queue=queue, wait=wait)


def _nice_of_threads() -> dict[int, int]:
    """Each thread of this process and its nice value, from /proc (field 19 of stat)."""
    nice = {}
    for tid in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{tid}/stat") as stat:
            nice[int(tid)] = int(stat.read().rsplit(")", 1)[1].split()[16])
    return nice


def test_passwords_hash_on_a_thread_at_the_lowest_priority_and_leave_the_caller_alone():
    before = _nice_of_threads()
    passwords = Passwords(time_cost=1, memory_cost=1024, parallelism=1, slots=HashSlots(concurrency=1, queue=0, wait=0))
    assert passwords.verify(passwords.hash("a password"), "a password")
    after = _nice_of_threads()
    hashing = {tid: nice for tid, nice in after.items() if tid not in before}
    assert list(hashing.values()) == [LOWEST_PRIORITY]  # one hashing thread, niced once
    assert after[threading.get_native_id()] == before[threading.get_native_id()]  # the caller kept its priority


def test_the_hashes_of_an_admitted_operation_use_its_slot():
    passwords = Passwords(time_cost=1, memory_cost=1024, parallelism=1, slots=HashSlots(concurrency=1, queue=0, wait=0))
    with passwords.admitted("login"):
        # A login that verifies and then upgrades the hash holds one slot throughout, never two.
        assert passwords.verify(passwords.hash("a password"), "a password")
        assert passwords.slots.running == 1
        with pytest.raises(PasswordHashingBusy), ThreadPoolExecutor(max_workers=1) as other:
            other.submit(passwords.hash, "another").result()  # another thread's hash meanwhile is shed
    assert passwords.slots.running == 0
