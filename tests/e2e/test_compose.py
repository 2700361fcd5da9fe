"""docker compose and `make run` route the same paths from the same gateway template."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from deploy.secrets import generate_secrets
from scripts.run_stack import TEMPLATE, TEMPLATE_VARIABLES, render_gateway_config
from tests.support.processes import REPO


def _compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def _locations(config: str) -> list[str]:
    return re.findall(r"^\s*location\s+([^{]+?)\s*\{", config, flags=re.MULTILINE)


def _mount_source(mounts: dict[str, str], name: str) -> str:
    return next(source for source in mounts if source.endswith(name))


def test_compose_file_is_valid():
    result = subprocess.run(
        ["docker-compose", "--env-file", ".env.example", "config", "--quiet"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_compose_mounts_the_template_that_make_run_renders():
    gateway = _compose()["services"]["gateway"]
    mounts = {source: target for source, target, *_ in (v.split(":") for v in gateway["volumes"])}
    template = (REPO / _mount_source(mounts, "nginx.conf.template")).resolve()
    assert template == TEMPLATE.resolve()
    assert mounts[_mount_source(mounts, "nginx.conf.template")].startswith("/etc/nginx/templates/")
    assert set(TEMPLATE_VARIABLES) <= set(gateway["environment"])
    assert set(re.findall(r"\$\{([A-Z_]+)\}", TEMPLATE.read_text())) == set(TEMPLATE_VARIABLES)
    # The token client is served from the package's src/ (one source), mounted at its own root.
    assert mounts["./clients/js/src"] == gateway["environment"]["TOKEN_CLIENT_ROOT"]


def test_both_ways_render_the_same_routes_to_the_same_services():
    gateway_env = _compose()["services"]["gateway"]["environment"]
    compose_config = render_gateway_config({**gateway_env, "GATEWAY_PORT": "8080"})
    local_config = render_gateway_config(
        {
            "GATEWAY_PORT": "8080",
            "AUTH_UPSTREAM_SERVERS": "server 127.0.0.1:8001;",
            "PROFILE_UPSTREAM_SERVERS": "server 127.0.0.1:8002;",
            "BOARD_UPSTREAM_SERVERS": "server 127.0.0.1:8003;",
            "WEB_ROOT": "/srv/web",
            "TOKEN_CLIENT_ROOT": "/srv/token-client",
            "UPSTREAM_BIND": "127.0.0.2",
            "GATEWAY_STATUS_LISTEN": "127.0.0.1:8079",
        }
    )
    assert _locations(compose_config) == _locations(local_config)
    assert {"/api/auth/", "/api/profiles", "/api/boards", "= /.well-known/jwks.json", "/"} <= set(
        _locations(local_config)
    )
    services = _compose()["services"]
    for variable in ("AUTH_UPSTREAM_SERVERS", "PROFILE_UPSTREAM_SERVERS", "BOARD_UPSTREAM_SERVERS"):
        hosts = re.findall(r"\bserver\s+([a-z-]+):\d+", gateway_env[variable])
        assert hosts and all(host in services and "healthcheck" in services[host] for host in hosts), variable


def test_private_key_is_mounted_into_auth_only():
    services = _compose()["services"]
    holders = {
        name
        for name, service in services.items()
        if any(str(v).startswith("signing-key:") for v in service.get("volumes", []))
    }
    assert holders == {"auth", "keygen"}
    for name in ("profile", "board"):
        assert services[name]["environment"]["JWKS_PATH"].startswith("/keys/public/")


def _one_shots(services: dict) -> set[str]:
    return {name for name, service in services.items() if service.get("restart") == "no"}


# The exporter's image holds its binary alone (no shell, no wget) and nothing waits for it:
# Prometheus's `up` series is its health.
UNCHECKED = {"gateway-metrics"}


def test_every_long_running_service_has_a_healthcheck_and_waits_for_healthy_dependencies():
    services = _compose()["services"]
    one_shots = _one_shots(services)
    assert one_shots == {"secrets", "keygen", "auth-migrate", "profile-migrate", "board-migrate"}
    for name, service in services.items():
        if name not in one_shots | UNCHECKED:
            assert "healthcheck" in service, name
        assert name not in UNCHECKED or not any(name in s.get("depends_on", {}) for s in services.values())
        for dependency, rule in service.get("depends_on", {}).items():
            expected = "service_completed_successfully" if dependency in one_shots else "service_healthy"
            assert rule["condition"] == expected, (name, dependency)


@pytest.mark.parametrize("name", ["auth", "profile", "board"])
def test_each_service_starts_after_its_database_is_migrated(name: str):
    services = _compose()["services"]
    service, migrate = services[name], services[f"{name}-migrate"]
    assert migrate["command"] == ["python", "-m", service["environment"]["SERVICE"], "db", "upgrade"]
    variable = f"{name.upper()}_DATABASE_URL"
    assert migrate["environment"][variable] == service["environment"][variable]
    assert service["depends_on"][f"{name}-migrate"] == {"condition": "service_completed_successfully"}
    assert migrate["depends_on"]["postgres"] == {"condition": "service_healthy"}
    # Migrating needs the database only: no signing key, and no production check that asks for one;
    # its password comes from the service's own secrets volume.
    assert migrate["volumes"] == [f"{name}-secrets:/run/secrets:ro"] and "APP_ENV" not in migrate["environment"]
    password_file = f"{name.upper()}_DATABASE_PASSWORD_FILE"
    assert migrate["environment"][password_file] == service["environment"][password_file]


def test_images_run_as_non_root_and_carry_no_secrets():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r"^USER app$", dockerfile, flags=re.MULTILINE)
    assert "COPY var" not in dockerfile and ".pem" not in dockerfile
    assert "var" in Path(REPO / ".dockerignore").read_text().split()


def test_only_the_gateway_publishes_a_port_and_only_on_loopback():
    # The services must sit behind nginx: gunicorn alone is open to slow clients (see SECURITY.md).
    services = _compose()["services"]
    published = {name: service["ports"] for name, service in services.items() if "ports" in service}
    assert list(published) == ["gateway"]
    assert all(port.startswith("127.0.0.1:") for port in published["gateway"])
    assert not any("expose" in service or service.get("network_mode") == "host" for service in services.values())


def test_no_container_can_take_the_gateways_fixed_address():
    # Engines hand out addresses in order; without an ip_range the gateway, started last, found
    # its address taken by a service (tests/containers/test_compose.py runs the whole file).
    import ipaddress

    compose = _compose()
    (config,) = compose["networks"]["backend"]["ipam"]["config"]
    fixed = ipaddress.ip_address(compose["services"]["gateway"]["networks"]["backend"]["ipv4_address"])
    subnet, handed_out = ipaddress.ip_network(config["subnet"]), ipaddress.ip_network(config["ip_range"])
    assert fixed in subnet and handed_out.subnet_of(subnet) and fixed not in handed_out
    for service in compose["services"].values():
        assert service.get("environment", {}).get("TRUSTED_PROXY_ADDRESSES", str(fixed)) == str(fixed)


# Issue 14: `docker compose up` with no .env, every password generated; replicas with --scale.

SCALED = ("auth", "profile", "board")
PASSWORD_VARIABLES = tuple(generate_secrets.PASSWORDS)


def _rendered(directory: Path, **environment: str) -> dict:
    """`docker-compose config` as a fresh checkout renders it: no .env, no password in the shell."""
    empty = directory / "empty.env"
    empty.write_text("")
    shell = {name: value for name, value in os.environ.items() if name not in PASSWORD_VARIABLES}
    result = subprocess.run(
        ["docker-compose", "--env-file", str(empty), "config"],
        cwd=REPO,
        env={**shell, **environment},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return _rendered(tmp_path_factory.mktemp("compose"))


def _strings(node: object) -> list[str]:
    if isinstance(node, dict):
        return [*node.keys(), *(text for value in node.values() for text in _strings(value))]
    if isinstance(node, list):
        return [text for item in node for text in _strings(item)]
    return [str(node)]


def _variables(services: dict) -> dict[tuple[str, str], str]:
    return {
        (name, variable): str(value)
        for name, service in services.items()
        for variable, value in (service.get("environment") or {}).items()
    }


def test_compose_needs_no_env_file_and_renders_no_password(rendered: dict):
    services = rendered["services"]
    for (name, variable), value in _variables(services).items():
        if "PASSWORD" in variable and not variable.endswith("_FILE"):
            assert value == "", (name, variable)  # only the generator's overrides, unset
    texts = _strings(services)
    assert not [text for text in texts if re.search(r"://[^/@\s]*:[^/@\s]+@", text)]  # no URL with a password
    assert not [text for text in texts if "change-me" in text]


def test_a_password_set_in_the_environment_reaches_the_generator_only(tmp_path: Path):
    chosen = {variable: f"chosen-{variable.lower()}-{index}" for index, variable in enumerate(PASSWORD_VARIABLES)}
    services = _rendered(tmp_path, **chosen)["services"]
    assert {variable: services["secrets"]["environment"][variable] for variable in chosen} == chosen
    others = {name: service for name, service in services.items() if name != "secrets"}
    assert not [text for text in _strings(others) if any(value in text for value in chosen.values())]


def test_every_service_scales_and_the_gateway_reaches_every_replica(rendered: dict):
    services = rendered["services"]
    gateway_settings = " ".join(str(value) for value in services["gateway"]["environment"].values())
    for name in SCALED:
        service = services[name]
        # What `--scale` refuses or breaks: a fixed name, a host port, a fixed address.
        assert "container_name" not in service and "ports" not in service, name
        assert all(not network or "ipv4_address" not in network for network in service["networks"].values()), name
        # By its service name, which Docker's DNS answers with every replica's address.
        assert re.search(rf"(?<![\w.-]){name}:8000\b", gateway_settings), name
    # The services trust X-Forwarded-For from the gateway's one fixed address (the gateway is not scaled).
    gateway_address = services["gateway"]["networks"]["backend"]["ipv4_address"]
    assert all(services[name]["environment"]["TRUSTED_PROXY_ADDRESSES"] == gateway_address for name in SCALED)


# Who mounts each secrets volume: the generator, and the consumer it was written for.
SECRET_READERS = {
    "secrets": set(),
    "postgres-secrets": {"postgres"},
    "redis-secrets": {"redis"},
    "auth-secrets": {"auth", "auth-migrate"},
    "profile-secrets": {"profile", "profile-migrate"},
    "board-secrets": {"board", "board-migrate"},
}


def _mounts(service: dict) -> dict[str, tuple[str, str]]:
    """Volume name: (mount point, mode)."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target, *mode = volume.split(":")
        mounts[source] = (target, mode[0] if mode else "rw")
    return mounts


def test_each_secret_is_mounted_read_only_and_only_where_it_is_used(rendered: dict):
    services = rendered["services"]
    assert set(SECRET_READERS) <= set(rendered["volumes"])
    for volume, readers in SECRET_READERS.items():
        holders = {name for name, service in services.items() if volume in _mounts(service)}
        assert holders == {"secrets", *readers}, volume
        assert all(_mounts(services[name])[volume] == ("/run/secrets", "ro") for name in readers), volume
    # The generator has no network: it needs none, so a bug in it can send nothing anywhere.
    assert services["secrets"]["network_mode"] == "none"


def _waits_for(services: dict, name: str, dependency: str) -> bool:
    return any(
        other == dependency or _waits_for(services, other, dependency) for other in services[name].get("depends_on", {})
    )


def test_every_password_file_a_service_reads_is_one_the_generator_writes_for_it(rendered: dict):
    services = rendered["services"]
    written = generate_secrets.consumer_files(dict.fromkeys(PASSWORD_VARIABLES, "x"))
    readers = {reader: volume.removesuffix("-secrets") for volume, names in SECRET_READERS.items() for reader in names}
    read = {}
    for (name, variable), value in _variables(services).items():
        if variable.endswith("_PASSWORD_FILE"):
            read[name, variable] = value
            directory, file_name = value.rsplit("/", 1)
            assert directory == "/run/secrets" and file_name in written[readers[name]], (name, variable)
    # Each service's URLs take their password from a file; the migrate steps alike.
    for name in SCALED:
        assert (name, f"{name.upper()}_DATABASE_PASSWORD_FILE") in read
        assert (f"{name}-migrate", f"{name.upper()}_DATABASE_PASSWORD_FILE") in read
    assert ("auth", "REDIS_PASSWORD_FILE") in read
    assert {name for name, variable in read if variable == "REVOCATION_FEED_PASSWORD_FILE"} == {"profile", "board"}
    for name in readers:
        assert _waits_for(services, name, "secrets"), name


def test_redis_and_postgres_start_from_the_generated_files(rendered: dict):
    services = rendered["services"]
    written = generate_secrets.consumer_files(dict.fromkeys(PASSWORD_VARIABLES, "x"))
    redis = services["redis"]
    assert redis["command"][:2] == ["redis-server", "/run/secrets/redis.conf"] and "redis.conf" in written["redis"]
    assert "/run/secrets/redis.conf" in " ".join(redis["healthcheck"]["test"])  # ping needs the password too
    postgres = services["postgres"]["environment"]
    assert postgres == {"POSTGRES_PASSWORD_FILE": "/run/secrets/postgres-password"}
    assert "postgres-password" in written["postgres"]
    # create-databases.sh makes one role per <service>-db-password file in /run/secrets.
    assert {"auth-db-password", "profile-db-password", "board-db-password"} <= set(written["postgres"])
    assert "${SECRETS_DIR:-/run/secrets}" in (REPO / "deploy" / "postgres" / "create-databases.sh").read_text()
    # The feed user the resource services log in as is the one the generated config defines.
    for name in ("profile", "board"):
        assert urlsplit(services[name]["environment"]["REVOCATION_FEED_URL"]).username == "revocations"
    assert "user revocations on" in written["redis"]["redis.conf"]
