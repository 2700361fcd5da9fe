"""One typed object per service holding what its views need, and the one way to reach it.

Each service's `create_app` builds its context once (cosmicpython's bootstrap) and attaches it;
views and tests reach it through `<Service>Context.of()`, so a rename is a type error, not a
KeyError at request time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Self

from flask import Flask, current_app

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from shared.access_tokens import AccessTokenVerifier
    from shared.config import ServiceConfig

_EXTENSION = "service_context"


@dataclass(frozen=True, kw_only=True)
class ServiceContext:
    """What every service has; each service subclasses it with its own stores."""

    config: ServiceConfig
    verifier: AccessTokenVerifier

    @classmethod
    def of(cls, app: Flask | None = None) -> Self:
        """Return the context of `app` (default: the current app), checked to be a `cls`."""
        # The proxy resolved once: each attribute read through `current_app` costs a context lookup.
        context = (app if app is not None else current_app._get_current_object()).extensions[_EXTENSION]  # type: ignore[attr-defined]
        if not isinstance(context, cls):
            raise TypeError(f"the app's context is a {type(context).__name__}, not a {cls.__name__}")
        return context

    def attach(self, app: Flask) -> None:
        app.extensions[_EXTENSION] = self


@dataclass(frozen=True, kw_only=True)
class DatabaseServiceContext(ServiceContext):
    """A service that owns one database (each service does; a test app may not)."""

    engine: Engine
