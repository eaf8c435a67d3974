"""The catalog: one module (or package) per resource, each defining its tables on
`tables.metadata` and its routes on a `blueprint`; every one found here is served.

A new resource is a new module here: nothing else in the package lists it.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from sanic import Blueprint


def resource_modules() -> list[ModuleType]:
    """Every module of the catalog that serves routes (a `blueprint`), by name."""
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if isinstance(getattr(module, "blueprint", None), Blueprint):
            found.append(module)
    return found


def blueprints() -> list[Blueprint]:
    """The routes of every resource of the catalog."""
    return [module.blueprint for module in resource_modules()]
