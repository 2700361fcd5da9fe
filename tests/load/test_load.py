"""Many users logging in, refreshing, reading and writing at once: correctness under load.

The test asserts correctness only, never timings. `make test` runs a short variant; `make soak`
sets LOAD_SECONDS=60 and LOAD_USERS=50.
"""

from __future__ import annotations

import os
import time

import pytest
import requests

from tests.load.driver import LoadRun
from tests.support.stack import Stack

GRACE = 3


@pytest.fixture(scope="module")
def load_stack(tmp_path_factory: pytest.TempPathFactory):
    running = Stack(tmp_path_factory.mktemp("load-stack"), REFRESH_REUSE_GRACE=str(GRACE)).start()
    yield running
    running.stop()


def test_load_keeps_every_promise(load_stack: Stack):
    run = LoadRun(
        load_stack.url,
        users=int(os.environ.get("LOAD_USERS", "20")),
        seconds=float(os.environ.get("LOAD_SECONDS", "12")),
    )
    report = run.run()
    print("\n" + run.summary())

    assert not [s for s in report.statuses if s >= 500], report.failures[:5]
    assert report.failures == []  # every call got exactly the status it should: nobody logged out

    # Every post acknowledged with 201 is readable afterwards.
    acknowledged = [post for user in run.users for post in user.posts]
    assert acknowledged
    http = requests.Session()
    missing = [post for post in acknowledged if http.get(f"{load_stack.url}/api/boards/{post}").status_code != 200]
    assert missing == []
    assert len(set(acknowledged)) == len(acknowledged)

    # One live chain per session: the newest token still refreshes, and once the grace window
    # has passed the one before it is treated as theft rather than as a second live chain.
    time.sleep(GRACE + 0.5)
    for user in run.users:
        newest = http.post(
            f"{load_stack.url}/api/auth/refresh", headers={"Cookie": f"refresh_token={user.refresh_token}"}
        )
        assert newest.status_code == 200, user.email
        bearer = {"Authorization": f"Bearer {newest.json()['access_token']}"}
        assert len(http.get(f"{load_stack.url}/api/auth/sessions", headers=bearer).json()["sessions"]) == 1
        if len(user.refresh_tokens) > 1:
            older = http.post(
                f"{load_stack.url}/api/auth/refresh", headers={"Cookie": f"refresh_token={user.refresh_tokens[-2]}"}
            )
            assert older.status_code == 401
