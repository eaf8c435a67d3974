"""Bearer tokens (JWT, PyJWT): verified against a secret, a public key or a provider's JWKS."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from carpool.auth.identity import Identity, anonymous

HS256 = "HS256"
ASYMMETRIC = ("RS256", "ES256")
_REQUIRED_CLAIMS = ["sub", "exp", "iat"]
_CACHE_SIZE = 4096


class InvalidToken(Exception):
    """A token that identifies nobody; the message says why (it is shown to the client)."""


class KeySource(Protocol):
    """Where the key that verifies a token comes from."""

    async def key_for(self, token: str) -> tuple[Any, list[str]]:
        """The key for `token` (by its `kid`, if any) and the algorithms it may be used with."""
        ...


class SecretKey:
    """One shared HS256 secret (AUTH_JWT_SECRET, or the embedded one)."""

    def __init__(self, secret: str) -> None:
        self._secret = secret

    async def key_for(self, token: str) -> tuple[Any, list[str]]:
        return self._secret, [HS256]


class PublicKey:
    """One RSA (RS256) or EC P-256 (ES256) public key, from PEM text or a PEM file."""

    def __init__(self, pem_or_path: str) -> None:
        text = pem_or_path
        if "-----BEGIN" not in text:
            text = Path(pem_or_path).read_text()
        key = load_pem_public_key(text.encode())
        if isinstance(key, rsa.RSAPublicKey):
            self._algorithms = ["RS256"]
        elif isinstance(key, ec.EllipticCurvePublicKey):
            self._algorithms = ["ES256"]
        else:
            raise ValueError("the public key must be an RSA or an EC (P-256) key")
        self._key = key

    async def key_for(self, token: str) -> tuple[Any, list[str]]:
        return self._key, self._algorithms


class Identifier:
    """Turns an `Authorization` header into an Identity; never raises for a bad token."""

    def __init__(
        self,
        keys: KeySource | None,
        *,
        anonymous_scopes: Iterable[str] = (),
        audience: str | None = None,
        issuer: str | None = None,
    ) -> None:
        self._keys = keys
        self._anonymous = frozenset(anonymous_scopes)
        self._audience = audience
        self._issuer = issuer
        self._verified: dict[str, Identity] = {}

    @property
    def anonymous_scopes(self) -> frozenset[str]:
        """What callers without a token may do."""
        return self._anonymous

    async def identify(self, authorization: str | None) -> Identity:
        """The caller an `Authorization` header names: anonymous without one, anonymous with
        `token_error` set when its token is refused."""
        if not authorization:
            return anonymous(self._anonymous)
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            error = "the Authorization header must be 'Bearer <token>'"
            return anonymous(self._anonymous, token_error=error)
        try:
            return await self.verify(token.strip())
        except InvalidToken as exc:
            return anonymous(self._anonymous, token_error=str(exc))

    async def verify(self, token: str) -> Identity:
        """The identity `token` proves; InvalidToken if it proves none."""
        known = self._verified.get(token)
        if known is not None:
            if known.expired():
                raise InvalidToken("the token has expired")
            return known
        if self._keys is None:
            raise InvalidToken("this server is configured to accept no tokens")
        identity = _identity(await self._decode(token))
        if len(self._verified) >= _CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = identity
        return identity

    async def _decode(self, token: str) -> dict[str, Any]:
        assert self._keys is not None
        try:
            key, algorithms = await self._keys.key_for(token)
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self._audience,
                issuer=self._issuer,
                options={"require": _REQUIRED_CLAIMS, "verify_aud": self._audience is not None},
            )
        except jwt.InvalidTokenError as exc:
            raise InvalidToken(_why(exc)) from None
        return claims


# Why a token was refused, as the client is told; the first matching class wins.
_REASONS: tuple[tuple[type[jwt.InvalidTokenError], str], ...] = (
    (jwt.ExpiredSignatureError, "the token has expired"),
    (jwt.InvalidAudienceError, "the token is not meant for this service (aud)"),
    (jwt.InvalidIssuerError, "the token comes from an issuer this service does not trust"),
    (jwt.InvalidAlgorithmError, "the token is signed with an algorithm this service refuses"),
    (jwt.InvalidSignatureError, "the token's signature does not verify"),
    (jwt.ImmatureSignatureError, "the token is not valid yet"),
)


def _why(exc: jwt.InvalidTokenError) -> str:
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"the token has no {exc.claim!r} claim"
    for kind, reason in _REASONS:
        if isinstance(exc, kind):
            return reason
    return "the token is malformed or invalid"


def _identity(claims: dict[str, Any]) -> Identity:
    sub = claims["sub"]
    if not isinstance(sub, str) or not sub:
        raise InvalidToken("the token's 'sub' claim must be a non-empty string")
    scope = claims.get("scope", "")
    scopes = scope.split() if isinstance(scope, str) else []
    return Identity(sub, frozenset(scopes), expires_at=float(claims["exp"]))


def issue_token(
    secret: str,
    *,
    sub: str,
    scopes: Iterable[str],
    ttl_s: float,
    audience: str | None = None,
    issuer: str | None = None,
    now: float | None = None,
) -> str:
    """An HS256 token for `sub` granting `scopes`, valid for `ttl_s` seconds from `now`."""
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "sub": sub,
        "scope": " ".join(scopes),
        "iat": issued,
        "exp": issued + int(ttl_s),
    }
    if audience is not None:
        claims["aud"] = audience
    if issuer is not None:
        claims["iss"] = issuer
    return jwt.encode(claims, secret, algorithm=HS256)
