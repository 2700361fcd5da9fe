"""Rename the boards table to posts, with its paging index and (on PostgreSQL) its primary key.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _rename_table("boards", "posts")


def downgrade() -> None:
    _rename_table("posts", "boards")


def _rename_table(old: str, new: str) -> None:
    # Renaming keeps every row; only the names the table was created with need following.
    op.rename_table(old, new)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER INDEX ix_{old}_created_at_id RENAME TO ix_{new}_created_at_id")
        # PostgreSQL named the primary key after the table, and keeps that name unless told.
        op.execute(f"ALTER TABLE {new} RENAME CONSTRAINT {old}_pkey TO {new}_pkey")
    else:
        # SQLite cannot rename an index, so it is built again; its primary key has no name.
        op.drop_index(f"ix_{old}_created_at_id", table_name=new)
        op.create_index(f"ix_{new}_created_at_id", new, ["created_at", "id"])
