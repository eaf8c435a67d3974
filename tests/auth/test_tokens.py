"""Bad tokens are refused with 401 (RFC 6750); keys come from a secret, a PEM or a JWKS URL."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from dependency_injector import providers

from carpool.auth.jwks import JwksKeys
from carpool.auth.tokens import Identifier
from tests.conftest import make_container
from tests.helpers import TEST_SECRET, create_app, served, token


def claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "alice", "scope": "catalog:read", "iat": now, "exp": now + 600, **extra}


def forged_none() -> str:
    """A token with `alg: none` and no signature (the classic forgery)."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims(scope='catalog:write'))}."


def tampered() -> str:
    """A valid read token whose payload was changed to grant writes (signature kept)."""
    header, _, signature = token("catalog:read").split(".")
    payload = base64.urlsafe_b64encode(json.dumps(claims(scope="catalog:write")).encode())
    return f"{header}.{payload.rstrip(b'=').decode()}.{signature}"


BAD_TOKENS: dict[str, Callable[[], str]] = {
    "expired": lambda: token(ttl_s=-10),
    "tampered": tampered,
    "alg none": forged_none,
    "wrong key": lambda: jwt.encode(claims(), "another-secret-of-at-least-32-bytes!!", "HS256"),
    "no sub": lambda: jwt.encode({k: v for k, v in claims().items() if k != "sub"}, TEST_SECRET),
    "no exp": lambda: jwt.encode({k: v for k, v in claims().items() if k != "exp"}, TEST_SECRET),
    "not a jwt": lambda: "hello",
}


@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
async def test_a_bad_token_is_a_401_invalid_token(client: httpx.AsyncClient, kind: str) -> None:
    bad = BAD_TOKENS[kind]()
    response = await client.get("/grommets", headers={"authorization": f"Bearer {bad}"})
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="carpool", error="invalid_token"'), challenge
    assert bad not in response.text


async def test_an_expired_token_says_so(client: httpx.AsyncClient) -> None:
    response = await client.get("/grommets", headers={"authorization": f"Bearer {token(ttl_s=-1)}"})
    assert "expired" in response.json()["detail"]
    assert "expired" in response.headers["www-authenticate"]


async def test_a_bad_token_on_a_public_route_is_ignored(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"authorization": "Bearer nonsense"})
    assert response.status_code == 200


# -- audience and issuer --------------------------------------------------------------------


@pytest.fixture
async def strict_client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    container = make_container(database_url, auth_audience="carpool", auth_issuer="https://idp")
    app = create_app(container)
    async with served(app, base_url="http://strict") as http:
        yield http


@pytest.mark.parametrize(
    ("claims_given", "status"),
    [
        ({"audience": "carpool", "issuer": "https://idp"}, 200),
        ({"audience": "other", "issuer": "https://idp"}, 401),
        ({"audience": "carpool", "issuer": "https://evil"}, 401),
        ({"issuer": "https://idp"}, 401),
        ({"audience": "carpool"}, 401),
    ],
)
async def test_audience_and_issuer_are_checked_when_configured(
    strict_client: httpx.AsyncClient, claims_given: dict[str, Any], status: int
) -> None:
    given = token(**claims_given)
    response = await strict_client.get("/grommets", headers={"authorization": f"Bearer {given}"})
    assert response.status_code == status, response.text


# -- public keys (RS256, ES256) -------------------------------------------------------------


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return public.decode()


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
async def test_a_public_key_verifies_tokens_of_its_algorithm_only(
    database_url: str, algorithm: str
) -> None:
    private: Any = rsa_key() if algorithm == "RS256" else ec.generate_private_key(ec.SECP256R1())
    container = make_container(database_url, auth_jwt_secret=None, auth_jwt_public_key=pem(private))
    app = create_app(container)
    good = jwt.encode(claims(), private, algorithm=algorithm)
    # An HS256 token (as in the key-confusion attack): refused, only the key's algorithm counts.
    confused = jwt.encode(claims(), TEST_SECRET, algorithm="HS256")
    async with served(app, base_url="http://pk") as http:
        ok = await http.get("/grommets", headers={"authorization": f"Bearer {good}"})
        refused = await http.get("/grommets", headers={"authorization": f"Bearer {confused}"})
    assert ok.status_code == 200, ok.text
    assert refused.status_code == 401


# -- JWKS ---------------------------------------------------------------------------------


class FakeProvider:
    """An identity provider publishing its current keys at /jwks.json."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}
        self.fetches = 0

    def rotate(self, kid: str) -> None:
        """Publish a new key (and only it), as a provider rotating its keys does."""
        self.keys = {kid: rsa_key()}

    def sign(self, kid: str, **extra: Any) -> str:
        return jwt.encode(claims(**extra), self.keys[kid], "RS256", headers={"kid": kid})

    async def jwks(self, request: web.Request) -> web.Response:
        self.fetches += 1
        published = []
        for kid, private in self.keys.items():
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
            published.append({**jwk, "kid": kid, "alg": "RS256", "use": "sig"})
        return web.json_response({"keys": published})


@pytest.fixture
async def provider() -> AsyncIterator[tuple[FakeProvider, str]]:
    idp = FakeProvider()
    app = web.Application()
    app.router.add_get("/jwks.json", idp.jwks)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield idp, f"http://127.0.0.1:{port}/jwks.json"
    await runner.cleanup()


async def test_a_jwks_key_rotation_is_picked_up_without_a_restart(
    database_url: str, provider: tuple[FakeProvider, str]
) -> None:
    idp, url = provider
    container = make_container(database_url, auth_jwt_secret=None, auth_jwks_url=url)

    def quick_identifier(settings: Any, session: Any) -> Identifier:
        # As production, but allowed to re-fetch at once (production: at most every 10 s).
        return Identifier(JwksKeys(url, session, min_refetch_s=0.0))

    container.identifier.override(
        providers.Singleton(quick_identifier, container.settings, container.http_client)
    )
    app = create_app(container)
    idp.rotate("k1")
    first = idp.sign("k1")
    async with served(app, base_url="http://jwks") as http:

        async def status(given: str) -> int:
            headers = {"authorization": f"Bearer {given}"}
            return (await http.get("/grommets", headers=headers)).status_code

        assert await status(first) == 200
        assert await status(idp.sign("k1", sub="bob")) == 200
        assert idp.fetches == 1, "keys are cached"
        idp.rotate("k2")
        assert await status(idp.sign("k2")) == 200, "the new key was fetched"
        forged = jwt.encode(claims(), rsa_key(), "RS256", headers={"kid": "k2"})
        assert await status(forged) == 401
        unknown = jwt.encode(claims(), rsa_key(), "RS256", headers={"kid": "k9"})
        assert await status(unknown) == 401
        hs = jwt.encode(claims(), "whatever-secret-of-32-bytes-or-more!", "HS256")
        assert await status(hs) == 401
