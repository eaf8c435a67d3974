"""The triggers that make every committed write to a table NOTIFY `carpool_changes`, for
migrations: `notify_changes("parts")` in an upgrade, `stop_notifying(...)` in its
downgrade. Live answers re-run a subscribed call when a table it read changes, so a table
without them never pushes (tests/data/test_migrations.py checks every table has them).

Statement-level AFTER triggers with transition tables send one notification per statement,
`{"table": ..., "ids": [...]}` (ids of the table's key column; null: any row, as after a
TRUNCATE or when the ids would not fit in a notification). PostgreSQL delivers
notifications only when the writing transaction commits, to every listening session.
"""

from __future__ import annotations

from carpool.data.changes import CHANNEL

# One function per key column, with static SQL: PL/pgSQL caches its plans (a dynamic
# EXECUTE would be planned on every write: measured at +40% per one-row UPDATE).
_FUNCTION = """
CREATE OR REPLACE FUNCTION carpool_notify_by_{key}() RETURNS trigger LANGUAGE plpgsql AS $$
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
    PERFORM pg_notify('{channel}', payload);
    RETURN NULL;
END
$$
"""

# event -> its transition tables
EVENTS = {
    "insert": "REFERENCING NEW TABLE AS changed_new",
    "update": "REFERENCING OLD TABLE AS changed_old NEW TABLE AS changed_new",
    "delete": "REFERENCING OLD TABLE AS changed_old",
    "truncate": "",
}


def trigger_name(table: str, event: str) -> str:
    """The name of the trigger that notifies `event`s (insert, update, ...) on `table`."""
    return f"{table}_notify_{event}"


def function_name(key: str) -> str:
    """The trigger function that notifies the values of the key column `key`."""
    return f"carpool_notify_by_{key}"


def trigger_statements(table: str, *, key: str = "id") -> list[str]:
    """The SQL that makes every committed write to `table` notify the values of its column
    `key` that it changed (the id the table's rows are read by): the function, the triggers."""
    return [_FUNCTION.format(key=key, channel=CHANNEL)] + [
        f"CREATE TRIGGER {trigger_name(table, event)} AFTER {event.upper()} ON {table}"
        f" {transition} FOR EACH STATEMENT EXECUTE FUNCTION {function_name(key)}()"
        for event, transition in EVENTS.items()
    ]


def notify_changes(table: str, *, key: str = "id") -> None:
    """In a migration's upgrade: `trigger_statements(table, key=key)`."""
    from alembic import op

    for statement in trigger_statements(table, key=key):
        op.execute(statement)


def stop_notifying(table: str) -> None:
    """In a migration's downgrade: undo `notify_changes(table)` (the shared function stays)."""
    from alembic import op

    for event in EVENTS:
        op.execute(f"DROP TRIGGER {trigger_name(table, event)} ON {table}")
