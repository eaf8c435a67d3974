"""`carpool token`: print a bearer token signed with the configured (or embedded) secret."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from carpool.auth.identity import KNOWN_SCOPES
from carpool.auth.setup import signing_secret
from carpool.auth.tokens import issue_token
from carpool.settings import ConfigurationError, Settings, load_settings

DEMO_TTL_S = 7 * 24 * 3600


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="carpool", description="carpool's command line.")
    commands = parser.add_subparsers(dest="command", required=True)
    token = commands.add_parser(
        "token",
        help="print a bearer token",
        description="Print a token signed with AUTH_JWT_SECRET, or in embedded mode (no"
        " DATABASE_URL) with the secret kept under DATA_DIR.",
    )
    token.add_argument(
        "--scope",
        action="append",
        help=f"a scope to grant (repeat for more); none given: {' '.join(KNOWN_SCOPES)}",
    )
    token.add_argument("--sub", default="cli", help="the caller's name (the sub claim)")
    token.add_argument("--ttl", type=int, default=3600, help="seconds until it expires")
    commands.add_parser(
        "demo-token",
        help="in embedded mode, print a ready-made full-scope token (make run)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The console script's entry point; the exit status."""
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        print(f"carpool: {exc}", file=sys.stderr)
        return 2
    if args.command == "demo-token":
        return _demo(settings)
    secret = signing_secret(settings)
    if secret is None:
        print(
            "carpool: no secret to sign with: set AUTH_JWT_SECRET (with AUTH_JWT_PUBLIC_KEY or"
            " AUTH_JWKS_URL, tokens come from your identity provider)",
            file=sys.stderr,
        )
        return 2
    scopes = args.scope or KNOWN_SCOPES
    print(_issue(settings, secret, sub=args.sub, scopes=scopes, ttl_s=args.ttl))
    return 0


def _demo(settings: Settings) -> int:
    if settings.database_url is not None or settings.auth_jwt_secret is not None:
        return 0  # not the embedded demo: tokens are the operator's business
    if settings.auth_jwt_public_key is not None or settings.auth_jwks_url is not None:
        # Tokens are verified with the identity provider's key: carpool can sign none.
        print(
            "No demo token: AUTH_JWT_PUBLIC_KEY or AUTH_JWKS_URL is set, so tokens come from"
            " your identity provider."
        )
        return 0
    secret = signing_secret(settings)
    assert secret is not None
    token = _issue(settings, secret, sub="demo", scopes=KNOWN_SCOPES, ttl_s=DEMO_TTL_S)
    print("A full-scope demo token (valid 7 days; `.venv/bin/carpool token --help` for more):")
    print(f"  export TOKEN={token}")
    return 0


def _issue(
    settings: Settings, secret: str, *, sub: str, scopes: Sequence[str], ttl_s: float
) -> str:
    return issue_token(
        secret,
        sub=sub,
        scopes=scopes,
        ttl_s=ttl_s,
        audience=settings.auth_audience,
        issuer=settings.auth_issuer,
    )
