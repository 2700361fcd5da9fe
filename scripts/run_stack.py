"""Render the gateway config and a Procfile for this environment, then hand over to honcho.

Each process gets an explicit environment, kept in an owner-only file under var/env/: a service
only the variables its config class reads (so profile and board never see auth's key path,
database or Redis), nginx and Redis only the basics. Settings come from the shell, then `.env`.
Ports and paths: GATEWAY_PORT (8080), AUTH_PORT (8001), PROFILE_PORT (8002), BOARD_PORT (8003),
REDIS_PORT (6390, for the password-protected local Redis started when REDIS_URL is not given),
GATEWAY_STATUS_PORT (8079, nginx's counters) and GATEWAY_METRICS_PORT (9113, their exporter),
VAR_DIR (var/). Everything under var/ is created owner-only (umask 077).
Replicas: AUTH_REPLICAS, PROFILE_REPLICAS, BOARD_REPLICAS (1 to 16, default 1) gunicorns per
service, replica n on the service's port + 100·(n-1), each its own Procfile line (auth-1, auth-2,
... ; a single one keeps the service's name), all of them in the gateway's upstream.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NoReturn

from honcho.environ import parse as parse_dotenv
from pydantic import AliasChoices

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from auth_service.config import AuthConfig  # noqa: E402
from auth_service.keys import init_keys  # noqa: E402
from board_service.config import BoardConfig  # noqa: E402
from profile_service.config import ProfileConfig  # noqa: E402
from shared.config import ServiceConfig  # noqa: E402

TEMPLATE = REPO / "gateway" / "nginx.conf.template"
TEMPLATE_VARIABLES = (
    "GATEWAY_PORT",
    "AUTH_UPSTREAM_SERVERS",
    "PROFILE_UPSTREAM_SERVERS",
    "BOARD_UPSTREAM_SERVERS",
    "WEB_ROOT",
    "TOKEN_CLIENT_ROOT",
    "UPSTREAM_BIND",
    "GATEWAY_STATUS_LISTEN",
)
# The gateway connects to the services from this loopback address, and only this address may
# tell them the client's address (X-Forwarded-For); everything else on the machine uses 127.0.0.1.
GATEWAY_SOURCE_ADDRESS = "127.0.0.2"
SERVICES = {
    "auth": ("auth_service", AuthConfig),
    "profile": ("profile_service", ProfileConfig),
    "board": ("board_service", BoardConfig),
}
MAX_REPLICAS = 16
# Replica n of a service listens on its port + 100·(n-1): the default ports 8001, 8002 and 8003
# stay apart up to 16 replicas each.
REPLICA_PORT_STEP = 100
# A replica that fails a connection (stopped, crashed) gets no requests for this long, so the
# others take its share instead of 1/N of all requests answering 502; then nginx tries it again.
# nginx never marks a lone server down, so one replica behaves as with max_fails=0.
REPLICA_FAIL_TIMEOUT = "5s"
# What every process may inherit from the shell: locale, paths, terminal; none of it is a setting.
BASIC_VARIABLES = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TERM",
    "TMPDIR",
    "PYTHONPATH",
    "PYTHONUNBUFFERED",
)
# gunicorn.conf.py reads these in every service.
GUNICORN_VARIABLES = ("WEB_CONCURRENCY", "GUNICORN_THREADS")
# What older runs (before the umask) may have left readable by others: databases, keys, Redis files.
PRIVATE_ENTRIES = ("*.db*", "Procfile", "env", "keys", "redis", "gateway")


def config_variables(config: type[ServiceConfig]) -> set[str]:
    """Name the environment variables a config class reads: each field's first alias, else its name."""
    names = set()
    for name, field in config.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            # The first choice is the documented variable (AUTH_DATABASE_URL); make run always sets
            # it, so the generic fallbacks (DATABASE_URL) would only leak a stray shell variable.
            alias = alias.choices[0]
        names.add((alias if isinstance(alias, str) else name).upper())
    return names


def basic_environment(settings: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in settings.items() if name in BASIC_VARIABLES or name.startswith("LC_")}


def make_owner_only(var_dir: Path) -> None:
    """Tighten what older runs left readable by others under var/ to 0600 files and 0700 dirs."""
    for entry in (path for pattern in PRIVATE_ENTRIES for path in var_dir.glob(pattern)):
        for path in (entry, *entry.rglob("*")) if entry.is_dir() else (entry,):
            if not path.is_symlink():
                path.chmod(0o700 if path.is_dir() else 0o600)


def redis_password(directory: Path, name: str = "password") -> str:
    """Read the local Redis's password (or the feed user's, `feed-password`), creating it on the
    first run; it is never printed."""
    path = directory / name
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip()


def revocation_feed_acl(password: str, stream: str) -> str:
    """The redis.conf line of the user resource services follow the revocation feed as: it may read
    that one stream and nothing else (no sessions, no writes, no channels)."""
    return (
        f"user revocations on >{password} ~{stream} resetchannels -@all +xread +xrange +xrevrange +ping "
        "+xinfo|stream +hello +client|setname"
    )


def replica_count(env: dict[str, str], service: str) -> int:
    """Read <SERVICE>_REPLICAS (default 1); stop, naming the variable, unless it is 1 to 16."""
    variable = f"{service.upper()}_REPLICAS"
    value = env.get(variable, "1")
    if not (value.isascii() and value.isdigit() and 1 <= int(value) <= MAX_REPLICAS):
        sys.exit(f"run: {variable} must be a whole number from 1 to {MAX_REPLICAS}, not {value!r}")
    return int(value)


def replica_ports(first_port: int, replicas: int) -> list[int]:
    return [first_port + REPLICA_PORT_STEP * index for index in range(replicas)]


def replica_names(service: str, replicas: int) -> list[str]:
    """Process names: the service's own for a single replica (as before), else auth-1, auth-2, ..."""
    return [service] if replicas == 1 else [f"{service}-{n}" for n in range(1, replicas + 1)]


def upstream_servers(ports: list[int]) -> str:
    """The nginx `server` directives of one service's replicas on loopback, one per line."""
    return "\n    ".join(f"server 127.0.0.1:{port} max_fails=1 fail_timeout={REPLICA_FAIL_TIMEOUT};" for port in ports)


def service_ports(ports: dict[str, str], replicas: dict[str, int]) -> dict[str, int]:
    """Every process's port by process name (redis when `ports` has it, auth-1, auth-2, profile, ...,
    gateway); stop, naming the variables, when two would share one or a replica's would pass 65535."""
    owners = {"redis": ("REDIS_PORT", int(ports["REDIS"]))} if "REDIS" in ports else {}
    for service, count in replicas.items():
        variable, first = f"{service.upper()}_PORT", int(ports[service.upper()])
        names, numbers = replica_names(service, count), replica_ports(first, count)
        for index, (name, port) in enumerate(zip(names, numbers, strict=True)):
            origin = f"{variable} + {port - first} ({service.upper()}_REPLICAS)" if index else variable
            if port > 65535:
                sys.exit(f"run: {name} would listen on {origin} = {port}, past 65535; lower {variable}")
            owners[name] = (origin, port)
    owners["gateway"] = ("GATEWAY_PORT", int(ports["GATEWAY"]))
    owners["gateway-status"] = ("GATEWAY_STATUS_PORT", int(ports["GATEWAY_STATUS"]))
    owners["gateway-metrics"] = ("GATEWAY_METRICS_PORT", int(ports["GATEWAY_METRICS"]))
    taken: dict[int, str] = {}
    for name, (origin, port) in owners.items():
        if port in taken:
            first_owner = taken[port]
            sys.exit(f"run: port {port} is both {owners[first_owner][0]} ({first_owner}) and {origin} ({name})")
        taken[port] = name
    return {name: port for name, (_, port) in owners.items()}


def procfile_line(
    name: str, environment: dict[str, str], command: str, env_dir: Path, *, env_name: str | None = None
) -> str:
    """Save `environment` for process `name` (in `env_name`.json when given: replicas share their
    service's); return the Procfile line running `command` with only it."""
    env_file = env_dir / f"{env_name or name}.json"
    env_file.write_text(json.dumps(environment, indent=2, sort_keys=True) + "\n")
    # The file keeps secrets out of command lines, which every local user can read in /proc; `exec`
    # leaves no shell behind holding honcho's whole environment.
    return f"{name}: exec {sys.executable} {Path(__file__).resolve()} exec-with-env {env_file} {command}"


def exec_with_environment(env_file: Path, command: list[str]) -> NoReturn:
    """Become `command` with the environment in `env_file` and nothing inherited from honcho."""
    os.execvpe(command[0], command, json.loads(env_file.read_text()))  # noqa: S606 - our own Procfile command


def render_gateway_config(variables: dict[str, str]) -> str:
    """Substitute only our ${VARS}, as the nginx image's envsubst does, leaving nginx's $vars alone."""
    text = TEMPLATE.read_text()
    for name in TEMPLATE_VARIABLES:
        text = text.replace("${" + name + "}", variables[name])
    return text


def main_nginx_config(var_dir: Path, server_config: Path) -> str:
    temp = var_dir / "gateway"
    return f"""# Generated by scripts/run_stack.py; edit gateway/nginx.conf.template instead.
worker_processes auto;
pid {temp}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    keepalive_timeout 65;
    client_body_temp_path {temp}/client_body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {server_config};
}}
"""


def scrape_config_note(var_dir: Path, process_ports: dict[str, int]) -> str:
    """Write a Prometheus config scraping every process of this run; say where the metrics are."""
    scraped = {name: port for name, port in process_ports.items() if name not in ("redis", "gateway", "gateway-status")}
    # One job per service: its replicas (auth-1, auth-2, ...) are the job's targets.
    jobs = {
        service: [p for n, p in scraped.items() if n.split("-")[0] == service] for service in (*SERVICES, "gateway")
    }
    text = (REPO / "deploy" / "observability" / "prometheus" / "make-run.yml").read_text()
    text = text.replace("${ALERTS_FILE}", str(REPO / "deploy" / "observability" / "alerts.yml"))
    for service, ports in jobs.items():
        text = text.replace("${" + service.upper() + "_TARGETS}", json.dumps([f"127.0.0.1:{port}" for port in ports]))
    config = var_dir / "observability" / "prometheus.yml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(text)
    listed = ", ".join(f"{name} http://127.0.0.1:{port}/metrics" for name, port in scraped.items())
    return f"metrics (never through the gateway): {listed}; Prometheus: prometheus --config.file={config}"


def migrate_databases(environments: dict[str, dict[str, str]]) -> None:
    """Bring each service's database to its latest schema before any service starts."""
    for name, (package, _) in SERVICES.items():
        if (
            subprocess.run(
                [sys.executable, "-m", package, "db", "upgrade"], cwd=REPO, env=environments[name], check=False
            ).returncode
            != 0
        ):
            sys.exit(f"run: `python -m {package} db upgrade` failed; the stack was not started")


def main() -> None:
    if sys.argv[1:2] == ["exec-with-env"]:  # the per-process launcher in the Procfile lines below
        exec_with_environment(Path(sys.argv[2]), sys.argv[3:])
    os.umask(0o077)  # databases, Redis files, keys and env files: readable by the invoking user only
    # The shell's variables win over .env, as with docker compose (honcho used to read .env itself).
    dotenv = REPO / ".env"
    env = {**(parse_dotenv(dotenv.read_text()) if dotenv.exists() else {}), **os.environ}
    var_dir = Path(env.get("VAR_DIR", REPO / "var")).resolve()
    ports = {
        name: env.get(f"{name}_PORT", default)
        for name, default in (
            ("GATEWAY", "8080"),
            ("AUTH", "8001"),
            ("PROFILE", "8002"),
            ("BOARD", "8003"),
            ("REDIS", "6390"),
            ("GATEWAY_STATUS", "8079"),
            ("GATEWAY_METRICS", "9113"),
        )
    }
    for name, port in ports.items():
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            sys.exit(f"run: {name}_PORT must be a port number from 1 to 65535, not {port!r}")
    replicas = {service: replica_count(env, service) for service in SERVICES}
    local_redis = not env.get("REDIS_URL")
    process_ports = service_ports({k: v for k, v in ports.items() if k != "REDIS" or local_redis}, replicas)
    ports_of = {service: replica_ports(int(ports[service.upper()]), count) for service, count in replicas.items()}
    var_dir.mkdir(parents=True, exist_ok=True)
    make_owner_only(var_dir)
    (var_dir / "gateway").mkdir(parents=True, exist_ok=True)
    (var_dir / "redis").mkdir(parents=True, exist_ok=True)
    env_dir = var_dir / "env"
    env_dir.mkdir(exist_ok=True)
    keys = var_dir / "keys"
    if init_keys(keys):
        print(f"run: generated development keys in {keys}", flush=True)

    server_config = var_dir / "gateway" / "gateway.conf"
    server_config.write_text(
        render_gateway_config(
            {
                "GATEWAY_PORT": ports["GATEWAY"],
                **{
                    f"{service.upper()}_UPSTREAM_SERVERS": upstream_servers(listening)
                    for service, listening in ports_of.items()
                },
                "WEB_ROOT": str(REPO / "gateway" / "web"),
                "TOKEN_CLIENT_ROOT": str(REPO / "clients" / "js" / "src"),
                "UPSTREAM_BIND": GATEWAY_SOURCE_ADDRESS,
                "GATEWAY_STATUS_LISTEN": f"127.0.0.1:{ports['GATEWAY_STATUS']}",
            }
        )
    )
    nginx_config = var_dir / "gateway" / "nginx.conf"
    nginx_config.write_text(main_nginx_config(var_dir, server_config))

    redis_url = env.get("REDIS_URL")
    # Profile and board follow auth's revocation feed, never with auth's Redis password.
    feed_url = env.get("REVOCATION_FEED_URL", "")
    if local_redis:
        password = redis_password(var_dir / "redis")
        feed_password = redis_password(var_dir / "redis", "feed-password")
        stream = f"{env.get('REDIS_PREFIX') or 'auth:'}revocations"
        # In a file, not on the command line (readable by every local user in /proc).
        (var_dir / "redis" / "redis.conf").write_text(
            f"requirepass {password}\n{revocation_feed_acl(feed_password, stream)}\n"
        )
        redis_url = f"redis://:{password}@127.0.0.1:{ports['REDIS']}/0"
        feed_url = f"redis://revocations:{feed_password}@127.0.0.1:{ports['REDIS']}/0"
    service_env = {
        "REDIS_URL": redis_url,
        "AUTH_DATABASE_URL": env.get("AUTH_DATABASE_URL") or f"sqlite:///{var_dir}/auth.db",
        "PROFILE_DATABASE_URL": env.get("PROFILE_DATABASE_URL") or f"sqlite:///{var_dir}/profile.db",
        "BOARD_DATABASE_URL": env.get("BOARD_DATABASE_URL") or f"sqlite:///{var_dir}/board.db",
        "SIGNING_KEY_PATH": str(keys / "signing.pem"),
        "JWKS_PATH": str(keys / "jwks.json"),
        # The first auth replica: every replica publishes the same keys, and honcho stops the
        # whole stack when any of them exits.
        "JWKS_URL": env.get("JWKS_URL") or f"http://127.0.0.1:{ports['AUTH']}/.well-known/jwks.json",
        "TRUSTED_PROXY_HOPS": "1",
        "TRUSTED_PROXY_ADDRESSES": GATEWAY_SOURCE_ADDRESS,
        "GATEWAY_PORT": ports["GATEWAY"],
    }
    settings = {**env, **service_env}
    basics = basic_environment(settings)

    python_bin = Path(sys.executable).parent
    gunicorn = f"{python_bin / 'gunicorn'} -c {REPO / 'gunicorn.conf.py'}"
    lines = []
    service_environments = {}
    if local_redis:
        redis_server = shutil.which("redis-server") or "/usr/bin/redis-server"
        lines.append(
            procfile_line(
                "redis",
                basics,
                f"{redis_server} {var_dir / 'redis' / 'redis.conf'} "
                f"--port {ports['REDIS']} --bind 127.0.0.1 --dir {var_dir / 'redis'} "
                "--appendonly yes --appendfsync everysec --save '' --loglevel warning",
                env_dir,
            )
        )
    for name, (package, config) in SERVICES.items():
        # Only what this service's config reads: profile and board never see auth's key, database or Redis.
        readable = config_variables(config) | set(GUNICORN_VARIABLES)
        # And OpenTelemetry's own settings (OTEL_*: exporter, sampler, service name; shared/tracing.py).
        environment = {
            **basics,
            **{key: value for key, value in settings.items() if key in readable or key.startswith("OTEL_")},
        }
        # Auth writes the feed with its own REDIS_URL; the resource services read it as the feed user.
        environment.pop("REVOCATION_FEED_URL", None)
        if name != "auth" and feed_url:
            environment["REVOCATION_FEED_URL"] = feed_url
        service_environments[name] = environment
        # Each replica its own gunicorn on its own port, all with the service's one environment.
        for replica in replica_names(name, replicas[name]):
            lines.append(
                procfile_line(
                    replica,
                    environment,
                    f"{gunicorn} --bind 127.0.0.1:{process_ports[replica]} '{package}:create_app()'",
                    env_dir,
                    env_name=name,
                )
            )
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    lines.append(
        procfile_line(
            "gateway", basics, f"{nginx} -c {nginx_config} -p {var_dir / 'gateway'} -g 'daemon off;'", env_dir
        )
    )
    exporter = shutil.which("prometheus-nginx-exporter") or "/usr/bin/prometheus-nginx-exporter"
    lines.append(
        procfile_line(
            "gateway-metrics",
            basics,
            f"{exporter} --nginx.scrape-uri=http://127.0.0.1:{ports['GATEWAY_STATUS']}/stub_status "
            f"--web.listen-address=127.0.0.1:{ports['GATEWAY_METRICS']}"
            # nginx starts beside it: wait for it rather than exit (honcho would stop the stack).
            " --nginx.retries=60 --nginx.retry-interval=500ms",
            env_dir,
        )
    )
    # The announcer checks each process by name: `auth is ready`, or `auth-1 is ready`, `auth-2 ...`.
    ready_env = {
        **basics,
        "REDIS_URL": redis_url,
        "READY_PORTS": json.dumps(
            {name: port for name, port in process_ports.items() if name not in ("redis", "gateway-status")}
        ),
    }
    lines.append(
        procfile_line("ready", ready_env, f"{sys.executable} {REPO / 'scripts' / 'announce_ready.py'}", env_dir)
    )
    procfile = var_dir / "Procfile"
    procfile.write_text("\n".join(lines) + "\n")

    migrate_databases(service_environments)  # each with the environment its service gets
    for service, count in replicas.items():
        listening = ", ".join(map(str, ports_of[service]))
        print(
            f"run: {service}: {count} {'replica' if count == 1 else 'replicas'} ({service.upper()}_REPLICAS) "
            f"on {'port' if count == 1 else 'ports'} {listening}, behind the gateway",
            flush=True,
        )

    print(f"run: {scrape_config_note(var_dir, process_ports)}", flush=True)

    honcho = python_bin / "honcho"
    os.chdir(REPO)
    # Hand over to honcho (no shell: the command is ours).
    os.execv(  # noqa: S606
        str(honcho),
        [str(honcho), "start", "--procfile", str(procfile), "--app-root", str(REPO), *sys.argv[1:]],
    )


if __name__ == "__main__":
    main()
