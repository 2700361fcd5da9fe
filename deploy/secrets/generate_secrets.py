"""Compose's passwords: generated on the first start, kept afterwards, each handed only to its users.

Run by the one-shot `secrets` service (docker-compose.yml) before anything else starts, as root,
with the volumes mounted under one directory (argument 1, /secrets in compose):

  store/     every password, one file each; mounted by this step alone (root, 0700 / 0400)
  postgres/  the superuser's and each service role's password            (uid 70, the postgres image)
  redis/     redis.conf: requirepass, and the feed user `revocations`     (uid 999, the redis image)
  auth/      db-password, redis-password                                  (uid 10001, our image)
  profile/   db-password, revocation-feed-password                        (uid 10001)
  board/     db-password, revocation-feed-password                        (uid 10001)

A password is generated only when the store lacks it. A variable given to this step (from `.env`:
POSTGRES_PASSWORD, AUTH_DB_PASSWORD, ...) replaces the stored one. The copies are rewritten on
every run, files 0400 and directories 0500 owned by their reader, so a changed store, a new
consumer volume or a loosened mode is put right at the next start. Nothing secret is printed.
"""

from __future__ import annotations

import os
import re
import secrets
import sys
from pathlib import Path

# The stream the feed user may read: auth's REDIS_PREFIX (default `auth:`) + `revocations`.
REVOCATION_STREAM = "auth:revocations"
STORE = "store"
# Each consumer directory's owner: the user its container runs as.
OWNERS = {"postgres": 70, "redis": 999, "auth": 10001, "profile": 10001, "board": 10001}
# Each password: the variable that may set it, and where its copies go (consumer, file name).
PASSWORDS = {
    "POSTGRES_PASSWORD": [("postgres", "postgres-password")],
    "AUTH_DB_PASSWORD": [("postgres", "auth-db-password"), ("auth", "db-password")],
    "PROFILE_DB_PASSWORD": [("postgres", "profile-db-password"), ("profile", "db-password")],
    "BOARD_DB_PASSWORD": [("postgres", "board-db-password"), ("board", "db-password")],
    "REDIS_PASSWORD": [("auth", "redis-password")],
    "REVOCATION_FEED_PASSWORD": [("profile", "revocation-feed-password"), ("board", "revocation-feed-password")],
}
# Written unquoted into redis.conf and a Redis ACL rule, whose parser splits on blanks and quotes.
UNUSABLE = re.compile(r"[\s\"'\x00-\x1f\x7f]")
PLACEHOLDER = "change-me"


class SecretsError(RuntimeError):
    """A password given in the environment cannot be used."""


def revocation_feed_acl(password: str, stream: str) -> str:
    """The redis.conf line of the feed user: it may read `stream` and nothing else.

    The same rule as `make run`'s (scripts/run_stack.py); tests/e2e/test_compose_secrets.py holds them equal.
    """
    return (
        f"user revocations on >{password} ~{stream} resetchannels -@all +xread +xrange +xrevrange +ping "
        "+xinfo|stream +hello +client|setname"
    )


def given_password(variable: str, environ: dict[str, str]) -> str | None:
    """The password set in the environment for `variable`, checked; None when unset or empty."""
    value = environ.get(variable, "")
    if not value:
        return None
    if value.startswith(PLACEHOLDER):
        raise SecretsError(f"{variable} is a placeholder: remove it from .env to have one generated")
    if UNUSABLE.search(value):
        raise SecretsError(f"{variable} must not contain blanks, quotes or control characters")
    return value


def write_private(path: Path, text: str, owner: int | None) -> None:
    """Replace `path` at once with a 0400 file holding `text`, owned by `owner` (when root)."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    if owner is not None:
        os.chown(temporary, owner, 0)
    temporary.replace(path)


def stored_passwords(store: Path, environ: dict[str, str]) -> dict[str, str]:
    """Every password: from the environment, else from the store, else new (and stored)."""
    store.mkdir(mode=0o700, exist_ok=True)
    store.chmod(0o700)
    passwords = {}
    for variable in PASSWORDS:
        path = store / variable.lower()
        given = given_password(variable, environ)
        if given is not None:
            if not path.exists() or path.read_text().strip() != given:
                write_private(path, given + "\n", None)
                print(f"secrets: {variable} set from the environment", flush=True)
        elif not path.exists():
            write_private(path, secrets.token_urlsafe(32) + "\n", None)
            print(f"secrets: {variable} generated", flush=True)
        passwords[variable] = path.read_text().strip()
    return passwords


def consumer_files(passwords: dict[str, str]) -> dict[str, dict[str, str]]:
    """What each consumer directory holds: file name to content."""
    files: dict[str, dict[str, str]] = {consumer: {} for consumer in OWNERS}
    for variable, copies in PASSWORDS.items():
        for consumer, name in copies:
            files[consumer][name] = passwords[variable] + "\n"
    files["redis"]["redis.conf"] = (
        "# Written by deploy/secrets/generate_secrets.py at every start: set passwords in .env, not here.\n"
        f"requirepass {passwords['REDIS_PASSWORD']}\n"
        f"{revocation_feed_acl(passwords['REVOCATION_FEED_PASSWORD'], REVOCATION_STREAM)}\n"
    )
    return files


def main(root: Path, environ: dict[str, str]) -> None:
    # Ownership can only be handed over by root; run otherwise (tests), files stay the caller's.
    as_root = os.geteuid() == 0
    passwords = stored_passwords(root / STORE, environ)
    for consumer, files in consumer_files(passwords).items():
        owner = OWNERS[consumer] if as_root else None
        directory = root / consumer
        directory.mkdir(exist_ok=True)
        directory.chmod(0o700)  # writable while we write, also when not root
        for name, text in files.items():
            write_private(directory / name, text, owner)
        directory.chmod(0o500)
        if owner is not None:
            os.chown(directory, owner, 0)


if __name__ == "__main__":
    try:
        main(Path(sys.argv[1]), dict(os.environ))
    except SecretsError as exc:
        sys.exit(f"secrets: {exc}")
