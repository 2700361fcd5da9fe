"""What the board service's views need, built once by `create_app`."""

from __future__ import annotations

from dataclasses import dataclass

from board_service.config import BoardConfig
from board_service.posts import PostStore
from shared.service_context import DatabaseServiceContext


@dataclass(frozen=True, kw_only=True)
class BoardContext(DatabaseServiceContext):
    config: BoardConfig
    posts: PostStore
