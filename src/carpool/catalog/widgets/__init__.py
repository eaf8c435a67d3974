"""Widgets: made of grommets (their parts), with the stock the inventory service reports."""

from __future__ import annotations

from carpool.catalog.widgets import availability
from carpool.catalog.widgets.resource import widgets
from carpool.catalog.widgets.routes import blueprint

__all__ = ["availability", "blueprint", "widgets"]
