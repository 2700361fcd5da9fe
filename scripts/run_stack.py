"""Render the gateway config and a Procfile for this environment, then hand over to honcho.

Each process gets an explicit environment, kept in an owner-only file under var/env/: a service
only the variables its config class reads (so profile and board never see auth's key path,
database or Redis), nginx and Redis only the basics. Settings come from the shell, then `.env`.
Ports and paths: GATEWAY_PORT (8080), AUTH_PORT (8001), PROFILE_PORT (8002), BOARD_PORT (8003),
REDIS_PORT (6390, for the password-protected local Redis started when REDIS_URL is not given),
VAR_DIR (var/). Everything under var/ is created owner-only (umask 077).
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
    "AUTH_UPSTREAM",
    "PROFILE_UPSTREAM",
    "BOARD_UPSTREAM",
    "WEB_ROOT",
    "UPSTREAM_BIND",
)
# The gateway connects to the services from this loopback address, and only this address may
# tell them the client's address (X-Forwarded-For); everything else on the machine uses 127.0.0.1.
GATEWAY_SOURCE_ADDRESS = "127.0.0.2"
SERVICES = {
    "auth": ("auth_service", AuthConfig),
    "profile": ("profile_service", ProfileConfig),
    "board": ("board_service", BoardConfig),
}
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


def procfile_line(name: str, environment: dict[str, str], command: str, env_dir: Path) -> str:
    """Save `environment` for process `name`; return the Procfile line running `command` with only it."""
    env_file = env_dir / f"{name}.json"
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
        )
    }
    for name, port in ports.items():
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            sys.exit(f"run: {name}_PORT must be a port number from 1 to 65535, not {port!r}")
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
                "AUTH_UPSTREAM": f"127.0.0.1:{ports['AUTH']}",
                "PROFILE_UPSTREAM": f"127.0.0.1:{ports['PROFILE']}",
                "BOARD_UPSTREAM": f"127.0.0.1:{ports['BOARD']}",
                "WEB_ROOT": str(REPO / "gateway" / "web"),
                "UPSTREAM_BIND": GATEWAY_SOURCE_ADDRESS,
            }
        )
    )
    nginx_config = var_dir / "gateway" / "nginx.conf"
    nginx_config.write_text(main_nginx_config(var_dir, server_config))

    local_redis = not env.get("REDIS_URL")
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
        environment = {**basics, **{key: value for key, value in settings.items() if key in readable}}
        # Auth writes the feed with its own REDIS_URL; the resource services read it as the feed user.
        environment.pop("REVOCATION_FEED_URL", None)
        if name != "auth" and feed_url:
            environment["REVOCATION_FEED_URL"] = feed_url
        service_environments[name] = environment
        lines.append(
            procfile_line(
                name,
                environment,
                f"{gunicorn} --bind 127.0.0.1:{ports[name.upper()]} '{package}:create_app()'",
                env_dir,
            )
        )
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    lines.append(
        procfile_line(
            "gateway", basics, f"{nginx} -c {nginx_config} -p {var_dir / 'gateway'} -g 'daemon off;'", env_dir
        )
    )
    ready_env = {**basics, "REDIS_URL": redis_url, **{f"{name}_PORT": port for name, port in ports.items()}}
    lines.append(
        procfile_line("ready", ready_env, f"{sys.executable} {REPO / 'scripts' / 'announce_ready.py'}", env_dir)
    )
    procfile = var_dir / "Procfile"
    procfile.write_text("\n".join(lines) + "\n")

    migrate_databases(service_environments)  # each with the environment its service gets

    honcho = python_bin / "honcho"
    os.chdir(REPO)
    # Hand over to honcho (no shell: the command is ours).
    os.execv(  # noqa: S606
        str(honcho),
        [str(honcho), "start", "--procfile", str(procfile), "--app-root", str(REPO), *sys.argv[1:]],
    )


if __name__ == "__main__":
    main()
