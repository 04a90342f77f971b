"""The shipped example config must load, and must mention every setting (docs stay honest)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from snapzen.support.errors import ConfigError
from snapzen.support.settings import Settings, load_settings

EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "snapzen.example.toml"


def test_example_config_loads() -> None:
    settings = load_settings(EXAMPLE)
    assert settings.zendesk.batch_size == 100


def test_example_config_documents_every_setting() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    parsed = tomllib.loads(text)
    for section, model in Settings.model_fields.items():
        assert f"[{section}]" in text, section
        sub_model = model.annotation
        if not hasattr(sub_model, "model_fields"):  # a list of tables: [[clients]]
            sub_model = sub_model.__args__[0]  # type: ignore[union-attr]
        for name in sub_model.model_fields:  # type: ignore[union-attr]
            mentioned = name in parsed.get(section, {}) or f"{name} =" in text or name in text
            assert mentioned, f"{section}.{name} is not documented in {EXAMPLE.name}"


def test_a_copied_example_refuses_to_start_until_controller_country_is_decided(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The most important legal setting is never decided by a shipped value."""
    assert 'controller_country = ""' in EXAMPLE.read_text(encoding="utf-8")
    monkeypatch.delenv("SNAPZEN_TRANSFER__CONTROLLER_COUNTRY")
    with pytest.raises(ConfigError) as caught:
        load_settings(EXAMPLE)
    assert str(caught.value).startswith(
        f"setting transfer.controller_country in {EXAMPLE}: is required"
    )
    monkeypatch.setenv("SNAPZEN_TRANSFER__CONTROLLER_COUNTRY", "GB")
    assert load_settings(EXAMPLE).transfer.controller_country == "GB"
