"""Running podman for tests/containers: the engine set up, the image built, containers cleaned up."""

from __future__ import annotations

import os
import shlex
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import yaml

from tests.support.processes import REPO

IMAGE = "localhost/silent-auth-services:latest"
COMPOSE = REPO / "docker-compose.yml"
K8S_BASE = REPO / "deploy" / "k8s" / "base"
# tests/containers always use podman, whatever else the machine has (scripts/ensure-containers.sh).
ENGINE_ENV = {**os.environ, "CONTAINER_ENGINE": "podman"}


def podman(*args: str, check: bool = True, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["podman", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**ENGINE_ENV, **env},
        stdin=subprocess.DEVNULL,
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"podman {shlex.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result


def script(name: str, *args: str, timeout: float = 900) -> str:
    """Run one of scripts/ (the set-up `make image` uses); its output, or its log on failure."""
    result = subprocess.run(
        [str(REPO / "scripts" / name), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ENGINE_ENV,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
    )
    if result.returncode != 0:
        raise RuntimeError(f"scripts/{name} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result.stdout


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@contextmanager
def volumes(*names: str) -> Iterator[dict[str, str]]:
    """Named volumes of this test's own (compose's names, made unique), removed afterwards."""
    made = {name: unique(f"silent-auth-test-{name}") for name in names}
    for volume in made.values():
        podman("volume", "create", volume)
    try:
        yield made
    finally:
        for volume in made.values():
            podman("volume", "rm", "--force", volume, check=False)


def compose_file() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def compose_service(name: str) -> dict:
    return compose_file()["services"][name]


def k8s_documents(name: str) -> list[dict]:
    return [document for document in yaml.safe_load_all((K8S_BASE / f"{name}.yaml").read_text()) if document]


def healthcheck_argv(test: list[str] | str) -> list[str]:
    """A compose healthcheck `test` as the engine runs it: CMD's words, CMD-SHELL through sh -c."""
    if isinstance(test, str):
        return ["sh", "-c", test.replace("$$", "$")]
    kind, *words = test
    if kind == "CMD":
        return words
    assert kind == "CMD-SHELL", test
    # Compose's `$$` is a literal `$` once the file is read.
    return ["sh", "-c", " ".join(words).replace("$$", "$")]


def wait_until(condition, timeout: float, what: str, interval: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def logs(container: str) -> str:
    result = podman("logs", container, check=False)
    return result.stdout + result.stderr
