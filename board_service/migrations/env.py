"""Alembic's entry point for the board database; `python -m board_service db ...` gets here."""

from board_service.posts import metadata
from shared.migrations import run_migrations

run_migrations(metadata)
