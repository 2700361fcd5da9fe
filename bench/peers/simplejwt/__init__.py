"""The rotation peer: Django REST framework SimpleJWT, refresh tokens rotated and blacklisted.

Its documented set-up: `TokenObtainPairView` and `TokenRefreshView`, `ROTATE_REFRESH_TOKENS` and
`BLACKLIST_AFTER_ROTATION` with the `token_blacklist` app (outstanding and blacklisted tokens in
PostgreSQL), ES256; every other SimpleJWT setting at its default. bench/http_bench.py row 7 serves
it the way ours is served and compares refresh with rotation.

    python -m bench.peers.simplejwt db upgrade      # migrations, then the user `bench`
    python -m bench.peers.simplejwt tokens 32       # refresh tokens of `bench`, one a line
    gunicorn 'bench.peers.simplejwt:create_app()'

Environment: SIMPLEJWT_DATABASE_URL (postgresql://...), SIMPLEJWT_SIGNING_KEY_PATH (an EC P-256
private key, PEM), DJANGO_SECRET_KEY, BENCH_PASSWORD (for `db upgrade`); `peer_env()` makes them.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

SETTINGS_MODULE = "bench.peers.simplejwt.settings"
USERNAME = "bench"
REPO = Path(__file__).resolve().parents[3]


def create_app() -> Any:
    """The Django WSGI application, for gunicorn."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()


def peer_env(directory: Path, database_url: str, password: str) -> dict[str, str]:
    """The environment the peer runs with: a new ES256 key under `directory`, `database_url`, `password`."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    directory.mkdir(parents=True, exist_ok=True)
    key_path = directory / "simplejwt-signing.pem"
    key_path.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_path.chmod(0o600)
    return {
        "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
        "SIMPLEJWT_DATABASE_URL": database_url,
        "SIMPLEJWT_SIGNING_KEY_PATH": str(key_path),
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(32),
        "BENCH_PASSWORD": password,
        # ServiceProcess puts the repository on the path; keep what the caller added (packages
        # installed outside the virtual environment).
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
