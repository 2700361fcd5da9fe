"""Run a service the way production does: a real gunicorn process on a free loopback port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests

from tests.support.backends import listening_ports

REPO = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).with_name("gunicorn")
# The worker classes gunicorn.conf.py names, so gunicorn's own errors are problem documents here too.
PROBLEM_WORKERS = {
    "sync": "shared.gunicorn_errors.SyncProblemWorker",
    "gthread": "shared.gunicorn_errors.ThreadProblemWorker",
}


class ServiceProcess:
    """`gunicorn '<package>:create_app()'` with the given environment; stopped with SIGTERM."""

    def __init__(
        self,
        package: str,
        env: dict[str, str],
        log_dir: Path,
        *,
        workers: int = 2,
        threads: int = 1,
        worker_class: str | None = None,
        port: int | None = None,
    ) -> None:
        self.package = package
        self.env = env
        self.workers = workers
        self.threads = threads
        worker_class = worker_class or ("gthread" if threads > 1 else "sync")
        self.worker_class = PROBLEM_WORKERS.get(worker_class, worker_class)
        # Without a port the first start binds port 0 and reads back the one the kernel chose, so no
        # other process can take it in between; restarts bind that same port again.
        self.port = port
        self.log_path = log_dir / f"{package}-{uuid.uuid4().hex[:8]}.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20) -> ServiceProcess:
        env = {**os.environ, "PYTHONPATH": str(REPO), **self.env}
        log = self.log_path.open("ab")
        # As `make run` and compose do: the schema comes from the migrations, never from the app.
        migrated = subprocess.run(
            [sys.executable, "-m", self.package, "db", "upgrade"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=60,
        )
        if migrated.returncode != 0:
            raise RuntimeError(f"{self.package} db upgrade failed:\n{self.log()}")
        self.process = subprocess.Popen(
            [
                str(GUNICORN),
                "--workers",
                str(self.workers),
                "--threads",
                str(self.threads),
                "--worker-class",
                self.worker_class,
                "--bind",
                f"127.0.0.1:{self.port or 0}",
                "--graceful-timeout",
                "5",
                f"{self.package}:create_app()",
            ],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.package} exited:\n{self.log()}")
            if self.port is None:
                bound = listening_ports(self.process.pid)
                if not bound:
                    time.sleep(0.05)
                    continue
                [self.port] = bound
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).ok:
                    return self
            except requests.RequestException:  # not listening yet, or a worker still booting
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.package} did not become healthy:\n{self.log()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
