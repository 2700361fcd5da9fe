"""The whole stack started the `make run` way (scripts/run.sh), on fresh ports and a temp var/."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

import requests

from tests.support.backends import (
    ADDRESS_IN_USE,
    START_ATTEMPTS,
    MovesOffATakenPort,
    PortTaken,
    free_port,
    listening_ports,
)
from tests.support.processes import REPO

SERVICES = ("auth", "profile", "board")


class Stack:
    def __init__(self, var_dir: Path, *, browser_origin: bool = False, **env: str) -> None:
        """`browser_origin`: DPOP_PUBLIC_ORIGIN is http://localhost:<gateway port>, the origin a
        browser test opens, so its DPoP proofs' `htu` match (kept right when the ports change)."""
        self.var_dir = var_dir
        self.browser_origin = browser_origin
        self.ports = {
            name: free_port() for name in ("gateway", *SERVICES, "redis", "gateway_status", "gateway_metrics")
        }
        self.env = {
            **os.environ,
            "VAR_DIR": str(var_dir),
            **{f"{name.upper()}_PORT": str(port) for name, port in self.ports.items()},
            # Cheap password hashing keeps the suite quick; the parameters are covered elsewhere.
            "ARGON2_TIME_COST": "1",
            "ARGON2_MEMORY_COST": "1024",
            "ARGON2_PARALLELISM": "1",
            # Roomy admission control, so tests racing logins for other reasons are not shed.
            "PASSWORD_HASH_QUEUE": "64",
            "PASSWORD_HASH_QUEUE_TIMEOUT_MS": "10000",
            "WEB_CONCURRENCY": "2",
            **env,
        }
        self._derive_origin()
        self.log_path = var_dir / "stack.log"
        self.process: subprocess.Popen | None = None

    def _derive_origin(self) -> None:
        if self.browser_origin:
            self.env["DPOP_PUBLIC_ORIGIN"] = f"http://localhost:{self.ports['gateway']}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    def service_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def replica_ports(self, name: str) -> list[int]:
        """The ports of a service's replicas (<NAME>_REPLICAS of them), as `make run` assigns them."""
        from scripts.run_stack import replica_ports

        return replica_ports(self.ports[name], int(self.env.get(f"{name.upper()}_REPLICAS", "1")))

    def start(self, timeout: float = 60) -> Stack:
        """Start the stack; when a component found its port taken meanwhile, start again on new ports."""
        for _ in range(START_ATTEMPTS):
            try:
                return self._start_on_ports(timeout)
            except PortTaken:
                self.ports = {name: free_port() for name in self.ports}
                self.env.update({f"{name.upper()}_PORT": str(port) for name, port in self.ports.items()})
                self._derive_origin()
        raise RuntimeError(f"the stack found taken ports {START_ATTEMPTS} times:\n{self.log()}")

    def _start_on_ports(self, timeout: float) -> Stack:
        self.var_dir.mkdir(parents=True, exist_ok=True)
        logged_before = len(self.log())
        self.process = subprocess.Popen(
            [str(REPO / "scripts" / "run.sh")],
            cwd=REPO,
            env=self.env,
            start_new_session=True,
            stdout=self.log_path.open("ab"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            output = self.log()[logged_before:]
            if any(marker in output for marker in ADDRESS_IN_USE):
                self.stop()
                raise PortTaken(self.ports)
            if self.process.poll() is not None:
                raise RuntimeError(f"the stack exited:\n{self.log()}")
            if "the stack is up" in output:
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the stack did not come up:\n{self.log()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_lines(self, marker: str, *components: str, timeout: float = 5) -> list[str]:
        """Lines mentioning `marker`, waiting until each component has logged its access line for it
        (honcho relays them)."""
        deadline = time.monotonic() + timeout
        while True:
            lines = [line for line in self.log().splitlines() if marker in line]
            # A component's access line (it has the path) is the last it writes for a request: a
            # security event of the same request comes before it.
            if all(any(f"{c}.1" in line and '"path"' in line for line in lines) for c in components):
                return lines
            if time.monotonic() > deadline:
                return lines
            time.sleep(0.1)


class GatewayProcess(MovesOffATakenPort):
    """nginx from the same template as `make run`, in front of upstreams the test controls: a port
    per service, or a list of ports for its replicas."""

    def __init__(self, var_dir: Path, upstreams: Mapping[str, int | list[int]]) -> None:
        self.var_dir = var_dir
        self.upstreams = upstreams
        self.prefix = var_dir / "gateway"
        self.prefix.mkdir(parents=True, exist_ok=True)
        self.config = self.prefix / "nginx.conf"
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def _write_config(self) -> None:
        from scripts.run_stack import (
            GATEWAY_SOURCE_ADDRESS,
            main_nginx_config,
            render_gateway_config,
            upstream_servers,
        )

        server_config = self.prefix / "gateway.conf"
        server_config.write_text(
            render_gateway_config(
                {
                    "GATEWAY_PORT": str(self.port),
                    **{
                        f"{name.upper()}_UPSTREAM_SERVERS": upstream_servers(
                            ports if isinstance(ports, list) else [ports]
                        )
                        for name, ports in self.upstreams.items()
                    },
                    "WEB_ROOT": str(REPO / "gateway" / "web"),
                    "TOKEN_CLIENT_ROOT": str(REPO / "clients" / "js" / "src"),
                    "UPSTREAM_BIND": GATEWAY_SOURCE_ADDRESS,
                    # nginx's counters on a socket file: no second port to find free.
                    "GATEWAY_STATUS_LISTEN": f"unix:{self.prefix / 'status.sock'}",
                }
            )
        )
        self.config.write_text(main_nginx_config(self.var_dir, server_config))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _start_on_port(self) -> GatewayProcess:
        self._write_config()
        # nginx leaves its socket file behind when it stops, or fails to start on a taken port; a
        # stale one would make every later start fail as if its port were taken.
        (self.prefix / "status.sock").unlink(missing_ok=True)
        errors = self.prefix / "nginx-stderr.log"
        with errors.open("wb") as stderr:
            self.process = subprocess.Popen(
                ["nginx", "-c", str(self.config), "-p", str(self.prefix), "-g", "daemon off;"],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            # nginx keeps retrying a taken port for a while: give up on it at once.
            output = errors.read_text(errors="replace")
            if any(marker in output for marker in ADDRESS_IN_USE) or self.process.poll() is not None:
                self.stop(graceful=False)
                if any(marker in output for marker in ADDRESS_IN_USE):
                    raise PortTaken(self.port)
                raise RuntimeError(f"nginx exited:\n{output}")
            if self.port in listening_ports(self.process.pid):
                try:
                    if requests.get(f"{self.url}/healthz", timeout=0.5).ok:
                        return self
                except requests.ConnectionError:
                    pass
            time.sleep(0.05)
        self.stop(graceful=False)
        raise RuntimeError("nginx did not start")

    def stop(self, graceful: bool = True) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT if graceful else signal.SIGTERM)
            self.process.wait(10)
