"""suppliers, and the supplier a grommet may name

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from carpool.data.change_triggers import notify_changes, stop_notifying

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "suppliers",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint("country ~ '^[A-Z]{2}$'", name="suppliers_country_code_check"),
        sa.PrimaryKeyConstraint("id", name="suppliers_pkey"),
        sa.UniqueConstraint("name", name="suppliers_name_key"),
    )
    notify_changes("suppliers")
    op.add_column("grommets", sa.Column("supplier_id", sa.BigInteger(), nullable=True))
    op.create_foreign_key(
        "grommets_supplier_id_fkey",
        "grommets",
        "suppliers",
        ["supplier_id"],
        ["id"],
        ondelete="RESTRICT",
    )
    op.create_index("grommets_supplier_id_idx", "grommets", ["supplier_id"])


def downgrade() -> None:
    op.drop_index("grommets_supplier_id_idx", table_name="grommets")
    op.drop_constraint("grommets_supplier_id_fkey", "grommets", type_="foreignkey")
    op.drop_column("grommets", "supplier_id")
    stop_notifying("suppliers")
    op.drop_table("suppliers")
