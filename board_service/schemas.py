"""Request and response bodies of the board API; they validate input and generate /openapi.json."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints, field_validator

from shared.schema_types import MULTI_LINE, SINGLE_LINE, Timestamp

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), SINGLE_LINE]
# Content keeps its whitespace: leading spaces and blank lines are part of how a post reads.
Content = Annotated[str, StringConstraints(min_length=1, max_length=20000), MULTI_LINE]


class PostListQuery(BaseModel):
    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = Field(None, max_length=200, description="next_cursor of the previous page")


class PostCreate(BaseModel):
    title: Title
    content: Content


class PostUpdate(BaseModel):
    title: Title | None = None
    content: Content | None = None

    @field_validator("title", "content", mode="before")
    @classmethod
    def _omitted_not_null(cls, value: Any) -> Any:
        # Leaving a field out keeps it; an explicit null is a mistake, not a way to erase it.
        # (Validators do not run on defaults, so only a sent null gets here.)
        if value is None:
            raise ValueError("may be left out, but not null")
        return value


class AuthorPublic(BaseModel):
    id: str
    name: str


class PostPublic(BaseModel):
    id: str
    title: str
    content: str
    author: AuthorPublic
    created_at: Timestamp
    updated_at: Timestamp


class PostPage(BaseModel):
    items: list[PostPublic]
    next_cursor: str | None
