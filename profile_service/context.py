"""What the profile service's views need, built once by `create_app`."""

from __future__ import annotations

from dataclasses import dataclass

from profile_service.config import ProfileConfig
from profile_service.profiles import ProfileStore
from shared.service_context import DatabaseServiceContext


@dataclass(frozen=True, kw_only=True)
class ProfileContext(DatabaseServiceContext):
    config: ProfileConfig
    profiles: ProfileStore
