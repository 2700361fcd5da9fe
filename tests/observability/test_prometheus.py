"""A real Prometheus scrapes every process of a running stack with the config `make run` writes;
promtool accepts the alert rules; every metric the rules and the dashboard query exists."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest
import requests
import yaml

from tests.observability.test_metrics import PASSWORD, logged_in, new_user, scrape
from tests.support.backends import free_port
from tests.support.processes import REPO

pytestmark = pytest.mark.servers
OBSERVABILITY = REPO / "deploy" / "observability"
ALERTS = OBSERVABILITY / "alerts.yml"
DASHBOARD = OBSERVABILITY / "grafana" / "silent-auth.json"
# PromQL words that are not metric names.
PROMQL_WORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool"}
# Series Prometheus makes itself for every target.
SYNTHETIC = {"up"}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, check=False)


def test_promtool_accepts_the_alert_rules():
    checked = promtool("check", "rules", str(ALERTS))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 7 rules found" in checked.stdout


def test_prometheus_scrapes_every_process_of_the_stack(stack, tmp_path):
    generated = stack.var_dir / "observability" / "prometheus.yml"
    assert promtool("check", "config", str(generated)).returncode == 0
    config = yaml.safe_load(generated.read_text())
    config["global"]["scrape_interval"] = "1s"  # the test waits for the first scrapes, not 15 s
    fast = tmp_path / "prometheus.yml"
    fast.write_text(yaml.safe_dump(config))
    port = free_port()
    prometheus = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={fast}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "prometheus.log").open("w"),
    )
    try:
        targets: list[dict[str, object]] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                targets = requests.get(f"http://127.0.0.1:{port}/api/v1/targets", timeout=2).json()["data"][
                    "activeTargets"
                ]
            except requests.ConnectionError:
                targets = []
            if targets and all(target["health"] == "up" for target in targets):
                break
            time.sleep(0.5)
        health = {target["labels"]["job"]: target["health"] for target in targets}  # type: ignore[index]
        assert health == dict.fromkeys(("auth", "profile", "board", "gateway"), "up"), (
            json.dumps(targets, indent=1) + (tmp_path / "prometheus.log").read_text()
        )
        rules = requests.get(f"http://127.0.0.1:{port}/api/v1/rules", timeout=2).json()["data"]["groups"]
        assert [len(group["rules"]) for group in rules] == [7]
    finally:
        prometheus.terminate()
        prometheus.wait(10)


def metric_names(expression: str) -> set[str]:
    """The metric names a PromQL expression reads."""
    text = re.sub(r'"[^"]*"', "", expression)  # label values
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", text)  # grouping labels
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    names = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", text))
    return {name for name in names if name not in PROMQL_WORDS and not re.fullmatch(r"\d+[smhdwy]?", name)}


def queried_names() -> dict[str, set[str]]:
    expressions = {
        rule["alert"]: rule["expr"] for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]
    }
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel["targets"]:
            expressions[f"{panel['title']} ({target['refId']})"] = target["expr"]
    return {where: metric_names(expression) for where, expression in expressions.items()}


def test_every_metric_the_alerts_and_the_dashboard_query_exists(stack):
    # Make each event happen once, so that every labelled metric has a sample to show.
    email, _ = new_user(stack, "names")
    browser = logged_in(stack, email)
    browser.api("GET", "/api/profiles/me")
    browser.cookie_call("/api/auth/refresh")
    requests.post(f"{stack.url}/api/auth/login", json={"email": email, "password": PASSWORD + "!"})
    browser.cookie_call("/api/auth/logout")
    time.sleep(1.5)  # the feed delivers the logout; the JWKS is read again
    browser.api("GET", "/api/profiles/me")

    exposed = set(SYNTHETIC)
    for url in [stack.service_url(name) for name in ("auth", "profile", "board")] + [
        f"http://127.0.0.1:{stack.ports['gateway_metrics']}"
    ]:
        exposed |= {name for name, _ in scrape(url)}
    names = queried_names()
    assert sum(map(len, names.values())) > 10  # the parser finds names at all
    missing = {where: sorted(used - exposed) for where, used in names.items() if used - exposed}
    assert missing == {}


def test_the_metric_name_parser_sees_through_promql():
    assert metric_names(
        'histogram_quantile(0.99, sum by (le, service) (rate(revocation_feed_lag_seconds_bucket{a="b"}[5m]))) > 1'
    ) == {"revocation_feed_lag_seconds_bucket"}
    assert metric_names("sum(rate(x_total[15m])) > 3 * sum(rate(x_total[1d] offset 1d)) and up == 0") == {
        "x_total",
        "up",
    }
    assert metric_names(Path(ALERTS).read_text().split("expr:")[1].split("for:")[0]) == {"auth_refreshes_total"}
