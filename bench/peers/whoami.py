"""Two identical "who am I" routes: one behind our shared verifier, one behind Flask-JWT-Extended.

Both use the algorithm of the same public key (ES256 for keys made by `make keys`) and check the
same issuer and audience, so a load run against /ours and /peer compares only the verification layers.
    gunicorn 'bench.peers.whoami:create_app()'   (JWKS_PATH points at the public keys)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import jwt
from flask import Flask, jsonify
from flask_jwt_extended import JWTManager, get_jwt, jwt_required

from shared.access_tokens import AccessTokenVerifier, Caller, require_caller
from shared.config import ServiceConfig
from shared.problems import register_error_handlers
from shared.service_context import ServiceContext


def create_app() -> Flask:
    config = ServiceConfig.from_env()
    app = Flask("whoami")
    register_error_handlers(app)
    ServiceContext(config=config, verifier=AccessTokenVerifier.from_config(config)).attach(app)

    [public_jwk] = json.loads(Path(os.environ["JWKS_PATH"]).read_text())["keys"][:1]
    app.config.update(
        JWT_ALGORITHM=public_jwk["alg"],
        JWT_DECODE_ALGORITHMS=[public_jwk["alg"]],
        JWT_PUBLIC_KEY=jwt.PyJWK(public_jwk).key,
        JWT_DECODE_AUDIENCE=config.jwt_audience,
        JWT_DECODE_ISSUER=config.jwt_issuer,
        JWT_DECODE_LEEWAY=config.jwt_leeway,
        JWT_TOKEN_LOCATION=["headers"],
        JWT_IDENTITY_CLAIM="sub",
    )
    JWTManager(app)

    @app.get("/healthz")
    def healthz():
        return jsonify(status="ok")

    @app.get("/ours")
    @require_caller
    def ours(caller: Caller):
        return jsonify(id=caller.id, name=caller.name)

    @app.get("/peer")
    @jwt_required()
    def peer():
        claims = get_jwt()
        return jsonify(id=claims["sub"], name=claims.get("name", ""))

    return app
