"""Where idempotent calls keep their answers: one row per (caller, key), written in the call's
own transaction, so that the answer is stored if and only if the writes are."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

KEY_MAX = 255
CALLER_MAX = 200
# Expired rows one write deletes on its way: enough to keep up, never a long statement.
PURGE_BATCH = 100

metadata = MetaData(
    naming_convention={
        "pk": "%(table_name)s_pkey",
        "ix": "%(table_name)s_%(column_0_name)s_idx",
    }
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("caller", String(CALLER_MAX), primary_key=True),  # "" while there is no identity
    Column("key", String(KEY_MAX), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("status", SmallInteger, nullable=False),
    Column("headers", JSONB, nullable=False),
    Column("content_type", String(200), nullable=True),
    Column("body", LargeBinary, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index(None, "expires_at"),
)


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """The answer a call with this key gave, and the fingerprint of the request it answered."""

    fingerprint: str
    status: int
    headers: dict[str, str]
    content_type: str | None
    body: bytes


def _lock_id(caller: str, key: str) -> int:
    digest = hashlib.blake2b(f"{caller}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def claim(conn: AsyncConnection, caller: str, key: str) -> bool:
    """Hold the key until this transaction ends; False if another transaction holds it now."""
    result = await conn.execute(select(func.pg_try_advisory_xact_lock(_lock_id(caller, key))))
    return bool(result.scalar_one())


async def find(conn: AsyncConnection, caller: str, key: str) -> StoredAnswer | None:
    """The unexpired answer stored under the key, if any."""
    table = idempotency_keys.c
    statement = select(
        table.fingerprint, table.status, table.headers, table.content_type, table.body
    ).where(table.caller == caller, table.key == key, table.expires_at > func.now())
    row = (await conn.execute(statement)).first()
    if row is None:
        return None
    return StoredAnswer(row.fingerprint, row.status, dict(row.headers), row.content_type, row.body)


async def record(
    conn: AsyncConnection, caller: str, key: str, answer: StoredAnswer, *, ttl_s: float
) -> None:
    """Store `answer` under the key for `ttl_s` seconds (replacing an expired one), and delete
    a few expired rows on the way: keys expire without a cron."""
    values: dict[str, Any] = {
        "caller": caller,
        "key": key,
        "fingerprint": answer.fingerprint,
        "status": answer.status,
        "headers": answer.headers,
        "content_type": answer.content_type,
        "body": answer.body,
        "expires_at": func.now() + func.make_interval(0, 0, 0, 0, 0, 0, ttl_s),
    }
    statement = insert(idempotency_keys).values(values)
    replace = {name: statement.excluded[name] for name in values if name not in ("caller", "key")}
    await conn.execute(
        statement.on_conflict_do_update(index_elements=["caller", "key"], set_=replace)
    )
    await conn.execute(_PURGE, {"limit": PURGE_BATCH})


_PURGE = text(
    "DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY("
    " SELECT ctid FROM idempotency_keys WHERE expires_at <= now()"
    " LIMIT :limit FOR UPDATE SKIP LOCKED))"
)
