"""HTTP routes of the board service: parse with the schemas, call `PostStore`, shape the answer."""

from __future__ import annotations

from flask import Blueprint, url_for

from board_service.context import BoardContext
from board_service.posts import InvalidCursor, NotAuthor, Post, PostNotFound, PostStore
from board_service.schemas import AuthorPublic, PostCreate, PostListQuery, PostPage, PostPublic, PostUpdate
from shared.access_tokens import Caller, require_caller
from shared.openapi import ViewResult, operation
from shared.problems import ErrorTable, ProblemFor

bp = Blueprint("posts", __name__, url_prefix="/api/boards")

ERRORS: ErrorTable = {
    PostNotFound: ProblemFor(404, "not_found", "No such post.", title="Not found"),
    NotAuthor: ProblemFor(403, "forbidden", "Only the author may change or delete this post.", title="Forbidden"),
    InvalidCursor: ProblemFor(
        400,
        "validation_error",
        "The request has invalid fields.",
        title="Validation failed",
        errors=({"field": "cursor", "message": "Not a cursor from this service; pass next_cursor back as given"},),
    ),
}

# Check order for PATCH and DELETE: 401 (require_caller sits above operation), then 400 for the
# body, then 404, then 403. A malformed request is refused before any lookup, so its answer
# does not depend on what is stored; 403 reveals nothing, since every post is public anyway.


def _posts() -> PostStore:
    return BoardContext.of().posts


def _public(post: Post) -> PostPublic:
    return PostPublic(
        id=post.id,
        title=post.title,
        content=post.content,
        author=AuthorPublic(id=post.author_id, name=post.author_name),
        created_at=post.created_at,
        updated_at=post.updated_at,
    )


@bp.get("")
@operation(
    "List posts, newest first; pass next_cursor back for the next page", query=PostListQuery, responses={200: PostPage}
)
def list_posts(query: PostListQuery) -> ViewResult:
    page = _posts().page(limit=query.limit, cursor=query.cursor)
    return PostPage(items=[_public(post) for post in page.items], next_cursor=page.next_cursor)


@bp.post("")
@require_caller
@operation("Publish a post as the caller", body=PostCreate, responses={201: PostPublic})
def create_post(body: PostCreate, caller: Caller) -> ViewResult:
    post = _posts().add(author_id=caller.id, author_name=caller.name, title=body.title, content=body.content)
    return _public(post), 201, {"Location": url_for("posts.get_post", post_id=post.id)}


@bp.get("/<post_id>")
@operation("Read one post", responses={200: PostPublic})
def get_post(post_id: str) -> ViewResult:
    return _public(_posts().get(post_id))


@bp.patch("/<post_id>")
@require_caller
@operation(
    "Change the title and/or content of the caller's own post",
    body=PostUpdate,
    responses={200: PostPublic},
    errors=(403,),
)
def update_post(post_id: str, body: PostUpdate, caller: Caller) -> ViewResult:
    post = _posts().update(post_id, editor_id=caller.id, title=body.title, content=body.content)
    return _public(post)


@bp.delete("/<post_id>")
@require_caller
@operation("Delete the caller's own post", responses={204: None}, errors=(403,))
def delete_post(post_id: str, caller: Caller) -> ViewResult:
    _posts().delete(post_id, editor_id=caller.id)
    return None
