"""tests/containers: the image built and run under podman, installed by the set-up when missing."""

from __future__ import annotations

import pytest

from tests.containers.support import IMAGE, script


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/containers/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.servers)
            # The first test's set-up may debootstrap both stand-in root filesystems and build the
            # image on a fresh machine (about 10 minutes here, downloading every package).
            item.add_marker(pytest.mark.timeout(1800))


@pytest.fixture(scope="session")
def image() -> str:
    """`make image` (scripts/image.sh) under podman: the stand-in base where none can be pulled."""
    script("image.sh")
    return IMAGE
