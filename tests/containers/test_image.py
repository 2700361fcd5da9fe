"""The image as built: what it holds, what it leaves out, who it runs as, how big it is."""

from __future__ import annotations

import json
import re

from packaging.markers import Marker

from tests.containers.support import podman
from tests.support.processes import REPO

BUILD_TOOLS = ("gcc", "cc", "c++", "g++", "make", "ld", "as", "cpp", "git")
# The size of our layers over the base, in MB: the locked dependencies and the code (about 65 MB today).
OWN_LAYERS_BUDGET_MB = 120


def _files(image: str) -> list[str]:
    listed = podman(
        "run", "--rm", "--network", "none", "--user", "0", image, "find", "/", "-xdev", "-not", "-type", "d"
    )
    return listed.stdout.split()


def test_the_image_holds_no_build_tools_no_pip_and_none_of_the_tests(image):
    files = _files(image)
    assert "/app/auth_service/app.py" in files or any(f.startswith("/app/auth_service/") for f in files)
    names = {path.rsplit("/", 1)[-1] for path in files if "/bin/" in path}
    assert not names & set(BUILD_TOOLS), names & set(BUILD_TOOLS)
    outside_code = [
        path
        for path in files
        if path.startswith("/app/")
        and not path.startswith(("/app/shared/", "/app/auth_service/", "/app/profile_service/", "/app/board_service/"))
        and path != "/app/gunicorn.conf.py"
    ]
    assert outside_code == []
    # The dependency environment carries no installer and no compiled caches of the build.
    assert not [path for path in files if path.startswith("/opt/venv/") and re.search(r"/(pip|setuptools)(/|-)", path)]
    assert not [path for path in files if "/tests/" in path and path.startswith(("/app/", "/keys/"))]
    assert not [path for path in files if path.endswith((".pem", ".key", ".lock")) and path.startswith("/app")]


def test_the_dependencies_are_exactly_the_locked_ones(image):
    listed = podman(
        "run", "--rm", "--network", "none", image, "python", "-c",
        "import importlib.metadata as m, json; print(json.dumps({d.metadata['Name'].lower().replace('_', '-'):"
        " d.version for d in m.distributions()}))",
    )  # fmt: skip
    installed = json.loads(listed.stdout)
    version = podman(
        "run", "--rm", "--network", "none", image, "python", "-c", "import platform; print(platform.python_version())"
    )
    environment = {
        "python_full_version": version.stdout.strip(),
        "python_version": version.stdout.strip()[:4],
        "sys_platform": "linux",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
    }
    locked = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        match = re.match(r"^([a-z0-9][a-z0-9._-]*)==([^ ;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$", line)
        if match and (not match[3] or Marker(match[3]).evaluate(environment)):
            locked[match[1]] = match[2]
    assert installed == locked


def test_the_image_runs_as_the_non_root_user(image):
    config = json.loads(podman("image", "inspect", image).stdout)[0]["Config"]
    assert config["User"] == "app"
    identity = podman("run", "--rm", "--network", "none", image, "id", "-u").stdout.strip()
    assert identity == "10001"


def test_the_image_size_stays_within_budget(image, capsys):
    size = int(podman("image", "inspect", "--format", "{{.Size}}", image).stdout)
    base_size = int(podman("image", "inspect", "--format", "{{.Size}}", "docker.io/library/python:3.11-slim").stdout)
    with capsys.disabled():
        print(f"\n{image}: {size / 1e6:.1f} MB, of which {(size - base_size) / 1e6:.1f} MB over python:3.11-slim")
    assert (size - base_size) / 1e6 < OWN_LAYERS_BUDGET_MB
