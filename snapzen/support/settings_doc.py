"""docs/configuration.md, generated from the settings model and the commented example config
(the page's prose, what is checked at load, is config/configuration-doc.md).

The model gives every setting, its environment variable, type and default; the comments
above each key in config/snapzen.example.toml give what it does (one source for both, so the
two cannot drift: tests/unit/support/test_settings_doc.py regenerates and compares).

    python -m snapzen.support.settings_doc > docs/configuration.md
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from snapzen.support.settings import SECRET_FIELDS, Settings
from snapzen.support.settings_sources import env_name

CONFIG = Path(__file__).resolve().parents[2] / "config"
EXAMPLE = CONFIG / "snapzen.example.toml"
# The page's prose (what is checked at load), above the generated tables.
HEAD = CONFIG / "configuration-doc.md"


def _descriptions(example: Path) -> dict[tuple[str, str], str]:
    """The comment block above each ``key = value`` of the example config."""
    found: dict[tuple[str, str], str] = {}
    section = ""
    comment: list[str] = []
    previous = ""  # the key just above, when no blank line or comment came between
    for raw in example.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        # An optional key shown commented out (`# requests_per_minute = 600`), or a table.
        line = re.sub(r"^#\s*(?=[a-z_]+ = |\[\[)", "", line)
        listed = re.fullmatch(r"\[\[([a-z_]+)\]\]", line)  # an array of tables: its own section
        if listed:
            line = f"[{listed.group(1)}]"
        table = re.fullmatch(r"\[([a-z_]+)\.([a-z_]+)\]", line)
        if table:
            line = f"{table.group(2)} = {{}}"
        header = re.fullmatch(r"\[([a-z_]+)\]", line)
        if header:
            section, comment, previous = header.group(1), [], ""
        elif line.startswith("#"):
            comment.append(line.lstrip("#").strip())
        elif "=" in line and section:
            key = line.split("=", 1)[0].strip()
            text = " ".join(part for part in comment if part)
            # Keys grouped under one comment (subdomain / base_url) share it.
            found[(section, key)] = text or (f"See `{section}.{previous}`." if previous else "")
            comment, previous = [], key
        elif not line:
            comment, previous = [], ""
    return found


def _shown(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, list):
        return ", ".join(_item(v) for v in value) or "(empty)"
    if isinstance(value, dict):
        return "(empty)" if not value else ", ".join(f"{k}={v}" for k, v in value.items())
    text = str(getattr(value, "value", value))
    return text if text else '""'


def _item(value: Any) -> str:
    """A list item; a model (a recipient) as its non-empty fields."""
    if hasattr(value, "model_dump"):
        fields = value.model_dump(mode="json", exclude_defaults=False)
        return "{" + ", ".join(f"{k}={v}" for k, v in fields.items() if v) + "}"
    return str(value)


def _type(annotation: Any) -> str:
    text = re.sub(
        r"\b(typing|pydantic\.types|snapzen\.support\.\w+|pathlib)\.", "", str(annotation)
    )
    return re.sub(r"<class '([^']+)'>", r"\1", text).replace("|", "or")


def render(example: Path = EXAMPLE) -> str:
    notes = _descriptions(example)
    out = [HEAD.read_text(encoding="utf-8")]
    for section, section_field in Settings.model_fields.items():
        model: Any = section_field.annotation
        listed = not hasattr(model, "model_fields")  # a list of tables: [[clients]]
        if listed:
            model = model.__args__[0]
            out += [
                f"## [[{section}]]",
                "",
                f"A list: `[[{section}]]` tables in the file, or `{env_name((section,))}` as a "
                "JSON list of objects with these keys.",
            ]
        else:
            out.append(f"## [{section}]")
        columns = ["key", "type", "default"] if listed else ["setting", "environment variable"]
        columns += ["type", "default", "what it does"] if not listed else ["what it does"]
        out += ["", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        for name, field in model.model_fields.items():
            secret = (section, name) in SECRET_FIELDS  # described on the model: not in the file
            note = field.description if secret else notes.get((section, name))
            extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
            default = str(extra.get("shown_default", ""))  # computed where it runs (a home)
            if secret:
                default = "secret: environment or secrets file"
            elif listed and field.is_required():
                default = "required"
            elif not default:
                default = _shown(field.get_default(call_default_factory=True))
            cells = (
                [f"`{name}`"]
                if listed
                else [f"`{section}.{name}`", f"`{env_name((section, name))}`"]
            )
            cells += [_type(field.annotation), default, (note or "-").replace("|", "\\|")]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    sys.stdout.write(render())
