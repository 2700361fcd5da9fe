"""The command lines and configs load no web stack: importing a package costs nothing (STYLE.md, 18)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.processes import REPO

pytestmark = pytest.mark.servers  # starts processes of its own

HEAVY = ("flask", "werkzeug", "sqlalchemy", "redis", "alembic", "gunicorn")


@pytest.mark.parametrize(
    "modules",
    [
        "auth_service, profile_service, board_service",
        "auth_service.__main__, auth_service.keys, auth_service.config",
        "profile_service.__main__, profile_service.config",
        "board_service.__main__, board_service.config",
        "shared.config",
    ],
)
def test_importing_loads_no_web_stack_or_database_driver(modules):
    script = f"import sys, {modules}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True)
    assert loaded.stdout.split() == []


def test_the_keys_command_runs_without_the_web_stack(tmp_path):
    script = (
        "import runpy, sys; sys.argv = ['auth_service', 'keys', 'init', '--dir', sys.argv[1]]\n"
        "try:\n    runpy.run_module('auth_service', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        f"print('loaded:', *(m for m in {HEAVY!r} if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert (tmp_path / "signing.pem").exists()
    assert loaded.stdout.splitlines()[-1].split() == ["loaded:"]
