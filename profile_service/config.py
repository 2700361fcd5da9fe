"""Profile service settings, from the environment (see docs/API.md's Configuration section)."""

from __future__ import annotations

from pydantic import AliasChoices, Field

from shared.config import DatabaseUrl, PasswordFile, ServiceConfig


class ProfileConfig(ServiceConfig):
    database_url: DatabaseUrl = Field(
        "sqlite:///var/profile.db", validation_alias=AliasChoices("PROFILE_DATABASE_URL", "database_url")
    )
    database_password_file: PasswordFile = Field(
        None, validation_alias=AliasChoices("PROFILE_DATABASE_PASSWORD_FILE", "database_password_file")
    )
