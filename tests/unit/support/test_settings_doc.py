"""docs/configuration.md is generated from the settings model: every setting is in it, and
it is regenerated whenever a setting or its comment in the example config changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from snapzen.support.settings import Settings
from snapzen.support.settings_doc import render

DOC = Path(__file__).resolve().parents[3] / "docs" / "configuration.md"


def test_the_doc_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), (
        "regenerate: python -m snapzen.support.settings_doc > docs/configuration.md"
    )


def test_every_setting_is_described() -> None:
    text = render()
    for section, field in Settings.model_fields.items():
        model: Any = field.annotation
        listed = not hasattr(model, "model_fields")  # [[clients]]: a list of tables
        for name in (model.__args__[0] if listed else model).model_fields:
            setting = f"{section}[].{name}" if listed else f"{section}.{name}"
            row = next(line for line in text.splitlines() if line.startswith(f"| `{setting}` |"))
            variable = f"in `SNAPZEN_{section.upper()}`" if listed else f"SNAPZEN_{section.upper()}"
            assert variable + ("" if listed else f"__{name.upper()}") in row
            assert not row.endswith("| - |"), f"{section}.{name} has no description"
