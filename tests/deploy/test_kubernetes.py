"""deploy/k8s: every overlay renders with `kubectl kustomize`, every object validates offline against
the Kubernetes JSON schemas (kubernetes-validate), and the promises of the deployment hold:
probes, limits and hardening everywhere, the private key in auth only, a PodDisruptionBudget per
Deployment, autoscaling for profile and board, who may connect to whom, and settings the services
really read."""

from __future__ import annotations

import functools
import re
import subprocess

import kubernetes_validate
import pytest
import yaml
from pydantic import AliasChoices

from auth_service.config import AuthConfig
from board_service.config import BoardConfig
from profile_service.config import ProfileConfig
from shared.config import ServiceConfig, parse_networks
from tests.support.processes import REPO

K8S = REPO / "deploy" / "k8s"
OVERLAYS = sorted(path.parent.name for path in (K8S / "overlays").glob("*/kustomization.yaml"))
# The oldest Kubernetes we claim, and the newest the installed kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.30", kubernetes_validate.latest_version())
SERVICES = {"auth": AuthConfig, "profile": ProfileConfig, "board": BoardConfig}
OUR_IMAGE = "silent-auth-services"
WORKLOADS = ("Deployment", "StatefulSet", "Job")
# Read by the image rather than a service's config class: the Dockerfile's CMD (SERVICE picks the
# app), gunicorn.conf.py (WEB_CONCURRENCY, GUNICORN_THREADS) and gunicorn itself.
READ_BY_THE_IMAGE = {"SERVICE", "WEB_CONCURRENCY", "GUNICORN_THREADS", "GUNICORN_CMD_ARGS"}
# Set by the manifests, read by the code, and not (yet) in docs/API.md or the README's table.
UNDOCUMENTED = {
    "SERVICE": "the Dockerfile's own switch between the three apps",
    "GUNICORN_CMD_ARGS": "gunicorn's own variable",
    "APP_ENV": "production: auth refuses to start without its key; compose sets it too",
}


@functools.cache
def rendered(overlay: str) -> tuple[dict, ...]:
    try:
        result = subprocess.run(
            ["kubectl", "kustomize", str(K8S / "overlays" / overlay)], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        pytest.fail("kubectl (1.27 or newer, with kustomize v5) is needed to render deploy/k8s")
    assert result.returncode == 0, result.stderr
    return tuple(document for document in yaml.safe_load_all(result.stdout) if document)


def objects(overlay: str, *kinds: str) -> list[dict]:
    return [item for item in rendered(overlay) if item["kind"] in kinds]


def one(overlay: str, kind: str, name: str) -> dict:
    (found,) = [item for item in objects(overlay, kind) if item["metadata"]["name"] == name]
    return found


def containers(pod: dict) -> list[dict]:
    return [*pod.get("initContainers", []), *pod["containers"]]


def pod_labels(workload: dict) -> dict[str, str]:
    return workload["spec"]["template"]["metadata"]["labels"]


def config_map(overlay: str, prefix: str) -> dict:
    """A generated ConfigMap by the name it has before kustomize adds its hash."""
    (found,) = [
        item
        for item in objects(overlay, "ConfigMap")
        if re.fullmatch(f"{prefix}(-[a-z0-9]+)?", item["metadata"]["name"])
    ]
    return found


def env_of(container: dict) -> dict[str, dict]:
    return {variable["name"]: variable for variable in container.get("env", [])}


def dev_secret_values() -> dict[str, str]:
    """What the dev-credentials Job writes into service-connections, with `secret` for each password."""
    job = one("dev", "Job", "dev-credentials")
    script = job["spec"]["template"]["spec"]["containers"][0]["command"][-1]
    written = {
        key: re.sub(r"\$\w+", "secret", value) for value, key in re.findall(r'printf %s "([^"]*)" > (\w+)', script)
    }
    written["users.acl"] = "(the Redis users)"
    return written


def resolved_env(overlay: str, container: dict) -> dict[str, str]:
    """The container's environment, ConfigMap values looked up, Secret values as dev makes them."""
    secrets = dev_secret_values()
    values = {}
    for name, variable in env_of(container).items():
        source = variable.get("valueFrom", {})
        if "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            (found,) = [item for item in objects(overlay, "ConfigMap") if item["metadata"]["name"] == ref["name"]]
            values[name] = found["data"][ref["key"]]
        elif "secretKeyRef" in source:
            values[name] = secrets[source["secretKeyRef"]["key"]]
        else:
            values[name] = variable["value"]
    return values


def test_there_is_an_overlay_for_development_and_one_for_production():
    assert OVERLAYS == ["dev", "production"]


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_of_every_overlay_validates(overlay, version):
    failures = []
    for item in rendered(overlay):
        try:
            kubernetes_validate.validate(item, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            failures.append(
                f"{item['kind']}/{item['metadata']['name']}: {'.'.join(map(str, error.path))}: {error.message}"
            )
    assert failures == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_has_probes_on_the_health_endpoints(overlay):
    deployments = {item["metadata"]["name"]: item for item in objects(overlay, "Deployment")}
    assert set(deployments) == {*SERVICES, "gateway"}
    for name, deployment in deployments.items():
        main, *sidecars = deployment["spec"]["template"]["spec"]["containers"]
        # The gateway pod alone has a second container: the exporter of nginx's counters.
        assert [c["name"] for c in sidecars] == (["metrics"] if name == "gateway" else []), name
        assert all(c["readinessProbe"]["httpGet"]["path"] == "/metrics" for c in sidecars), name
        readiness = "/healthz" if name == "gateway" else "/readyz"
        assert main["readinessProbe"]["httpGet"]["path"] == readiness, name
        assert main["livenessProbe"]["httpGet"]["path"] == "/healthz", name
    for stateful_set in objects(overlay, "StatefulSet"):
        for container in stateful_set["spec"]["template"]["spec"]["containers"]:
            assert {"readinessProbe", "livenessProbe"} <= set(container), stateful_set["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_is_limited_and_runs_unprivileged_on_a_read_only_root(overlay):
    for workload in objects(overlay, *WORKLOADS):
        name = f"{workload['kind']}/{workload['metadata']['name']}"
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert not {"hostNetwork", "hostPID", "hostIPC"} & set(pod), name
        assert not [volume for volume in pod.get("volumes", []) if "hostPath" in volume], name
        # No API credentials and no docker-link variables (a Service named gateway would give
        # every pod GATEWAY_PORT=tcp://..., a setting auth reads) unless the pod talks to the API.
        assert pod["enableServiceLinks"] is False, name
        assert pod["automountServiceAccountToken"] is ("serviceAccountName" in pod), name
        for container in containers(pod):
            where = f"{name} {container['name']}"
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][kind]), where
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["capabilities"] == {"drop": ["ALL"]}, where
            assert not security.get("privileged"), where
            assert security.get("runAsUser", pod["securityContext"].get("runAsUser", 0)) != 0, where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_namespace_enforces_the_restricted_pod_security_standard(overlay):
    (namespace,) = objects(overlay, "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert {item["metadata"].get("namespace") for item in rendered(overlay) if item["kind"] != "Namespace"} == {
        namespace["metadata"]["name"]
    }


def _mounts_secret(pod: dict, secret: str) -> bool:
    for volume in pod.get("volumes", []):
        sources = [volume, *volume.get("projected", {}).get("sources", [])]
        if any(
            source.get("secret", {}).get("secretName", source.get("secret", {}).get("name")) == secret
            for source in sources
        ):
            return True
    for container in containers(pod):
        refs = [v.get("valueFrom", {}).get("secretKeyRef", {}).get("name") for v in container.get("env", [])]
        refs += [source.get("secretRef", {}).get("name") for source in container.get("envFrom", [])]
        if secret in refs:
            return True
    return False


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_private_key_is_mounted_into_auth_only(overlay):
    holders = [
        f"{item['kind']}/{item['metadata']['name']}"
        for item in objects(overlay, *WORKLOADS)
        if _mounts_secret(item["spec"]["template"]["spec"], "signing-key")
    ]
    assert holders == ["Deployment/auth"]
    auth = one(overlay, "Deployment", "auth")["spec"]["template"]["spec"]
    (key_volume,) = [v["name"] for v in auth["volumes"] if v.get("secret", {}).get("secretName") == "signing-key"]
    (mount,) = [m for m in auth["containers"][0]["volumeMounts"] if m["name"] == key_volume]
    env = resolved_env(overlay, auth["containers"][0])
    assert env["SIGNING_KEY_PATH"] == f"{mount['mountPath']}/signing.pem" and mount["readOnly"] is True
    assert env["JWKS_PATH"] == f"{mount['mountPath']}/jwks.json"
    # The others get the public keys: the ConfigMap the keygen Job publishes, and auth's JWKS URL.
    keygen_script = one(overlay, "Job", "keygen")["spec"]["template"]["spec"]["containers"][0]["command"][-1]
    assert "kubectl create configmap jwks " in keygen_script
    for name in ("profile", "board"):
        pod = one(overlay, "Deployment", name)["spec"]["template"]["spec"]
        (jwks_volume,) = [v["name"] for v in pod["volumes"] if v.get("configMap", {}).get("name") == "jwks"]
        (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == jwks_volume]
        env = resolved_env(overlay, pod["containers"][0])
        assert env["JWKS_PATH"] == f"{mount['mountPath']}/jwks.json"
        assert env["JWKS_URL"] == "http://auth:8000/.well-known/jwks.json"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_job_that_makes_the_key_may_touch_it(overlay):
    readers = {}
    for role in objects(overlay, "Role", "ClusterRole"):
        for rule in role["rules"]:
            if "secrets" in rule["resources"]:
                # Reading Secrets, or changing them, only by name; listing would show every one.
                assert not {"list", "watch", "*"} & set(rule["verbs"]), role["metadata"]["name"]
                if set(rule["verbs"]) - {"create"}:
                    assert rule["resourceNames"] == ["signing-key"], role["metadata"]["name"]
                    readers[role["metadata"]["name"]] = rule["verbs"]
    assert readers == {"keygen": ["get"]}
    (binding,) = [item for item in objects(overlay, "RoleBinding") if item["roleRef"]["name"] == "keygen"]
    assert [subject["name"] for subject in binding["subjects"]] == ["keygen"]
    users = [
        item["metadata"]["name"]
        for item in objects(overlay, *WORKLOADS)
        if item["spec"]["template"]["spec"].get("serviceAccountName") == "keygen"
    ]
    assert users == ["keygen"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_has_a_disruption_budget_and_profile_and_board_scale(overlay):
    budgets = objects(overlay, "PodDisruptionBudget")
    for deployment in objects(overlay, "Deployment"):
        matching = [b for b in budgets if _selects(b["spec"]["selector"], pod_labels(deployment))]
        assert len(matching) == 1, deployment["metadata"]["name"]
        assert matching[0]["spec"].get("maxUnavailable", 0) >= 1 or "minAvailable" in matching[0]["spec"]
    autoscalers = objects(overlay, "HorizontalPodAutoscaler")
    assert {item["apiVersion"] for item in autoscalers} == {"autoscaling/v2"}
    scaled = {item["spec"]["scaleTargetRef"]["name"] for item in autoscalers}
    assert scaled == {"profile", "board"}
    for name in scaled:
        # An apply would reset what the autoscaler chose.
        assert "replicas" not in one(overlay, "Deployment", name)["spec"]


# NetworkPolicy, evaluated: who may open a connection to whom.


def _selects(selector: dict, labels: dict[str, str]) -> bool:
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        if (
            (operator == "In" and labels.get(key) not in values)
            or (operator == "NotIn" and key in labels and labels[key] in values)
            or (operator == "Exists" and key not in labels)
            or (operator == "DoesNotExist" and key in labels)
        ):
            return False
    return True


# Pods that are not ours: (their namespace, their labels); ours run in the overlay's namespace.
OUTSIDERS = {
    "another pod in the namespace": (None, {"app": "debug"}),
    "Prometheus in the monitoring namespace": ("monitoring", {"app.kubernetes.io/name": "prometheus"}),
    "another pod in the monitoring namespace": ("monitoring", {"app": "debug"}),
    "outside the namespace": ("elsewhere", {}),
}


def _peer_admits(peer: dict, namespace: str | None, labels: dict[str, str]) -> bool:
    """Whether a `from` peer admits a pod; namespace None is the policy's own. A namespace's only
    label is taken to be kubernetes.io/metadata.name, which Kubernetes sets on every namespace."""
    if "ipBlock" in peer:
        return True  # by address: taken to admit anyone, stricter than needed here
    if "namespaceSelector" in peer:
        if namespace is None or not _selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": namespace}):
            return False
    elif namespace is not None:
        return False  # a podSelector alone selects pods of the policy's namespace
    return _selects(peer.get("podSelector", {}), labels)


def _admitted(overlay: str, target: dict[str, str], port: int) -> set[str]:
    """The workloads (and outsiders) the overlay's NetworkPolicies let connect to `target` on `port`."""
    sources = {f"{w['kind']}/{w['metadata']['name']}": (None, pod_labels(w)) for w in objects(overlay, *WORKLOADS)}
    sources.update(OUTSIDERS)
    policies = [
        p["spec"]
        for p in objects(overlay, "NetworkPolicy")
        if "Ingress" in p["spec"].get("policyTypes", ["Ingress"]) and _selects(p["spec"]["podSelector"], target)
    ]
    if not policies:
        return set(sources)
    admitted = set()
    for rule in (rule for policy in policies for rule in policy.get("ingress", [])):
        if rule.get("ports") and port not in [entry.get("port") for entry in rule["ports"]]:
            continue
        peers = rule.get("from")
        for name, (namespace, labels) in sources.items():
            if not peers or any(_peer_admits(peer, namespace, labels) for peer in peers):
                admitted.add(name)
    return admitted


def _targets(overlay: str) -> dict[str, tuple[dict[str, str], int]]:
    """Every workload with the port it listens on (8000 for those that listen on none)."""
    found = {}
    for workload in objects(overlay, *WORKLOADS):
        ports = [
            p["containerPort"] for c in workload["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])
        ]
        found[f"{workload['kind']}/{workload['metadata']['name']}"] = (pod_labels(workload), (ports or [8000])[0])
    return found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_let_only_the_gateway_reach_the_services_and_only_the_services_reach_the_data(overlay):
    everyone = {f"{w['kind']}/{w['metadata']['name']}" for w in objects(overlay, *WORKLOADS)} | set(OUTSIDERS)
    gateway = {"Deployment/gateway"}
    migrations = {f"Job/{name}-migrate" for name in SERVICES}
    services = {f"Deployment/{name}" for name in SERVICES}
    prometheus = {"Prometheus in the monitoring namespace"}  # the metrics ports only
    expected = {
        "Deployment/gateway": everyone,
        "Deployment/auth": gateway | {"Deployment/profile", "Deployment/board"} | prometheus,  # the JWKS
        "Deployment/profile": gateway | prometheus,
        "Deployment/board": gateway | prometheus,
    }
    if overlay == "dev":
        expected |= {"StatefulSet/redis": services, "StatefulSet/postgres": services | migrations}
    else:
        assert not objects(overlay, "StatefulSet")  # Redis and PostgreSQL are outside the cluster
    admitted = {name: _admitted(overlay, labels, port) for name, (labels, port) in _targets(overlay).items()}
    # Nothing else accepts connections from anyone: the Jobs, for one.
    assert admitted == {name: expected.get(name, set()) for name in admitted}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_services_trust_forwarded_addresses_from_the_pod_network_only(overlay):
    for name in SERVICES:
        env = resolved_env(overlay, one(overlay, "Deployment", name)["spec"]["template"]["spec"]["containers"][0])
        assert env["TRUSTED_PROXY_HOPS"] == "1"
        networks = parse_networks(env["TRUSTED_PROXY_ADDRESSES"])
        assert networks and all(network.is_private and network.prefixlen >= 8 for network in networks)


# Settings: each one a service is given, it reads, and the docs describe.


def _config_variables(config: type[ServiceConfig]) -> dict[str, str]:
    """Environment variable → the keyword the config class takes it as."""
    variables = {}
    for name, field in config.model_fields.items():
        variables[name.upper()] = name
        if isinstance(field.validation_alias, AliasChoices):
            variables |= {choice: choice for choice in field.validation_alias.choices if isinstance(choice, str)}
    return variables


def _documented() -> set[str]:
    text = (REPO / "docs" / "API.md").read_text() + (REPO / "README.md").read_text()
    return set(re.findall(r"`([A-Z][A-Z0-9_]+)`", text))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_setting_a_service_is_given_is_one_it_reads_and_is_documented(overlay):
    gunicorn_conf = (REPO / "gunicorn.conf.py").read_text()
    assert all(f'"{name}"' in gunicorn_conf for name in ("WEB_CONCURRENCY", "GUNICORN_THREADS"))
    assert "${SERVICE}" in (REPO / "Dockerfile").read_text()
    documented = _documented()
    for workload in objects(overlay, *WORKLOADS):
        service = pod_labels(workload)["app.kubernetes.io/name"]
        for container in containers(workload["spec"]["template"]["spec"]):
            if not container["image"].split("/")[-1].startswith(f"{OUR_IMAGE}:"):
                continue
            where = f"{workload['metadata']['name']} {container['name']}"
            for variable in env_of(container):
                assert variable in READ_BY_THE_IMAGE or variable in _config_variables(SERVICES[service]), where
                assert variable in documented or variable in UNDOCUMENTED, (where, variable)


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("name", SERVICES)
def test_each_service_accepts_the_settings_it_is_given(overlay, name):
    config = SERVICES[name]
    env = resolved_env(overlay, one(overlay, "Deployment", name)["spec"]["template"]["spec"]["containers"][0])
    assert env["SERVICE"] == f"{name}_service"
    keywords = _config_variables(config)
    settings = {keywords[variable]: value for variable, value in env.items() if variable not in READ_BY_THE_IMAGE}
    # In production auth also wants its key file to exist; that is the mount test's business.
    settings["app_env"] = "test"
    built = config(**settings)
    assert built.trusted_proxies


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_connection_setting_comes_from_the_secret_the_docs_name(overlay):
    referenced = set()
    for workload in objects(overlay, *WORKLOADS):
        pod = workload["spec"]["template"]["spec"]
        for container in containers(pod):
            for variable in env_of(container).values():
                ref = variable.get("valueFrom", {}).get("secretKeyRef")
                if ref and ref["name"] == "service-connections":
                    referenced.add(ref["key"])
        for volume in pod.get("volumes", []):
            if volume.get("secret", {}).get("secretName") == "service-connections":
                referenced |= {item["key"] for item in volume["secret"]["items"]}
    if overlay == "dev":
        # The dev-credentials Job writes every key anything reads.
        assert referenced <= set(dev_secret_values())
    else:
        assert referenced == {
            "AUTH_DATABASE_URL",
            "PROFILE_DATABASE_URL",
            "BOARD_DATABASE_URL",
            "REDIS_URL",
            "REVOCATION_FEED_URL",
        }
        readme = (K8S / "README.md").read_text()
        assert all(f"`{key}`" in readme for key in referenced)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_jobs_make_the_key_and_migrate_each_database_before_the_services_serve(overlay):
    keygen = one(overlay, "Job", "keygen")["spec"]["template"]["spec"]
    (make_key,) = keygen["initContainers"]
    assert make_key["command"][:5] == ["python", "-m", "auth_service", "keys", "init"]
    directory = make_key["command"][make_key["command"].index("--dir") + 1]
    store_script = keygen["containers"][0]["command"][-1]
    assert f"--from-file=signing.pem={directory}/signing.pem" in store_script
    assert f"--from-file=refresh.key={directory}/refresh.key" in store_script  # auth refuses to start without it
    assert f"--from-file=jwks.json={directory}/jwks.json" in store_script
    for name in SERVICES:
        migrate = one(overlay, "Job", f"{name}-migrate")["spec"]["template"]["spec"]["containers"][0]
        assert migrate["command"] == ["python", "-m", f"{name}_service", "db", "upgrade"]
        database = f"{name.upper()}_DATABASE_URL"
        assert set(env_of(migrate)) == {database}  # no key, no APP_ENV: the database only
        pod = one(overlay, "Deployment", name)["spec"]["template"]["spec"]
        (wait,) = pod["initContainers"]
        assert f"python -m {name}_service db current | grep -q '(head)'" in wait["command"][-1]
        assert env_of(wait)[database] == env_of(migrate)[database] == env_of(pod["containers"][0])[database]
    # The wait above reads what `db current` prints at the latest revision.
    assert 'at_head = " (head)"' in (REPO / "shared" / "migrations.py").read_text()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_shell_script_parses(overlay):
    for workload in objects(overlay, *WORKLOADS):
        for container in containers(workload["spec"]["template"]["spec"]):
            command = container.get("command", [])
            if command[:2] == ["sh", "-c"]:
                result = subprocess.run(["sh", "-n", "-c", command[2]], capture_output=True, text=True, check=False)
                assert result.returncode == 0, (workload["metadata"]["name"], result.stderr)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_images_are_pinned(overlay):
    for workload in objects(overlay, *WORKLOADS):
        for container in containers(workload["spec"]["template"]["spec"]):
            image = container["image"]
            name, _, tag = image.rpartition(":")
            assert name and "/" not in tag, image
            assert container["imagePullPolicy"] == "IfNotPresent", image
            if name.split("/")[-1] == OUR_IMAGE:
                # Dev runs the image built from this checkout; production names a release.
                assert tag == "latest" if overlay == "dev" else tag not in {"", "latest"}, image
            else:
                # A release, not a line that moves (1.27-alpine, 7-alpine); PostgreSQL's are major.minor.
                release = r"\d+\.\d+[-.]" if name == "postgres" else r"\d+\.\d+\.\d+"
                assert re.match(release, f"{tag}-"), f"{image}: pin a release"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_gateway_renders_the_shared_template_and_serves_every_web_file(overlay):
    gateway = one(overlay, "Deployment", "gateway")["spec"]["template"]["spec"]
    nginx = next(container for container in gateway["containers"] if container["name"] == "nginx")
    mounts = {mount["name"]: mount["mountPath"] for mount in nginx["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in gateway["volumes"]}
    template_volume = next(name for name, path in mounts.items() if path == "/etc/nginx/templates")
    template = volumes[template_volume]["configMap"]
    assert config_map(overlay, "gateway-template")["metadata"]["name"] == template["name"]
    (item,) = template["items"]
    assert item["path"].endswith(".conf.template")
    template_text = (REPO / "gateway" / "nginx.conf.template").read_text()
    assert config_map(overlay, "gateway-template")["data"][item["key"]] == template_text
    # The image's envsubst fills in exactly the template's variables.
    assert set(env_of(nginx)) == set(re.findall(r"\$\{([A-Z_]+)\}", template_text))
    web = config_map(overlay, "gateway-web")
    (web_volume,) = [v for v in volumes.values() if v.get("configMap", {}).get("name") == web["metadata"]["name"]]
    assert mounts[web_volume["name"]] == resolved_env(overlay, nginx)["WEB_ROOT"]
    served = {entry["path"]: web["data"][entry["key"]] for entry in web_volume["configMap"]["items"]}
    files = {
        str(path.relative_to(REPO / "gateway" / "web")): path.read_text()
        for path in (REPO / "gateway" / "web").rglob("*")
        if path.is_file()
    }
    assert served == files
    # The token client, from the package's src/ (one source: no copy under web/), at its own root.
    client = config_map(overlay, "token-client")
    (client_volume,) = [v for v in volumes.values() if v.get("configMap", {}).get("name") == client["metadata"]["name"]]
    assert "items" not in client_volume["configMap"], "every key of the ConfigMap is a file"
    assert mounts[client_volume["name"]] == resolved_env(overlay, nginx)["TOKEN_CLIENT_ROOT"]
    source = REPO / "clients" / "js" / "src"
    assert client["data"] == {path.name: path.read_text() for path in source.iterdir() if path.is_file()}


def test_dev_postgres_runs_the_compose_init_script_with_the_passwords_it_reads():
    script = (REPO / "deploy" / "postgres" / "create-databases.sh").read_text()
    pod = one("dev", "StatefulSet", "postgres")["spec"]["template"]["spec"]
    init = next(v["configMap"] for v in pod["volumes"] if "postgres-init" in v.get("configMap", {}).get("name", ""))
    assert config_map("dev", "postgres-init")["data"][init["items"][0]["key"]] == script
    # The script makes a role for each <service>-db-password file in SECRETS_DIR: the pod mounts one
    # per service there, from the Secret whose URLs the services get.
    assert '"$secrets_dir"/*-db-password' in script
    container = pod["containers"][0]
    secrets_dir = env_of(container)["SECRETS_DIR"]["value"]
    [volume] = [v for v in pod["volumes"] if v.get("secret", {}).get("secretName") == "service-connections"]
    [mount] = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    assert mount["mountPath"] == secrets_dir and mount.get("readOnly")
    files = {item["path"]: item["key"] for item in volume["secret"]["items"]}
    secrets = dev_secret_values()
    services = {key.removesuffix("_DATABASE_URL").lower() for key in secrets if key.endswith("_DATABASE_URL")}
    assert files == {f"{service}-db-password": f"{service.upper()}_DB_PASSWORD" for service in services}
    assert "POSTGRES_PASSWORD" in env_of(container)
    # The URLs the services get name the roles and databases the script creates.
    for service in services:
        assert secrets[f"{service.upper()}_DATABASE_URL"].startswith(f"postgresql://{service}:")
        assert secrets[f"{service.upper()}_DATABASE_URL"].endswith(f"@postgres:5432/{service}")


def test_dev_redis_gives_the_feed_user_the_rules_make_run_gives_it():
    from scripts.run_stack import revocation_feed_acl

    script = one("dev", "Job", "dev-credentials")["spec"]["template"]["spec"]["containers"][0]["command"][-1]
    (rules,) = re.findall(r"'(\+xread[^']*)'", script)
    (line,) = re.findall(r"printf 'user revocations on >%s (~\S+ resetchannels -@all) %s", script)
    expected = revocation_feed_acl("secret", "auth:revocations")
    assert f"user revocations on >secret {line} {rules}" == expected
    assert dev_secret_values()["REVOCATION_FEED_URL"].startswith("redis://revocations:")
