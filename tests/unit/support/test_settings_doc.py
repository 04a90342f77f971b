"""docs/configuration.md is generated from the settings model: every setting is in it, and
it is regenerated whenever a setting or its comment in the example config changes."""

from __future__ import annotations

from pathlib import Path

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
        if not hasattr(field.annotation, "model_fields"):  # [[clients]]: a list of tables
            keys = field.annotation.__args__[0].model_fields  # type: ignore[union-attr]
            rows = [line for line in text.splitlines() if line.startswith("| `")]
            for name in keys:
                row = next(line for line in rows if line.startswith(f"| `{name}` |"))
                assert not row.endswith("| - |"), f"{section}.{name} has no description"
            continue
        for name in field.annotation.model_fields:  # type: ignore[union-attr]
            row = next(
                line for line in text.splitlines() if line.startswith(f"| `{section}.{name}`")
            )
            assert f"SNAPZEN_{section.upper()}__{name.upper()}" in row
            assert not row.endswith("| - |"), f"{section}.{name} has no description"
