"""`make bench` still runs: row 3 (refresh vs healthz) through the real script for one second, so a
broken bench fails CI. Nothing here looks at the figures themselves, only at their shape: the table
line arrives on stdout with a ratio, and the progress went to stderr."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.support.processes import REPO

pytestmark = pytest.mark.servers


@pytest.fixture(scope="module")
def row_3() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "bench" / "http_bench.py")],
        cwd=REPO,
        env={**os.environ, "BENCH_ROWS": "3", "BENCH_SECONDS": "1", "BENCH_RUNS": "1"},
        capture_output=True,
        text=True,
        timeout=280,
    )


@pytest.mark.timeout(300)
def test_row_3_prints_its_table_line_with_a_ratio(row_3):
    assert row_3.returncode == 0, row_3.stderr[-3000:]
    lines = row_3.stdout.splitlines()
    assert lines[0].startswith("Machine: ")  # the versions come first
    assert "| measurement | result | ratio | target |" in lines
    [line] = [line for line in lines if line.startswith("| 3. ")]
    assert re.search(
        r"`POST /api/auth/refresh`.* \| [\d,]+ req/s .* vs [\d,]+ req/s \| \d+\.\d\d× \| ≥ 0\.55× \|$", line
    )
    assert not [line for line in lines if re.match(r"\| [124567]\. ", line)]  # BENCH_ROWS=3: row 3 alone


@pytest.mark.timeout(300)
def test_row_3_says_what_it_is_doing_on_stderr(row_3):
    assert row_3.returncode == 0, row_3.stderr[-3000:]
    assert "3. refresh: run 1/1: `GET /healthz`, 1 s" in row_3.stderr
    assert "3. refresh: run 1/1: `POST /api/auth/refresh`" in row_3.stderr
    assert "| 3. " not in row_3.stderr  # the table is not mixed into the progress


def test_an_unknown_row_is_refused_by_name():
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "http_bench.py")],
        cwd=REPO,
        env={**os.environ, "BENCH_ROWS": "3,99"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "BENCH_ROWS: no row 99" in done.stderr
