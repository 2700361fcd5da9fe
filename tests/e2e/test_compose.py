"""docker compose and `make run` route the same paths from the same gateway template."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

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
            "UPSTREAM_BIND": "127.0.0.2",
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


def test_every_long_running_service_has_a_healthcheck_and_waits_for_healthy_dependencies():
    services = _compose()["services"]
    one_shots = _one_shots(services)
    assert one_shots == {"keygen", "auth-migrate", "profile-migrate", "board-migrate"}
    for name, service in services.items():
        if name not in one_shots:
            assert "healthcheck" in service, name
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
    # Migrating needs the database only: no signing key, and no production check that asks for one.
    assert "volumes" not in migrate and "APP_ENV" not in migrate["environment"]


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
