"""catalog: grommets, widgets and widget_parts

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "grommets",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("material", sa.String(100), nullable=False),
        sa.Column("diameter_mm", sa.Double(), nullable=False),
        *_timestamps(),
        sa.CheckConstraint("diameter_mm > 0", name="grommets_diameter_positive_check"),
        sa.PrimaryKeyConstraint("id", name="grommets_pkey"),
        sa.UniqueConstraint("name", name="grommets_name_key"),
    )
    op.create_table(
        "widgets",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="widgets_pkey"),
        sa.UniqueConstraint("name", name="widgets_name_key"),
    )
    op.create_table(
        "widget_parts",
        sa.Column("widget_id", sa.BigInteger(), nullable=False),
        sa.Column("grommet_id", sa.BigInteger(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.CheckConstraint("quantity > 0", name="widget_parts_quantity_positive_check"),
        sa.ForeignKeyConstraint(
            ["widget_id"], ["widgets.id"], name="widget_parts_widget_id_fkey", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["grommet_id"],
            ["grommets.id"],
            name="widget_parts_grommet_id_fkey",
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("widget_id", "grommet_id", name="widget_parts_pkey"),
    )
    op.create_index("widget_parts_grommet_id_idx", "widget_parts", ["grommet_id"])


def downgrade() -> None:
    op.drop_index("widget_parts_grommet_id_idx", table_name="widget_parts")
    op.drop_table("widget_parts")
    op.drop_table("widgets")
    op.drop_table("grommets")
