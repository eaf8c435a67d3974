"""Which key verifies tokens, as the settings say (a container provider)."""

from __future__ import annotations

import logging

import aiohttp

from carpool.auth.jwks import JwksKeys
from carpool.auth.secret_file import embedded_secret
from carpool.auth.tokens import Identifier, KeySource, PublicKey, SecretKey
from carpool.settings import ConfigurationError, Settings

log = logging.getLogger("carpool.auth")


def signing_secret(settings: Settings) -> str | None:
    """The HS256 secret: AUTH_JWT_SECRET, or in embedded mode (no DATABASE_URL and no other
    key configured) the one kept under DATA_DIR; None when tokens come from a provider."""
    if settings.auth_jwt_secret is not None:
        return settings.auth_jwt_secret.get_secret_value()
    if settings.auth_jwt_public_key or settings.auth_jwks_url or settings.database_url:
        return None
    return embedded_secret(settings.data_dir)


def key_source(settings: Settings, session: aiohttp.ClientSession) -> KeySource | None:
    """The configured key source; None (every token refused) if there is none."""
    if settings.auth_jwt_public_key:
        try:
            return PublicKey(settings.auth_jwt_public_key)
        except (ValueError, OSError) as exc:
            raise ConfigurationError(f"invalid configuration: AUTH_JWT_PUBLIC_KEY: {exc}") from None
    if settings.auth_jwks_url:
        return JwksKeys(settings.auth_jwks_url, session)
    secret = signing_secret(settings)
    if secret is None:
        log.warning(
            "no AUTH_JWT_SECRET, AUTH_JWT_PUBLIC_KEY or AUTH_JWKS_URL: every token is refused"
        )
        return None
    return SecretKey(secret)


def identifier(settings: Settings, session: aiohttp.ClientSession) -> Identifier:
    """The Identifier the settings describe."""
    return Identifier(
        key_source(settings, session),
        anonymous_scopes=settings.anonymous_scopes,
        audience=settings.auth_audience,
        issuer=settings.auth_issuer,
    )
