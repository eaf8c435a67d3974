"""change notifications: every committed write to the catalog NOTIFYs carpool_changes

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

The triggers and their functions are `carpool.data.change_triggers`'s: a later table gets
them with one `notify_changes(table)` in its own migration.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from carpool.data.change_triggers import function_name, notify_changes, stop_notifying

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table -> the column whose values name what changed (widget_parts: the widget).
_TABLES = {"grommets": "id", "widgets": "id", "widget_parts": "widget_id"}


def upgrade() -> None:
    for table, key in _TABLES.items():
        notify_changes(table, key=key)


def downgrade() -> None:
    for table in _TABLES:
        stop_notifying(table)
    for key in sorted(set(_TABLES.values())):
        op.execute(f"DROP FUNCTION {function_name(key)}()")
