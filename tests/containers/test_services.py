"""auth, profile and board as containers of the image, on the host's network and free ports, against
the tests' private Redis and PostgreSQL: the one-shot steps, the story, and how they run."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field

import pytest
import requests

from tests.containers.support import compose_service, logs, podman, unique, volumes, wait_until
from tests.support.backends import free_port, postgres_database
from tests.support.browser import PASSWORD, Browser

SERVICES = ("auth", "profile", "board")
# What the Kubernetes manifests give each container (deploy/k8s/base): read-only root filesystem,
# /tmp in memory, no capabilities, no privilege escalation; gunicorn's control socket off.
HARDENING = ("--read-only", "--read-only-tmpfs=false", "--tmpfs", "/tmp:rw,size=64m",
             "--cap-drop", "ALL", "--security-opt", "no-new-privileges")  # fmt: skip
# Docker's and Compose's stop grace period (docker-compose.yml sets no stop_grace_period).
GRACE_SECONDS = 10


@dataclass
class Services:
    volumes: dict[str, str]
    ports: dict[str, int]
    containers: dict[str, str] = field(default_factory=dict)
    keygen_output: str = ""

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"


def _ready(url: str) -> bool:
    try:
        return requests.get(f"{url}/readyz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _run(image: str, name: str, env: dict[str, str], mounts: list[str], port: int) -> str:
    container = unique(f"silent-auth-test-{name}")
    environment = [f"--env={key}={value}" for key, value in {**env, "PORT": str(port)}.items()]
    podman("run", "--detach", "--name", container, "--network", "host", *HARDENING, *environment,
           *[f"--volume={mount}" for mount in mounts], image)  # fmt: skip
    return container


@pytest.fixture(scope="module")
def services(image, redis_server) -> Iterator[Services]:
    with ExitStack() as stack:
        named = stack.enter_context(volumes("signing-key", "public-keys"))
        databases = {name: stack.enter_context(postgres_database()) for name in SERVICES}
        running = Services(named, {name: free_port() for name in SERVICES})

        # The one-shot steps, with compose's own commands: the key, then each database's schema.
        keygen = compose_service("keygen")
        running.keygen_output = podman(
            "run", "--rm", "--network", "none", f"--volume={named['signing-key']}:/keys/private",
            f"--volume={named['public-keys']}:/keys/public", image, *keygen["command"],
        ).stdout  # fmt: skip
        for name in SERVICES:
            migrate = compose_service(f"{name}-migrate")
            variable = f"{name.upper()}_DATABASE_URL"
            assert variable in migrate["environment"]
            podman("run", "--rm", "--network", "host", *HARDENING, f"--env={variable}={databases[name]}",
                   image, *migrate["command"])  # fmt: skip

        auth_url = running.url("auth")
        common = {
            "APP_ENV": "production", "JWT_ISSUER": auth_url, "JWT_AUDIENCE": "silent-auth", "JWT_LEEWAY": "0",
            "WEB_CONCURRENCY": "1", "GUNICORN_THREADS": "2", "GUNICORN_CMD_ARGS": "--no-control-socket",
        }  # fmt: skip
        specific = {
            "auth": ({"SERVICE": "auth_service", "AUTH_DATABASE_URL": databases["auth"], "REDIS_URL": redis_server.url,
                      "SIGNING_KEY_PATH": "/keys/private/signing.pem", "JWKS_PATH": "/keys/private/jwks.json",
                      "ACCESS_TOKEN_TTL": "2", "ARGON2_TIME_COST": "1", "ARGON2_MEMORY_COST": "1024",
                      "ARGON2_PARALLELISM": "1"},
                     [f"{named['signing-key']}:/keys/private:ro"]),
            **{
                name: ({"SERVICE": f"{name}_service", f"{name.upper()}_DATABASE_URL": databases[name],
                        "JWKS_PATH": "/keys/public/jwks.json", "JWKS_URL": f"{auth_url}/.well-known/jwks.json",
                        "REVOCATION_FEED_URL": redis_server.url},
                       [f"{named['public-keys']}:/keys/public:ro"])
                for name in ("profile", "board")
            },
        }  # fmt: skip
        try:
            for name in SERVICES:
                env, mounts = specific[name]
                running.containers[name] = _run(image, name, {**common, **env}, mounts, running.ports[name])
            for name in SERVICES:
                wait_until(lambda name=name: _ready(running.url(name)), 90, f"{name} ready:\n"
                           + logs(running.containers[name]))  # fmt: skip
            yield running
        finally:
            for container in running.containers.values():
                podman("rm", "--force", "--time", "0", container, check=False)


def test_the_story_login_expiry_refresh_retry_through_the_containers(services):
    email = f"ctr-{uuid.uuid4().hex[:8]}@example.com"
    auth = Browser(services.url("auth"))
    assert (
        auth.post_credentials("/api/auth/signup", {"email": email, "password": PASSWORD, "name": "Ada"}).status_code
        == 201
    )
    login = auth.post_credentials("/api/auth/login", {"email": email, "password": PASSWORD})
    assert login.status_code == 200 and login.json()["expires_in"] == 2

    profile = Browser(services.url("profile"))
    profile.access_token = auth.access_token
    assert profile.api("GET", "/api/profiles/me").json()["name"] == "Ada"

    time.sleep(3)  # the access token expires
    expired = profile.api("GET", "/api/profiles/me")
    assert expired.status_code == 401 and expired.json()["code"] == "token_expired"

    old_refresh = auth.refresh_token
    assert auth.cookie_call("/api/auth/refresh").status_code == 200
    assert auth.refresh_token != old_refresh
    profile.access_token = auth.access_token
    assert profile.api("GET", "/api/profiles/me").status_code == 200
    board = Browser(services.url("board"))
    board.access_token = auth.access_token
    created = board.api("POST", "/api/boards", json={"title": "from a container", "content": "hello"})
    assert created.status_code == 201, created.text


def _exec(container: str, *command: str, user: str | None = None) -> tuple[int, str]:
    result = podman("exec", *(["--user", user] if user else []), container, *command, check=False)
    return result.returncode, (result.stdout + result.stderr).strip()


@pytest.mark.parametrize("name", SERVICES)
def test_each_runs_as_the_non_root_user_on_a_read_only_root_filesystem(services, name):
    container = services.containers[name]
    inspected = json.loads(podman("inspect", container).stdout)[0]
    assert inspected["HostConfig"]["ReadonlyRootfs"] is True
    assert _exec(container, "id", "-u") == (0, "10001")
    # gunicorn's master runs as that user too, not only the command `exec` starts.
    status, owners = _exec(container, "sh", "-c", "for s in /proc/[0-9]*/status; do grep '^Uid:' $s; done")
    assert status == 0 and {line.split()[1] for line in owners.splitlines()} == {"10001"}
    assert _exec(container, "touch", "/app/written")[0] != 0
    assert _exec(container, "touch", "/tmp/written")[0] == 0


def test_the_private_key_is_in_auth_only_and_readable_by_the_service_user_alone(services):
    status, listing = _exec(services.containers["auth"], "stat", "-c", "%n %u %a", "/keys/private/signing.pem")
    assert status == 0 and listing.split()[1:] == ["10001", "600"]
    assert _exec(services.containers["auth"], "touch", "/keys/private/other")[0] != 0  # mounted read-only
    for name in ("profile", "board"):
        container = services.containers[name]
        assert _exec(container, "sh", "-c", "ls -A /keys/private")[1] == ""
        assert _exec(container, "test", "-r", "/keys/public/jwks.json")[0] == 0
        status, found = _exec(container, "sh", "-c", "grep -rl 'PRIVATE KEY-----' /keys /app 2>/dev/null || true")
        assert found == ""


def test_the_key_generation_step_leaves_nothing_private_on_the_public_volume(services, image):
    listed = podman("run", "--rm", "--network", "none", f"--volume={services.volumes['public-keys']}:/keys/public:ro",
                    image, "ls", "-A", "/keys/public")  # fmt: skip
    assert listed.stdout.split() == ["jwks.json"]


def test_sigterm_stops_a_service_gracefully_within_the_grace_period(services, image):
    port = free_port()
    container = _run(image, "board-stop", {"SERVICE": "board_service", "WEB_CONCURRENCY": "2",
                     "GUNICORN_CMD_ARGS": "--no-control-socket", "BOARD_DATABASE_URL": "sqlite:////tmp/board.db",
                     "JWKS_PATH": "/keys/public/jwks.json"},
                     [f"{services.volumes['public-keys']}:/keys/public:ro"], port)  # fmt: skip
    try:
        wait_until(lambda: _healthy(port), 60, "the extra board container to answer:\n" + logs(container))
        assert json.loads(podman("inspect", container).stdout)[0]["Config"]["StopSignal"] in ("SIGTERM", "15", 15)
        podman("stop", "--time", str(GRACE_SECONDS), container, timeout=GRACE_SECONDS + 30)
        state = json.loads(podman("inspect", container).stdout)[0]["State"]
        # Killed at the end of the grace period, it would have exited 137 (SIGKILL).
        assert state["ExitCode"] == 0, logs(container)
    finally:
        podman("rm", "--force", "--time", "0", container, check=False)


def _healthy(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_the_secrets_step_hands_each_volume_to_its_reader(image):
    secrets = compose_service("secrets")
    consumers = ("secrets", "postgres-secrets", "redis-secrets", "auth-secrets", "profile-secrets", "board-secrets")
    with volumes(*consumers) as named:
        mounts = []
        for mount in secrets["volumes"]:
            source, target, *mode = mount.split(":")
            if source.startswith("./"):
                from tests.support.processes import REPO

                source = str(REPO / source[2:])
            else:
                source = named[source]
            mounts.append(f"--volume={':'.join([source, target, *mode])}")
        podman("run", "--rm", "--user", secrets["user"], "--network", secrets["network_mode"], *mounts, image,
               *secrets["command"])  # fmt: skip
        owners = {"postgres-secrets": "70", "redis-secrets": "999", "auth-secrets": "10001",
                  "profile-secrets": "10001", "board-secrets": "10001"}  # fmt: skip
        for volume, owner in owners.items():
            listed = podman("run", "--rm", "--network", "none", "--user", "0", f"--volume={named[volume]}:/v:ro",
                            image, "sh", "-c", "stat -c '%u %a' /v; stat -c '%u %a' /v/*")  # fmt: skip
            lines = listed.stdout.split("\n")
            assert lines[0] == f"{owner} 500"
            assert [line for line in lines[1:] if line] and all(line == f"{owner} 400" for line in lines[1:] if line)
