"""Where idempotent calls keep their answers: one row per (caller, key), written in the call's
own transaction, so that the answer is stored if and only if the writes are."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import orjson
from sqlalchemy import Column, DateTime, Index, LargeBinary, MetaData, SmallInteger, String, Table
from sqlalchemy.dialects.postgresql import JSONB

from carpool.data.sql import Connection

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


# Plain SQL on the unit's asyncpg connection (positional parameters); the table above is
# what the migration is checked against.
_CLAIM = "SELECT pg_try_advisory_xact_lock($1)"
_FIND = (
    "SELECT fingerprint, status, headers, content_type, body FROM idempotency_keys"
    " WHERE caller = $1 AND key = $2 AND expires_at > now()"
)
_RECORD = (
    "INSERT INTO idempotency_keys"
    " (caller, key, fingerprint, status, headers, content_type, body, expires_at)"
    " VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, now() + make_interval(secs => $8))"
    " ON CONFLICT (caller, key) DO UPDATE SET fingerprint = excluded.fingerprint,"
    " status = excluded.status, headers = excluded.headers,"
    " content_type = excluded.content_type, body = excluded.body,"
    " expires_at = excluded.expires_at"
)
_PURGE = (
    "DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY("
    " SELECT ctid FROM idempotency_keys WHERE expires_at <= now()"
    " LIMIT $1 FOR UPDATE SKIP LOCKED))"
)


async def claim(conn: Connection, caller: str, key: str) -> bool:
    """Hold the key until this transaction ends; False if another transaction holds it now."""
    return bool(await conn.value(_CLAIM, (_lock_id(caller, key),)))


async def find(conn: Connection, caller: str, key: str) -> StoredAnswer | None:
    """The unexpired answer stored under the key, if any."""
    row = await conn.row(_FIND, (caller, key))
    if row is None:
        return None
    headers = row["headers"]
    stored = orjson.loads(headers) if isinstance(headers, (str, bytes)) else dict(headers)
    return StoredAnswer(
        row["fingerprint"], row["status"], stored, row["content_type"], bytes(row["body"])
    )


async def record(
    conn: Connection, caller: str, key: str, answer: StoredAnswer, *, ttl_s: float
) -> None:
    """Store `answer` under the key for `ttl_s` seconds (replacing an expired one), and delete
    a few expired rows on the way: keys expire without a cron."""
    headers = orjson.dumps(answer.headers).decode()
    values = (caller, key, answer.fingerprint, answer.status, headers)
    await conn.execute(_RECORD, (*values, answer.content_type, answer.body, float(ttl_s)))
    await conn.execute(_PURGE, (PURGE_BATCH,))
