"""The whole docker-compose.yml under podman-compose, on the stand-in redis, postgres and nginx images:
brought up stage by stage in its depends_on order (podman 4.3 ignores compose's conditions, and runs
no healthcheck on its own here: the test waits for each condition itself, running the healthchecks
with `podman healthcheck run`), the story through the gateway on its published port, then `down -v`
leaves nothing of the project behind."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.containers.support import (
    COMPOSE,
    compose_file,
    healthcheck_argv,
    k8s_documents,
    logs,
    podman,
    script,
    unique,
    wait_until,
)
from tests.support.backends import free_port
from tests.support.browser import PASSWORD, Browser
from tests.support.processes import REPO

PODMAN_COMPOSE = str(Path(sys.executable).parent / "podman-compose")
PROJECT_PREFIX = "silent-auth-compose-test"
# The compose file fixes the backend network's subnet (the gateway's address is the one address
# the services trust for X-Forwarded-For), so two of these stacks cannot run at once on a machine:
# each run holds this lock from before its clean-up to after its `down`.
LOCK = Path(tempfile.gettempdir()) / "silent-auth-compose-test.lock"
# A healthcheck that has not passed by then has failed (compose's own budget is interval × retries).
HEALTHY_WITHIN = 240
STANDIN_IMAGES = sorted({service["image"] for service in compose_file()["services"].values() if "build" not in service})


def stages(services: dict) -> list[list[str]]:
    """The services in depends_on order: each stage needs only services of earlier stages."""
    needs = {name: set(_depends_on(service)) for name, service in services.items()}
    ordered: list[list[str]] = []
    while needs:
        ready = sorted(name for name, deps in needs.items() if not deps & needs.keys())
        assert ready, f"depends_on has a cycle among {sorted(needs)}"
        ordered.append(ready)
        for name in ready:
            del needs[name]
    return ordered


def _depends_on(service: dict) -> dict[str, str]:
    """depends_on as {service: condition}; compose's short list form means service_started."""
    depends = service.get("depends_on") or {}
    if isinstance(depends, list):
        return dict.fromkeys(depends, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in depends.items()}


@dataclass
class Stack:
    project: str
    env_file: Path
    env: dict[str, str]
    gateway_port: int
    healthchecks_run: dict[str, int] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def compose(self, *args: str, timeout: float = 300) -> str:
        result = subprocess.run(
            [PODMAN_COMPOSE, "--env-file", str(self.env_file), "-f", str(COMPOSE), "-p", self.project, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=REPO,
            env=self.env,
            stdin=subprocess.DEVNULL,
        )
        if result.returncode != 0:
            output = result.stdout + result.stderr
            raise RuntimeError(f"podman-compose {' '.join(args)} failed ({result.returncode}):\n{output}")
        return result.stdout + result.stderr

    def container(self, service: str) -> str:
        names = _project_containers(self.project, service)
        assert len(names) == 1, f"{service}: containers {names}"
        return names[0]

    def inspect(self, service: str) -> dict:
        return json.loads(podman("inspect", self.container(service)).stdout)[0]

    def wait_for(self, service: str, condition: str) -> None:
        container = self.container(service)
        if condition == "service_completed_successfully":
            status = podman("wait", container, timeout=HEALTHY_WITHIN).stdout.strip()
            assert status == "0", f"{service} exited {status}:\n{logs(container)}"
        elif condition == "service_healthy":
            wait_until(lambda: self.healthcheck(service), HEALTHY_WITHIN, f"{service} healthy:\n" + logs(container), 1)
        else:
            assert condition == "service_started", condition
            assert self.inspect(service)["State"]["Running"], logs(container)

    def healthcheck(self, service: str) -> bool:
        """One run of the container's own healthcheck, as podman's timer would run it."""
        state = self.inspect(service)["State"]
        # A container that is not running never becomes healthy: no need to wait for it.
        assert state["Running"], f"{service} is {state['Status']}:\n{state.get('Error', '')}\n" + logs(
            self.container(service)
        )
        self.healthchecks_run[service] = self.healthchecks_run.get(service, 0) + 1
        result = podman("healthcheck", "run", self.container(service), check=False, timeout=60)
        return result.returncode == 0 and self.inspect(service)["State"]["Health"]["Status"] == "healthy"


def _project_containers(project: str, service: str | None = None) -> list[str]:
    filters = ["--filter", f"label=io.podman.compose.project={project}"]
    if service:
        filters += ["--filter", f"label=com.docker.compose.service={service}"]
    return podman("ps", "--all", *filters, "--format", "{{.Names}}").stdout.split()


def leftovers(project: str) -> dict[str, list[str]]:
    """Whatever of the project podman still has: containers, pods, networks, volumes."""
    label = f"label=io.podman.compose.project={project}"
    return {
        "containers": _project_containers(project),
        "pods": [pod for pod in podman("pod", "ps", "--format", "{{.Name}}").stdout.split() if project in pod],
        "networks": [net for net in podman("network", "ls", "--format", "{{.Name}}").stdout.split() if project in net],
        "volumes": podman("volume", "ls", "--filter", label, "--format", "{{.Name}}").stdout.split(),
    }


def _clean_up_earlier_runs(make_stack) -> None:
    """Projects an interrupted run left (the lock is ours, so none of them is live), taken down;
    any other holder of the compose file's subnet is someone else's: fail, never remove it."""
    projects = set()
    for line in podman("ps", "--all", "--format", '{{ index .Labels "io.podman.compose.project" }}').stdout.split():
        if line.startswith(PROJECT_PREFIX):
            projects.add(line)
    for network in podman("network", "ls", "--format", "{{.Name}}").stdout.split():
        if network.startswith(PROJECT_PREFIX):
            projects.add(network.rsplit("_", 1)[0])
    volumes = podman("volume", "ls", "--format", '{{ index .Labels "io.podman.compose.project" }}').stdout.split()
    projects.update(project for project in volumes if project.startswith(PROJECT_PREFIX))
    for project in projects:
        make_stack(project).compose("down", "--volumes", "--timeout", "0")
    subnet = compose_file()["networks"]["backend"]["ipam"]["config"][0]["subnet"]
    for network in json.loads(podman("network", "inspect", *podman("network", "ls", "-q").stdout.split()).stdout):
        holders = [s["subnet"] for s in network.get("subnets") or []]
        if subnet in holders:
            pytest.fail(f"podman network {network['name']} holds {subnet}, which docker-compose.yml fixes: remove it")


@pytest.fixture(scope="module")
def stack(image) -> Iterator[Stack]:
    script("standin-images.sh", *STANDIN_IMAGES)
    gateway_port = free_port()
    settings = {
        "GATEWAY_PORT": str(gateway_port),
        "JWT_ISSUER": f"http://127.0.0.1:{gateway_port}",
        "JWT_LEEWAY": "0",
        "ACCESS_TOKEN_TTL": "2",
        "WEB_CONCURRENCY": "1",
        "GUNICORN_THREADS": "2",
    }
    with tempfile.TemporaryDirectory() as scratch, LOCK.open("a") as lock:
        env_file = Path(scratch) / "compose.env"
        env_file.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
        # Only what podman needs from ours: a setting of the outer environment (POSTGRES_PASSWORD,
        # say) would reach the compose file's interpolation.
        env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "TMPDIR") if key in os.environ}

        def make_stack(project: str) -> Stack:
            return Stack(project, env_file, env, gateway_port)

        fcntl.flock(lock, fcntl.LOCK_EX)
        _clean_up_earlier_runs(make_stack)
        running = make_stack(unique(PROJECT_PREFIX))
        services = compose_file()["services"]
        try:
            for stage in stages(services):
                for name in stage:
                    for dependency, condition in _depends_on(services[name]).items():
                        running.wait_for(dependency, condition)
                running.compose("up", "--detach", "--no-build", "--no-deps", *stage)
            # What nothing depends on (the gateway) must come to healthy too.
            for name, service in services.items():
                if "healthcheck" in service:
                    running.wait_for(name, "service_healthy")
            yield running
        finally:
            if any(leftovers(running.project).values()):
                running.compose("down", "--volumes", "--timeout", "0")


def test_the_stack_comes_up_in_depends_on_order_with_every_one_shot_done(stack):
    services = compose_file()["services"]
    order = [name for stage in stages(services) for name in stage]
    for name, service in services.items():
        for dependency in _depends_on(service):
            assert order.index(dependency) < order.index(name)
    for name, service in services.items():
        state = stack.inspect(name)["State"]
        if service.get("restart") == "no":
            assert (state["Status"], state["ExitCode"]) == ("exited", 0), logs(stack.container(name))
        else:
            assert state["Running"], logs(stack.container(name))


def test_each_healthcheck_is_the_compose_files_and_passes(stack):
    for name, service in compose_file()["services"].items():
        if "healthcheck" not in service:
            continue
        configured = stack.inspect(name)["Config"]["Healthcheck"]["Test"]
        # What podman runs is what docker-compose.yml writes ($$ read as $).
        assert healthcheck_argv(configured) == healthcheck_argv(service["healthcheck"]["test"]), name
        assert stack.healthchecks_run.get(name), name
        assert stack.healthcheck(name), logs(stack.container(name))


# The container of a Deployment that compose runs as a service of its own: the gateway pod's exporter.
COMPOSE_SERVICE_OF_CONTAINER = {("gateway", "metrics"): "gateway-metrics"}


def _k8s_probes() -> Iterator[tuple[str, str, int, str, dict]]:
    """(compose service, probe kind, container port, path, container env) for each HTTP probe in deploy/k8s."""
    for name in ("auth", "profile", "board", "gateway"):
        for document in k8s_documents(name):
            if document.get("kind") != "Deployment":
                continue
            for container in document["spec"]["template"]["spec"]["containers"]:
                ports = {port["name"]: port["containerPort"] for port in container.get("ports", [])}
                env = {item["name"]: item.get("value") for item in container.get("env", [])}
                for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
                    if kind in container:
                        probe = container[kind]["httpGet"]
                        port = probe["port"]
                        service = COMPOSE_SERVICE_OF_CONTAINER.get((name, container["name"]), name)
                        yield service, kind, ports.get(port, port), probe["path"], env


def test_each_kubernetes_probe_passes_against_the_compose_containers(stack):
    probes = list(_k8s_probes())
    assert {name for name, *_ in probes} == {"auth", "profile", "board", "gateway", "gateway-metrics"}
    for name, kind, container_port, path, env in probes:
        port = container_port
        if name == "gateway":
            # The manifest listens on its GATEWAY_PORT (its container port); compose on ours.
            assert env["GATEWAY_PORT"] == str(container_port)
            port = stack.gateway_port
        # As the kubelet does: an HTTP GET from outside the container, to its address.
        networks = stack.inspect(name)["NetworkSettings"]["Networks"]
        address = next(iter(networks.values()))["IPAddress"]
        response = requests.get(f"http://{address}:{port}{path}", timeout=5)
        assert 200 <= response.status_code < 400, (name, kind, path, response.status_code)


def test_the_story_through_the_gateway_on_its_published_port(stack):
    bindings = stack.inspect("gateway")["HostConfig"]["PortBindings"]
    # Published on loopback only; the image's EXPOSE adds an unbound entry.
    assert {port: bound for port, bound in bindings.items() if bound} == {
        f"{stack.gateway_port}/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(stack.gateway_port)}]
    }
    browser = Browser(stack.url)
    email = f"compose-{uuid.uuid4().hex[:8]}@example.com"
    signup = browser.post_credentials("/api/auth/signup", {"email": email, "password": PASSWORD, "name": "Ada"})
    assert signup.status_code == 201, signup.text
    login = browser.post_credentials("/api/auth/login", {"email": email, "password": PASSWORD})
    assert login.status_code == 200 and login.json()["expires_in"] == 2
    assert browser.api("GET", "/api/profiles/me").json()["name"] == "Ada"

    time.sleep(3)  # the access token expires
    expired = browser.api("GET", "/api/profiles/me")
    assert expired.status_code == 401 and expired.json()["code"] == "token_expired"

    old_refresh = browser.refresh_token
    assert browser.cookie_call("/api/auth/refresh").status_code == 200
    assert browser.refresh_token != old_refresh
    assert browser.api("GET", "/api/profiles/me").status_code == 200
    created = browser.api("POST", "/api/boards", json={"title": "through the gateway", "content": "hello"})
    assert created.status_code == 201, created.text
    # The services saw the gateway's fixed address, the one they trust for X-Forwarded-For.
    trusted = compose_file()["services"]["auth"]["environment"]["TRUSTED_PROXY_ADDRESSES"]
    gateway_address = stack.inspect("gateway")["NetworkSettings"]["Networks"]
    assert [network["IPAddress"] for network in gateway_address.values()] == [trusted]


def test_the_gateway_exporter_serves_nginx_counters(stack):
    # Inside the compose network only: nothing publishes it (Prometheus scrapes it there).
    assert not any(stack.inspect("gateway-metrics")["HostConfig"]["PortBindings"].values())
    address = next(iter(stack.inspect("gateway-metrics")["NetworkSettings"]["Networks"].values()))["IPAddress"]
    exposed = requests.get(f"http://{address}:9113/metrics", timeout=5).text
    assert "\nnginx_up 1" in exposed and "nginx_http_requests_total" in exposed
    # And each service's own /metrics answers on its port inside the network.
    for name in ("auth", "profile", "board"):
        networks = stack.inspect(name)["NetworkSettings"]["Networks"]
        service_address = next(iter(networks.values()))["IPAddress"]
        assert "http_requests_total" in requests.get(f"http://{service_address}:8000/metrics", timeout=5).text


def test_down_leaves_nothing_of_the_project(stack):
    assert any(leftovers(stack.project).values())
    stack.compose("down", "--volumes")
    assert leftovers(stack.project) == {"containers": [], "pods": [], "networks": [], "volumes": []}
