"""Compressing answers on the wire (gzip, or brotli when the client prefers it).

A transport concern, applied to the outer answer only (a single request, a whole batch):
batch item bodies stay byte-identical to the single answers inside it, and frames are
compressed by the WebSocket itself (permessage-deflate).
"""

from __future__ import annotations

import gzip
import importlib
from types import ModuleType

from sanic.response import BaseHTTPResponse


def _optional(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


brotli = _optional("brotli")  # optional: without it, gzip only

MIN_BYTES = 1024
GZIP_LEVEL = 6
BROTLI_QUALITY = 5  # brotli's default (11) costs tens of milliseconds per 100 KB
_COMPRESSIBLE = ("text/", "application/json", "application/javascript", "application/xml")
_NEVER = frozenset({204, 206, 304})


def _compressible(content_type: str) -> bool:
    media = content_type.split(";")[0].strip().lower()
    return media.startswith(_COMPRESSIBLE) or media.endswith(("+json", "+xml"))


def _weights(accept_encoding: str) -> dict[str, float]:
    weights: dict[str, float] = {}
    for part in accept_encoding.split(","):
        coding, *params = (piece.strip() for piece in part.split(";"))
        weight = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if coding:
            weights[coding.lower()] = weight
    return weights


def negotiate(accept_encoding: str | None) -> str | None:
    """The coding to answer with: the client's most preferred of br (if installed) and gzip,
    br on a tie; None for no compression (RFC 9110 section 12.5.3)."""
    if not accept_encoding:
        return None
    weights = _weights(accept_encoding)
    anything = weights.get("*", 0.0)
    offered = ("br", "gzip") if brotli is not None else ("gzip",)
    ranked = [(weights.get(coding, anything), -n, coding) for n, coding in enumerate(offered)]
    weight, _, best = max(ranked)
    return best if weight > 0 else None


def _encode(coding: str, body: bytes) -> bytes:
    if coding == "br" and brotli is not None:
        encoded: bytes = brotli.compress(body, quality=BROTLI_QUALITY)
        return encoded
    return gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)


def decoded(body: bytes, coding: bytes | str | None) -> bytes:
    """`body` as it was before `compress` encoded it with `coding` (None: as it is)."""
    name = coding.decode("latin-1") if isinstance(coding, bytes) else coding
    if name == "gzip":
        return gzip.decompress(body)
    if name == "br" and brotli is not None:
        plain: bytes = brotli.decompress(body)
        return plain
    return body


def compress(response: BaseHTTPResponse, accept_encoding: str | None) -> None:
    """Compress `response` in place if it is worth it and the client accepts it.

    Answers over MIN_BYTES of a compressible type say `Vary: Accept-Encoding` (whether
    compressed or not); never 204/206/304, nor an answer already encoded. A strong ETag gets
    the coding as a suffix (`"…-gzip"`): another representation, the same conditions.
    """
    body = response.body
    if response.status in _NEVER or not body or len(body) < MIN_BYTES:
        return
    headers = response.headers
    if "content-encoding" in headers or not _compressible(response.content_type or ""):
        return
    vary = headers.get("vary")
    if vary is None:
        headers["vary"] = "Accept-Encoding"
    elif "accept-encoding" not in vary.lower():
        headers["vary"] = f"{vary}, Accept-Encoding"
    coding = negotiate(accept_encoding)
    if coding is None:
        return
    response.body = _encode(coding, body)
    headers["content-encoding"] = coding
    etag = headers.get("etag")
    if etag is not None and etag.endswith('"') and not etag.startswith("W/"):
        headers["etag"] = f'{etag[:-1]}-{coding}"'
