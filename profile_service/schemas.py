"""Request and response bodies of the profile API; they validate input and generate /openapi.json."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, PlainSerializer, StringConstraints, field_validator
from pydantic_core import PydanticCustomError

# A name is one line; a bio may have line breaks and tabs. Other control characters (NUL above
# all, which PostgreSQL text refuses) are rejected here rather than failing in the database.
_NAME_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f]")
_BIO_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _reject(pattern: re.Pattern[str]) -> AfterValidator:
    def check(value: str) -> str:
        if pattern.search(value):
            raise PydanticCustomError("control_character", "Control characters are not allowed")
        return value

    return AfterValidator(check)


# RFC 3339 in UTC with a Z, to the second: 2026-11-27T08:00:00Z
Timestamp = Annotated[datetime, PlainSerializer(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ"), return_type=str)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50),
                 _reject(_NAME_FORBIDDEN)]
Bio = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500), _reject(_BIO_FORBIDDEN)]


class ProfileUpdate(BaseModel):
    """A partial update: a field left out stays as it is."""

    name: Name | None = None
    bio: Bio | None = None

    @field_validator("name")
    @classmethod
    def _name_is_not_null(cls, value: str | None) -> str:
        # Defaults are not validated, so this runs only for an explicit null: a profile always has a name.
        if value is None:
            raise PydanticCustomError("name_required", "A profile needs a name; it cannot be null")
        return value

    @field_validator("bio", mode="before")
    @classmethod
    def _null_bio_clears(cls, value: Any) -> Any:
        return "" if value is None else value


class ProfilePublic(BaseModel):
    user_id: str
    name: str
    bio: str
    created_at: Timestamp
    updated_at: Timestamp
