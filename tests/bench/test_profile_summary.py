"""`make profile-refresh` reads py-spy's raw collapsed stacks right: own samples go to the frame on top,
total samples to every function in the stack once (a recursive one is not counted twice), and the
process line py-spy puts first is not a frame."""

from __future__ import annotations

from bench.profile_refresh import summary, top_frames

WORKER = 'process 11:"gunicorn: worker [auth]";handle (gunicorn/workers/sync.py:135)'
RAW = "\n".join(
    [
        f"{WORKER};refresh (/x/auth_service/routes.py:190);sign (jwt/algorithms.py:760) 3",
        f"{WORKER};refresh (/x/auth_service/routes.py:191);walk (a.py:1);walk (a.py:2) 1",
        'process 12:"gunicorn: worker [auth]";handle (gunicorn/workers/sync.py:140) 6',
    ]
)


def test_own_and_total_samples_by_function():
    samples, rows = top_frames(RAW, top=10)
    assert samples == 10
    by_name = {name: (own, total) for name, own, total in rows}
    assert by_name["handle (gunicorn/workers/sync.py)"] == (6, 10)
    assert by_name["sign (jwt/algorithms.py)"] == (3, 3)
    assert by_name["refresh (/x/auth_service/routes.py)"] == (0, 4)  # the line numbers are one function
    assert by_name["walk (a.py)"] == (1, 1)
    assert not [name for name in by_name if name.startswith("process ")]


def test_the_summary_is_a_markdown_table_of_percentages():
    text = summary(RAW, top=3)
    assert "| `handle (gunicorn/workers/sync.py)` | 60.0% | 100.0% |" in text
    assert "| `sign (jwt/algorithms.py)` | 30.0% | 30.0% |" in text
