"""Command line of the auth service.

python -m auth_service keys init|rotate [--dir DIR] [--drop-old]   # --drop-old announces the
                                               # withdrawn keys on the revocation feed (REDIS_URL)
python -m auth_service sessions revoke-all      # uses REDIS_URL and REDIS_PREFIX
python -m auth_service db upgrade|downgrade|current|revision   # uses AUTH_DATABASE_URL
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from auth_service import keys
from auth_service.config import AuthConfig

if TYPE_CHECKING:
    from shared.revocations import RevocationPublisher


def revocation_publisher(config: AuthConfig) -> RevocationPublisher:
    # Imported here: `keys init`, `keys rotate` and `db` need no Redis client.
    from auth_service.app import connect_redis
    from shared.revocations import RevocationPublisher

    client, writes = connect_redis(config)
    return RevocationPublisher(client, stream=config.revocation_stream, window=config.revocation_window, writes=writes)


def revoke_all_sessions() -> int:
    from auth_service.app import connect_redis
    from auth_service.sessions import SessionStore
    from shared.revocations import cut_off_now

    config = AuthConfig.from_env()
    client, writes = connect_redis(config)
    store = SessionStore(
        client,
        writes=writes,
        refresh_key=b"\0" * 32,  # ending sessions needs no token
        prefix=config.redis_prefix,
        ttl=config.refresh_token_ttl,
        reuse_grace=config.refresh_reuse_grace,
    )
    from auth_service import events

    events.log_as_the_service_does()
    ended = store.revoke_everyone()
    events.everyone_logged_out(ended)
    print(f"ended {ended} sessions; every user must log in again")
    # Their access tokens too: every resource service refuses tokens issued before now.
    revocation_publisher(config).everyone(before=cut_off_now())
    print("announced on the revocation feed: access tokens issued before now are refused")
    return 0


def announce_withdrawn_keys(kids: list[str]) -> None:
    publisher = revocation_publisher(AuthConfig.from_env())
    for kid in kids:
        publisher.key(kid)
    print(f"announced {len(kids)} withdrawn key(s) on the revocation feed")


def migrate(argv: list[str]) -> int | str:
    # Imported here: the other commands need neither Alembic nor the storage modules.
    from auth_service.migrations import HISTORY
    from shared import migrations

    return migrations.main(argv, HISTORY, lambda: AuthConfig.from_env().database_url)


if __name__ == "__main__":
    command = sys.argv[1:3]
    if command[:1] == ["db"]:
        sys.exit(migrate(sys.argv[2:]))
    if command[:1] == ["keys"]:
        sys.exit(keys.main(sys.argv[2:], on_withdrawn=announce_withdrawn_keys))
    if command == ["sessions", "revoke-all"]:
        sys.exit(revoke_all_sessions())
    sys.exit(__doc__)
