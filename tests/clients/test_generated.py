"""The clients' typed operations are generated from the API description and checked in:
this fails when they drift from what the app describes (fix: `make client-ops`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_checked_in_operations_match_the_api_description() -> None:
    done = subprocess.run(
        [sys.executable, "clients/generate.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def test_every_operation_of_the_catalog_has_a_typed_method() -> None:
    from carpool_client import Client

    for name in ("get_grommet", "list_widgets", "create_widget", "patch_grommet", "get_supplier"):
        assert callable(getattr(Client, name)), name
    types = (ROOT / "clients/browser/carpool.d.ts").read_text()
    assert "getGrommet(params: { grommet_id: number" in types
    assert "getSupplier(params: { supplier_id: number }" in types


def test_an_enum_used_by_several_models_is_emitted_once_as_a_named_alias() -> None:
    from typing import get_args

    from carpool_client import operations

    module = Path(operations.__file__).read_text()
    types = (ROOT / "clients/browser/carpool.d.ts").read_text()
    assert module.count('"ZW"') == 1 and types.count('"ZW"') == 1
    assert "country: Country" in module and "country?: Country;" in types
    assert "ZW" in get_args(operations.Country) and len(get_args(operations.Country)) > 200
    assert "Country" in operations.__all__
