"""Request and response bodies of the profile API; they validate input and generate /openapi.json."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, StringConstraints, field_validator
from pydantic_core import PydanticCustomError

from shared.schema_types import MULTI_LINE, SINGLE_LINE, Timestamp

# A name is one line; a bio may have line breaks and tabs.
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50), SINGLE_LINE]
Bio = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500), MULTI_LINE]


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
