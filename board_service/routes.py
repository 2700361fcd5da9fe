"""HTTP routes of the board service: parse with the schemas, call `BoardStore`, shape the answer."""

from __future__ import annotations

from flask import Blueprint, url_for

from board_service.boards import Board, BoardNotFound, BoardStore, InvalidCursor, NotAuthor
from board_service.context import BoardContext
from board_service.schemas import (AuthorPublic, BoardCreate, BoardListQuery, BoardPage, BoardPublic,
                                   BoardUpdate)
from shared.access_tokens import Caller, require_caller
from shared.openapi import operation
from shared.problems import ErrorTable, ProblemFor

bp = Blueprint("boards", __name__, url_prefix="/api/boards")

ERRORS: ErrorTable = {
    BoardNotFound: ProblemFor(404, "not_found", "No such post.", title="Not found"),
    NotAuthor: ProblemFor(403, "forbidden", "Only the author may change or delete this post.", title="Forbidden"),
    InvalidCursor: ProblemFor(400, "validation_error", "The request has invalid fields.", title="Validation failed",
                              errors=({"field": "cursor",
                                       "message": "Not a cursor from this service; pass next_cursor back as given"},)),
}

# Check order for PATCH and DELETE: 401 (require_caller sits above operation), then 400 for the
# body, then 404, then 403. A malformed request is refused before any lookup, so its answer
# does not depend on what is stored; 403 reveals nothing, since every post is public anyway.


def _boards() -> BoardStore:
    return BoardContext.of().boards


def _public(board: Board) -> BoardPublic:
    return BoardPublic(id=board.id, title=board.title, content=board.content,
                       author=AuthorPublic(id=board.author_id, name=board.author_name),
                       created_at=board.created_at, updated_at=board.updated_at)


@bp.get("")
@operation("List posts, newest first; pass next_cursor back for the next page", query=BoardListQuery,
           responses={200: BoardPage})
def list_boards(query: BoardListQuery):
    page = _boards().page(limit=query.limit, cursor=query.cursor)
    return BoardPage(items=[_public(board) for board in page.items], next_cursor=page.next_cursor)


@bp.post("")
@require_caller
@operation("Publish a post as the caller", body=BoardCreate, responses={201: BoardPublic})
def create_board(body: BoardCreate, caller: Caller):
    board = _boards().add(author_id=caller.id, author_name=caller.name, title=body.title, content=body.content)
    return _public(board), 201, {"Location": url_for("boards.get_board", board_id=board.id)}


@bp.get("/<board_id>")
@operation("Read one post", responses={200: BoardPublic})
def get_board(board_id: str):
    return _public(_boards().get(board_id))


@bp.patch("/<board_id>")
@require_caller
@operation("Change the title and/or content of the caller's own post", body=BoardUpdate,
           responses={200: BoardPublic}, errors=(403,))
def update_board(board_id: str, body: BoardUpdate, caller: Caller):
    board = _boards().update(board_id, editor_id=caller.id, title=body.title, content=body.content)
    return _public(board)


@bp.delete("/<board_id>")
@require_caller
@operation("Delete the caller's own post", responses={204: None}, errors=(403,))
def delete_board(board_id: str, caller: Caller):
    _boards().delete(board_id, editor_id=caller.id)
    return None
