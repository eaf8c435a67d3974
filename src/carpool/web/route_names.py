"""Route templates, for the web layer: `carpool.route_names` (a module below every layer,
so that observability can name routes without importing `web`)."""

from __future__ import annotations

from carpool.route_names import path_parameters, route_of, template

__all__ = ["path_parameters", "route_of", "template"]
