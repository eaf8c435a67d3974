"""Every table of the catalog, on one MetaData: what the migrations are checked against."""

from __future__ import annotations

from carpool.catalog import resource_modules
from carpool.catalog.tables import metadata

resource_modules()  # each resource's module defines its tables on `metadata` as it loads

__all__ = ["metadata"]
