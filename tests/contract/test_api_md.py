"""docs/API.md and the code agree: the same routes, every error code the code can emit is documented,
and the Configuration and Metrics tables name exactly the environment variables the suite reads and
the metrics (types, labels, label values) it exports.

Drift between the contract and the code is a failing test, not a review comment.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask
from prometheus_client.metrics import MetricWrapperBase

import auth_service
import board_service
import profile_service
from auth_service.config import AuthConfig
from board_service.config import BoardConfig
from profile_service.config import ProfileConfig
from shared import gunicorn_errors, metrics, problems
from shared.service_context import DatabaseServiceContext
from tests.support.processes import REPO

API_MD = (REPO / "docs" / "API.md").read_text()
CODE_FOLDERS = ("shared", "auth_service", "profile_service", "board_service")
# Routes every service has for operators, documented under Operations rather than per service.
OPERATIONAL = {"/healthz", "/readyz", "/openapi.json", "/metrics"}


def _normalise(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path.split("?", maxsplit=1)[0])


@pytest.fixture
def apps(tmp_path: Path, keys_dir: Path) -> list[Flask]:
    built = [
        auth_service.create_app(
            AuthConfig(
                database_url=f"sqlite:///{tmp_path}/a.db",
                app_env="test",
                signing_key_path=keys_dir / "signing.pem",
                jwks_path=keys_dir / "jwks.json",
            )
        ),
        profile_service.create_app(
            ProfileConfig(database_url=f"sqlite:///{tmp_path}/p.db", app_env="test", jwks_path=keys_dir / "jwks.json")
        ),
        board_service.create_app(
            BoardConfig(database_url=f"sqlite:///{tmp_path}/b.db", app_env="test", jwks_path=keys_dir / "jwks.json")
        ),
    ]
    yield built
    for app in built:
        DatabaseServiceContext.of(app).engine.dispose()


def _served_routes(apps: list[Flask]) -> set[tuple[str, str]]:
    routes = set()
    for app in apps:
        document = app.test_client().get("/openapi.json").json
        routes |= {
            (method.upper(), _normalise(path)) for path, methods in document["paths"].items() for method in methods
        }
    return routes


def _documented_routes() -> set[tuple[str, str]]:
    mentioned = re.findall(r"`(GET|POST|PUT|PATCH|DELETE) (/[^\s`]*)", API_MD)
    return {(method, _normalise(path)) for method, path in mentioned if path not in OPERATIONAL}


def test_the_documented_routes_are_the_served_routes(apps):
    served, documented = _served_routes(apps), _documented_routes()
    assert served == documented, {
        "served, not documented": served - documented,
        "documented, not served": documented - served,
    }


def test_every_service_serves_the_operational_routes(apps):
    for app in apps:
        client = app.test_client()
        assert client.get("/healthz").status_code == 200
        assert client.get("/openapi.json").status_code == 200
        assert client.get("/metrics").status_code == 200
    assert all(f"`GET {path}`" in API_MD for path in ("/healthz", "/readyz", "/metrics"))


def _emittable_codes() -> set[str]:
    codes = set(problems._HTTP_CODES.values()) | {"http_error"}  # http_error: any other werkzeug status
    codes |= {code for code, _title, _detail in gunicorn_errors._PROBLEMS.values()}
    sources = [path.read_text() for folder in CODE_FOLDERS for path in (REPO / folder).rglob("*.py")]
    sources.append((REPO / "gateway" / "nginx.conf.template").read_text())
    patterns = [
        r'Problem(?:For)?\(\s*\d+,\s*"(\w+)"',
        r'(?:TokenError|DpopError)\(\s*"(\w+)"',
        r'"code":\s*"(\w+)"',
    ]
    for source in sources:
        for pattern in patterns:
            codes |= set(re.findall(pattern, source))
    return codes


def test_every_error_code_the_code_can_emit_is_documented():
    codes = _emittable_codes()
    assert {"csrf_rejected", "unsupported_media_type", "invalid_token", "bad_gateway", "use_dpop_nonce"} <= codes
    undocumented = {code for code in codes if f"`{code}`" not in API_MD}
    assert undocumented == set()


def _configuration_table() -> set[str]:
    """The variables named in the first cells of the tables under docs/API.md's Configuration."""
    section = API_MD.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    first_cells = (line.split(" | ", 1)[0] for line in section.splitlines() if line.lstrip().startswith("| `"))
    return {name for cell in first_cells for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", cell)}


def _variables_read() -> dict[str, str]:
    """Every environment variable a part of the suite reads, with who reads it: each service's config
    fields, gunicorn's settings, `make run`'s own (scripts/run_stack.py) and the metrics directory."""
    read = {
        config.variable_name(field): config.__name__
        for config in (AuthConfig, ProfileConfig, BoardConfig)
        for field in config.model_fields
    }
    gunicorn_conf = (REPO / "gunicorn.conf.py").read_text()
    read |= dict.fromkeys(re.findall(r'_positive_whole_number\("([A-Z_]+)"', gunicorn_conf), "gunicorn.conf.py")
    run_stack = (REPO / "scripts" / "run_stack.py").read_text()
    read |= {f"{name}_PORT": "make run" for name in re.findall(r'\("([A-Z_]+)", "\d+"\)', run_stack)}
    read |= {f"{service.upper()}_REPLICAS": "make run" for service in ("auth", "profile", "board")}
    assert "_REPLICAS" in run_stack and 'env.get("VAR_DIR"' in run_stack
    read["VAR_DIR"] = "make run"
    read["PROMETHEUS_MULTIPROC_DIR"] = "shared/metrics.py"
    return read


def test_every_setting_is_in_the_table():
    """A variable the code reads and the contract does not name is a setting nobody can find; one the
    table names and nothing reads is a promise the code does not keep."""
    read, documented = _variables_read(), _configuration_table()
    assert {"ACCESS_TOKEN_TTL", "WEB_CONCURRENCY", "AUTH_PORT", "GATEWAY_METRICS_PORT", "AUTH_REPLICAS"} <= set(read)
    assert {name: reader for name, reader in read.items() if name not in documented} == {}
    # The OpenTelemetry SDK reads the OTEL_* variables itself.
    assert {name for name in documented if name not in read and not name.startswith("OTEL_")} == set()


def _metrics_table() -> dict[str, tuple[str, str]]:
    """docs/API.md's Metrics table: metric name -> (type, labels cell)."""
    section = API_MD.split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if len(cells) >= 3 and (name := re.fullmatch(r"`([a-z_]+)`", cells[0])):
            rows[name.group(1)] = (cells[1], cells[2])
    return rows


def test_every_metric_is_in_the_table_with_its_type_labels_and_values():
    """Dashboards and alerts are written from the contract: a metric, label or label value the code has
    and the table lacks (or the other way round) breaks them silently."""
    registered = {
        # prometheus-client keeps a counter's name without `_total`, and exposes it with it.
        metric._name + ("_total" if metric._type == "counter" else ""): metric
        for metric in vars(metrics).values()
        if isinstance(metric, MetricWrapperBase)
    }
    table = _metrics_table()
    assert set(registered) == set(table)
    for name, metric in registered.items():
        kind, labels = table[name]
        assert kind == metric._type, name
        assert {label for label in metric._labelnames if f"`{label}`" not in labels} == set(), name
        # The help text lists the values a label takes, "(ok, failed)": the table lists the same.
        listed = re.search(r"\(([a-z_]+(?:, [a-z_]+)+)\)", metric._documentation)
        values = set(listed.group(1).split(", ")) if listed else set()
        assert {value for value in values if f"`{value}`" not in labels} == set(), name
