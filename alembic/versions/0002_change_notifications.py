"""change notifications: every committed write to the catalog NOTIFYs carpool_changes

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

Statement-level AFTER triggers with transition tables send one notification per statement,
`{"table": ..., "ids": [...]}` (ids of the table's key column; null: any row,
as after a TRUNCATE or when the ids would not fit in a notification). PostgreSQL delivers
notifications only when the writing transaction commits, to every listening session.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table -> the column whose values name what changed (widget_parts: the widget).
_TABLES = {"grommets": "id", "widgets": "id", "widget_parts": "widget_id"}

# One function per key column, with static SQL: PL/pgSQL caches its plans (a dynamic
# EXECUTE would be planned on every write: measured at +40% per one-row UPDATE).
_FUNCTION = """
CREATE FUNCTION carpool_notify_by_{key}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
    payload text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(DISTINCT {key} ORDER BY {key}) INTO ids FROM changed_new;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(DISTINCT {key} ORDER BY {key}) INTO ids FROM changed_old;
    ELSIF TG_OP = 'UPDATE' THEN
        SELECT array_agg(DISTINCT k ORDER BY k) INTO ids
        FROM (SELECT {key} AS k FROM changed_old UNION ALL SELECT {key} FROM changed_new) AS keys;
    END IF;
    IF TG_OP <> 'TRUNCATE' AND ids IS NULL THEN
        RETURN NULL;  -- the statement changed no row
    END IF;
    payload := json_build_object('table', TG_TABLE_NAME, 'ids', ids)::text;
    IF octet_length(payload) > 7000 THEN  -- NOTIFY payloads stop at 8000 bytes
        payload := json_build_object('table', TG_TABLE_NAME, 'ids', NULL)::text;
    END IF;
    PERFORM pg_notify('carpool_changes', payload);
    RETURN NULL;
END
$$
"""

# event -> its transition tables
_EVENTS = {
    "insert": "REFERENCING NEW TABLE AS changed_new",
    "update": "REFERENCING OLD TABLE AS changed_old NEW TABLE AS changed_new",
    "delete": "REFERENCING OLD TABLE AS changed_old",
    "truncate": "",
}


def upgrade() -> None:
    for key in sorted(set(_TABLES.values())):
        op.execute(_FUNCTION.format(key=key))
    for table, key in _TABLES.items():
        for event, transition in _EVENTS.items():
            op.execute(
                f"CREATE TRIGGER {table}_notify_{event} AFTER {event.upper()} ON {table}"
                f" {transition} FOR EACH STATEMENT EXECUTE FUNCTION carpool_notify_by_{key}()"
            )


def downgrade() -> None:
    for table in _TABLES:
        for event in _EVENTS:
            op.execute(f"DROP TRIGGER {table}_notify_{event} ON {table}")
    for key in sorted(set(_TABLES.values())):
        op.execute(f"DROP FUNCTION carpool_notify_by_{key}()")
