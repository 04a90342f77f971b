"""The shipped example config must load, and must mention every setting (docs stay honest)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from snapzen.support.settings import Settings, load_settings

EXAMPLE = Path(__file__).parent.parent / "config" / "snapzen.example.toml"


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
