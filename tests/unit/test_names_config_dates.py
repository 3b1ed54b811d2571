"""Index-name rules and resolution, settings precedence, and date parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlsearch.config import Settings
from mlsearch.engine import dates
from mlsearch.engine.date_math import resolve_now
from mlsearch.engine.names import resolve, validate_index_name
from mlsearch.errors import IndexNotFoundError, InvalidIndexNameError


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("Foo", "must be lowercase"),
        ("a*b", "must not contain the following characters"),
        ("_a", "must not start with '_', '-', or '+'"),
        ("..", "must not be '.' or '..'"),
        ("a#b", "'#'"),
        ("x" * 256, "too long"),
    ],
)
def test_invalid_index_names(name: str, why: str) -> None:
    with pytest.raises(InvalidIndexNameError) as caught:
        validate_index_name(name)
    assert why in caught.value.reason
    assert caught.value.error_type == "invalid_index_name_exception"


def test_resolve_lists_wildcards_exclusions_and_aliases() -> None:
    names = ["logs-1", "logs-2", "other", ".hidden"]
    aliases = {"current": ["logs-2"]}
    assert resolve("logs-*", names, aliases) == ["logs-1", "logs-2"]
    assert resolve("logs-*,-logs-1", names, aliases) == ["logs-2"]
    assert resolve("current,other", names, aliases) == ["logs-2", "other"]
    assert resolve("_all", names, aliases) == ["logs-1", "logs-2", "other"]
    assert resolve("nope-*", names, aliases) == []
    with pytest.raises(IndexNotFoundError):
        resolve("missing", names, aliases)
    assert resolve("missing,other", names, aliases, ignore_unavailable=True) == ["other"]


def test_settings_precedence_cli_over_env_over_defaults() -> None:
    env = {"MLSEARCH_PORT": "9300", "MLSEARCH_DATA_DIR": "/srv/x"}
    settings = Settings.load({"port": 0, "host": None}, env=env)
    assert settings.port == 0
    assert settings.data_dir == Path("/srv/x")
    assert settings.host == "127.0.0.1"
    assert Settings.load(env={}).port == 9200


def test_dates_iso_epoch_and_patterns() -> None:
    assert dates.parse("2024-01-02T03:04:05.678Z", None) == 1704164645678
    assert dates.parse("2024-01-02", None) == 1704153600000
    assert dates.parse(1704153600000, None) == 1704153600000
    assert dates.parse("1704153600", "epoch_second") == 1704153600000
    assert dates.parse("2024/01/02 00:00:00", "yyyy/MM/dd HH:mm:ss") == 1704153600000
    assert dates.format_millis(1704164645678) == "2024-01-02T03:04:05.678Z"
    with pytest.raises(ValueError):
        dates.parse("yesterday", None)


def test_date_math_rounds_and_offsets() -> None:
    now = dates.parse("2024-03-15T10:30:00Z", None)
    assert resolve_now("now", now) == now
    assert resolve_now("now-1d/d", now) == dates.parse("2024-03-14", None)
    assert resolve_now("now/M", now) == dates.parse("2024-03-01", None)
    assert resolve_now("now+2h", now) == dates.parse("2024-03-15T12:30:00Z", None)
