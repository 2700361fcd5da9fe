"""Board service settings, from the environment (see docs/API.md's Configuration section)."""

from __future__ import annotations

from pydantic import AliasChoices, Field

from shared.config import DatabaseUrl, PasswordFile, ServiceConfig


class BoardConfig(ServiceConfig):
    database_url: DatabaseUrl = Field(
        "sqlite:///var/board.db", validation_alias=AliasChoices("BOARD_DATABASE_URL", "database_url")
    )
    database_password_file: PasswordFile = Field(
        None, validation_alias=AliasChoices("BOARD_DATABASE_PASSWORD_FILE", "database_password_file")
    )
