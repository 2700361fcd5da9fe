"""Command line of the auth service.

python -m auth_service keys init|rotate [--dir DIR] [--drop-old]
python -m auth_service sessions revoke-all      # uses REDIS_URL and REDIS_PREFIX
python -m auth_service db upgrade|downgrade|current|revision   # uses AUTH_DATABASE_URL
"""

import sys

from auth_service import keys
from auth_service.config import AuthConfig


def revoke_all_sessions() -> int:
    # Imported here: `keys` and `db` need no Redis client.
    from auth_service.redis_client import create_redis_client
    from auth_service.sessions import SessionStore

    config = AuthConfig.from_env()
    store = SessionStore(
        create_redis_client(config.redis_url),
        prefix=config.redis_prefix,
        ttl=config.refresh_token_ttl,
        reuse_grace=config.refresh_reuse_grace,
    )
    print(f"ended {store.revoke_everyone()} sessions; every user must log in again")
    return 0


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
        sys.exit(keys.main(sys.argv[2:]))
    if command == ["sessions", "revoke-all"]:
        sys.exit(revoke_all_sessions())
    sys.exit(__doc__)
