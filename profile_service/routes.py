"""HTTP routes of the profile service: parse with the schemas, call `ProfileStore`, shape the answer."""

from __future__ import annotations

from flask import Blueprint

from profile_service.context import ProfileContext
from profile_service.profiles import Profile, ProfileStore
from profile_service.schemas import ProfilePublic, ProfileUpdate
from shared.access_tokens import Caller, require_caller
from shared.openapi import ViewResult, operation
from shared.problems import not_found

bp = Blueprint("profiles", __name__, url_prefix="/api/profiles")


def _profiles() -> ProfileStore:
    return ProfileContext.of().profiles


def _public(profile: Profile) -> ProfilePublic:
    return ProfilePublic(
        user_id=profile.user_id,
        name=profile.name,
        bio=profile.bio,
        created_at=profile.created_at,
        updated_at=profile.updated_at,
    )


# `require_caller` sits above `operation`, so a request without a valid token gets its 401 before
# its body is read or validated. Werkzeug matches the static `/me` before `/<user_id>`.
@bp.get("/me")
@require_caller
@operation("Return the caller's profile, created from the access token on first access", responses={200: ProfilePublic})
def my_profile(caller: Caller) -> ViewResult:
    return _public(_profiles().find_or_create(caller.id, caller.name))


@bp.patch("/me")
@require_caller
@operation("Change the caller's name and/or bio", body=ProfileUpdate, responses={200: ProfilePublic})
def update_my_profile(caller: Caller, body: ProfileUpdate) -> ViewResult:
    return _public(_profiles().update(caller.id, token_name=caller.name, name=body.name, bio=body.bio))


@bp.get("/<user_id>")
@operation("Return a user's profile", responses={200: ProfilePublic})
def profile(user_id: str) -> ViewResult:
    found = _profiles().find(user_id)
    if found is None:
        raise not_found("No such profile.")
    return _public(found)
