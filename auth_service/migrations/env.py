"""Alembic's entry point for the auth database; `python -m auth_service db ...` gets here."""

from auth_service.users import metadata
from shared.migrations import run_migrations

run_migrations(metadata)
