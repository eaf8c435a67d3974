"""Who is calling, and what they may do: established once per outer call, inherited by its parts."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final

CATALOG_READ: Final = "catalog:read"
CATALOG_WRITE: Final = "catalog:write"
KNOWN_SCOPES: Final = (CATALOG_READ, CATALOG_WRITE)
"""Every scope a route may require; a token made with no `--scope` grants them all."""


@dataclass(frozen=True, slots=True)
class Identity:
    """The caller of one outer call (an HTTP request, or a socket's current token).

    `sub` is None for an anonymous caller, who holds `AUTH_ANONYMOUS_SCOPES`. `token_error`
    says why a presented token was refused (the caller is then anonymous, and a protected
    route answers 401 `invalid_token` rather than silently serving the anonymous view).
    Never holds the token itself: an identity may be logged.
    """

    sub: str | None
    scopes: frozenset[str]
    expires_at: float | None = None
    token_error: str | None = None

    @property
    def authenticated(self) -> bool:
        """Whether a valid token identified the caller."""
        return self.sub is not None and self.token_error is None

    def expired(self, now: float | None = None) -> bool:
        """Whether the token that identified the caller has expired by `now` (default: now)."""
        if self.expires_at is None:
            return False
        return (time.time() if now is None else now) >= self.expires_at


def anonymous(scopes: frozenset[str], *, token_error: str | None = None) -> Identity:
    """A caller without a (valid) token, holding the anonymous `scopes`."""
    return Identity(None, scopes, token_error=token_error)
