"""Configuration from the environment: defaults, parsing, and refusals naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from carpool.settings import ConfigurationError, Settings, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No carpool variable set, whatever the environment the suite runs in."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def test_defaults_need_no_environment() -> None:
    settings = load_settings()
    assert settings.database_url is None
    assert settings.data_dir == Path(".data")
    assert settings.db_pool_size == 10
    assert settings.db_max_overflow == 10
    assert settings.db_pool_timeout_s == 10.0
    assert settings.request_max_bytes == 1_048_576
    assert settings.log_level == "INFO"
    assert settings.access_log is False
    assert settings.batch_max_items == 50
    assert settings.batch_timeout_s == 30.0
    assert settings.ws_max_in_flight == 16
    assert settings.ws_max_frame_bytes == 1_048_576
    assert settings.seed_demo_data is True


def test_values_are_read_and_parsed_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://u:p@db.example:5433/carpool")
    monkeypatch.setenv("DATA_DIR", "/var/lib/carpool")
    monkeypatch.setenv("DB_POOL_SIZE", "25")
    monkeypatch.setenv("db_max_overflow", "0")  # names are case-insensitive
    monkeypatch.setenv("DB_POOL_TIMEOUT_S", "2.5")
    monkeypatch.setenv("REQUEST_MAX_BYTES", "4096")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    monkeypatch.setenv("ACCESS_LOG", "true")
    monkeypatch.setenv("BATCH_MAX_ITEMS", "7")
    monkeypatch.setenv("SEED_DEMO_DATA", "0")
    settings = load_settings()
    assert settings.database_url == "postgresql+asyncpg://u:p@db.example:5433/carpool"
    assert settings.data_dir == Path("/var/lib/carpool")
    assert settings.db_pool_size == 25
    assert settings.db_max_overflow == 0
    assert settings.db_pool_timeout_s == 2.5
    assert settings.request_max_bytes == 4096
    assert settings.log_level == "DEBUG"
    assert settings.access_log is True
    assert settings.batch_max_items == 7
    assert settings.seed_demo_data is False


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@h:5432/d", "postgresql+asyncpg://u:p@h:5432/d"),
        ("postgres://u@h/d?sslmode=require", "postgresql+asyncpg://u@h/d?sslmode=require"),
        ("postgresql+asyncpg://u@h/d", "postgresql+asyncpg://u@h/d"),
        ("", None),
    ],
)
def test_database_urls_are_spelled_for_asyncpg(
    monkeypatch: pytest.MonkeyPatch, given: str, expected: str | None
) -> None:
    monkeypatch.setenv("DATABASE_URL", given)
    assert load_settings().database_url == expected


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DB_POOL_SIZE", "0"),
        ("DB_POOL_SIZE", "ten"),
        ("DB_MAX_OVERFLOW", "-1"),
        ("DB_POOL_TIMEOUT_S", "0"),
        ("DATABASE_URL", "mysql://x"),
        ("DATABASE_URL", "postgresql+psycopg://u@h/d"),
        ("REQUEST_MAX_BYTES", "10"),
        ("LOG_LEVEL", "loud"),
        ("ACCESS_LOG", "maybe"),
        ("BATCH_MAX_ITEMS", "0"),
        ("WS_MAX_IN_FLIGHT", "1.5"),
    ],
)
def test_a_bad_value_fails_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"invalid configuration: {name}: "), message
    assert caught.value.__cause__ is None  # no pydantic traceback chained onto the message


def test_every_bad_variable_is_named_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_POOL_SIZE", "0")
    monkeypatch.setenv("DATABASE_URL", "mysql://x")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert "DB_POOL_SIZE: " in str(caught.value) and "DATABASE_URL: " in str(caught.value)


def test_unrelated_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARPOOL_SOMETHING_ELSE", "x")
    monkeypatch.setenv("PATH_EXTRA", "y")
    assert load_settings() == Settings()
