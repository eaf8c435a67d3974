"""Liveness: answers without touching the database."""

from __future__ import annotations

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse

from carpool.web.responses import json_response

blueprint = Blueprint("health")


@blueprint.get("/health")
async def health(request: Request) -> HTTPResponse:
    """The process is up and serving."""
    return json_response({"status": "ok"})
