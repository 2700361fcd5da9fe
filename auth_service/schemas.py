"""Request and response bodies of the auth API; they validate input and generate /openapi.json."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, EmailStr, Field, StringConstraints

from shared.schema_types import SINGLE_LINE, Timestamp

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50), SINGLE_LINE]


class SignupRequest(BaseModel):
    email: Annotated[EmailStr, Field(max_length=254), SINGLE_LINE]
    password: Annotated[str, Field(min_length=8, max_length=128)]
    name: Name


class LoginRequest(BaseModel):
    email: Annotated[str, Field(max_length=320), SINGLE_LINE]
    password: Annotated[str, Field(max_length=1024)]


class UserPublic(BaseModel):
    id: str
    email: str
    name: str


class UserEnvelope(BaseModel):
    user: UserPublic


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["Bearer", "DPoP"] = "Bearer"  # noqa: S105 - a token type, not a secret
    expires_in: int
    user: UserPublic


class SessionPublic(BaseModel):
    id: str
    created_at: Timestamp
    last_used_at: Timestamp
    user_agent: str
    current: bool


class SessionList(BaseModel):
    sessions: list[SessionPublic]


class JsonWebKeySet(BaseModel):
    keys: list[dict[str, str]]
