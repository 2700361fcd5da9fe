"""Alembic's entry point for the profile database; `python -m profile_service db ...` gets here."""

from profile_service.profiles import metadata
from shared.migrations import run_migrations

run_migrations(metadata)
