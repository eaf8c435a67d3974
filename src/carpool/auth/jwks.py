"""An identity provider's signing keys (JWKS): fetched through the shared HTTP session, cached."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp
import jwt

from carpool.auth.tokens import ASYMMETRIC, InvalidToken

log = logging.getLogger("carpool.auth")


class JwksKeys:
    """The keys published at `url`, refreshed every `max_age_s`, and at once (at most every
    `min_refetch_s`) when a token names a key id not seen yet: a provider's key rotation is
    picked up without a restart."""

    def __init__(
        self,
        url: str,
        session: aiohttp.ClientSession,
        *,
        max_age_s: float = 300.0,
        min_refetch_s: float = 10.0,
    ) -> None:
        self._url = url
        self._session = session
        self._max_age_s = max_age_s
        self._min_refetch_s = min_refetch_s
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._fetching = asyncio.Lock()

    async def key_for(self, token: str) -> tuple[Any, list[str]]:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.InvalidTokenError:
            raise InvalidToken("the token is malformed or invalid") from None
        now = time.monotonic()
        stale = now - self._fetched_at > self._max_age_s
        unknown = kid not in self._keys and now - self._fetched_at > self._min_refetch_s
        if stale or unknown:
            await self._refresh()
        found = self._keys.get(kid) or (self._keys.get(None) if kid is None else None)
        if found is None:
            raise InvalidToken("the token is signed with a key this service does not know")
        return found.key, [found.algorithm_name]

    async def _refresh(self) -> None:
        async with self._fetching:
            if time.monotonic() - self._fetched_at <= self._min_refetch_s:
                return  # another task has just fetched them
            try:
                async with self._session.get(self._url) as response:
                    response.raise_for_status()
                    document = await response.json(content_type=None)
                keys = jwt.PyJWKSet.from_dict(document).keys
            except Exception as exc:  # keep the keys we had; tokens signed by them still work
                log.warning("cannot fetch the JWKS at %s: %s", self._url, exc)
                self._fetched_at = time.monotonic()
                return
            usable = [key for key in keys if key.algorithm_name in ASYMMETRIC]
            self._keys = {key.key_id: key for key in usable}
            if len(usable) == 1:
                self._keys.setdefault(None, usable[0])  # a token without kid, one key: that one
            self._fetched_at = time.monotonic()
