"""Every curl example of docs/http.md, run in order against the demo data, answers as shown."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from carpool.catalog.seed import seed_demo_rows
from tests.helpers import token

GUIDE = (Path(__file__).resolve().parents[2] / "docs" / "http.md").read_text()
_BLOCK = re.compile(r"```sh\n(.*?)```", re.DOTALL)
_LINE = re.compile(
    r"^(?:(?P<var>\w+)=\$\((?P<sub>.*)\)|(?P<cmd>curl .*?))\s+#\s*(?P<status>\d{3})$"
)
_HOST = "localhost:8000"


@dataclass
class Curl:
    """What one curl command line asks for."""

    method: str = "GET"
    url: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    data: str | None = None
    capture: str | None = None  # the header `-w '%header{name}'` prints


def _parse(words: list[str], env: dict[str, str]) -> Curl:
    curl = Curl()
    words = [re.sub(r"\$(\w+)", lambda m: env[m.group(1)], word) for word in words[1:]]
    it = iter(words)
    for word in it:
        if word.startswith("-X"):
            curl.method = word[2:] or next(it)
        elif word == "-H":
            name, _, value = next(it).partition(":")
            curl.headers[name.strip().lower()] = value.strip()
        elif word == "-d":
            curl.data = next(it)
        elif word == "-o":
            next(it)
        elif word == "-w":
            found = re.fullmatch(r"%header\{([^}]+)\}", next(it))
            curl.capture = found.group(1) if found else None
        elif word == "--compressed":
            curl.headers["Accept-Encoding"] = "gzip"
        elif word.startswith(_HOST):
            curl.url = word.removeprefix(_HOST)
        else:
            assert word in ("-s", "-i", "-si"), f"unknown curl word {word!r}"
    return curl


def _lines() -> list[re.Match[str]]:
    lines = [line for block in _BLOCK.findall(GUIDE) for line in block.splitlines() if line]
    matches = [_LINE.fullmatch(line) for line in lines]
    assert all(matches), [line for line, m in zip(lines, matches, strict=True) if not m]
    return [m for m in matches if m is not None]


async def _run_examples(http: httpx.AsyncClient, env: dict[str, str]) -> list[httpx.Response]:
    answers = []
    for match in _lines():
        words = shlex.split(match["sub"] or match["cmd"])
        curl = _parse(words, env)
        headers = dict(curl.headers)
        if curl.data is not None:
            headers.setdefault("content-type", "application/x-www-form-urlencoded")
        answer = await http.request(curl.method, curl.url, content=curl.data, headers=headers)
        assert answer.status_code == int(match["status"]), (words, answer.text)
        if match["var"]:
            assert curl.capture is not None
            env[match["var"]] = answer.headers[curl.capture]
        answers.append(answer)
    return answers


async def test_every_curl_example_answers_the_status_it_shows(
    client: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    async with admin_engine.begin() as conn:
        await seed_demo_rows(conn)
    env: dict[str, str] = {"TOKEN": token()}
    # No credentials of its own: the examples carry theirs.
    async with httpx.AsyncClient(transport=client._transport, base_url=client.base_url) as bare:
        answers = await _run_examples(bare, env)
    statuses = [answer.status_code for answer in answers]
    not_modified = answers[statuses.index(304)]
    assert not_modified.content == b""
    assert not_modified.headers["etag"] == not_modified.request.headers["if-none-match"]
    batch = next(a for a in answers if a.request.url.path == "/batch")
    assert batch.json()["committed"] is True
    assert [item["status"] for item in batch.json()["responses"]] == [200, 200, 200, 200]
    replayed = [a for a in answers if a.headers.get("idempotent-replayed") == "true"]
    assert len(replayed) == 1
    compressed = next(a for a in answers if a.request.url.path == "/openapi.json")
    assert compressed.headers["content-encoding"] == "gzip"
    page = next(a for a in answers if a.request.url.path == "/grommets" and "limit=2" in str(a.url))
    documented = re.search(r"`link: (<[^`]+)`", GUIDE)
    assert documented is not None and page.headers["link"] == documented.group(1)
