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

from pydantic_core import to_jsonable_python

from snapzen.support.settings import SECRET_FIELDS, Settings
from snapzen.support.settings_sources import env_name

CONFIG = Path(__file__).resolve().parents[2] / "config"
EXAMPLE = CONFIG / "snapzen.example.toml"
# The page's prose (what is checked at load), above the generated tables.
HEAD = CONFIG / "configuration-doc.md"


def _descriptions(example: Path) -> dict[tuple[str, str], str]:
    """The comment block above each ``key = value`` of the example config, and the comment
    after it on its line."""
    found: dict[tuple[str, str], str] = {}
    section = ""
    comment: list[str] = []
    first = ""  # the first key of a group under one comment (no blank line between)
    for raw in example.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        # An optional key shown commented out (`# requests_per_minute = 600`), or a table.
        line = re.sub(r"^#\s*(?=[a-z_]+ = |\[\[)", "", line)
        table = re.fullmatch(r"\[([a-z_]+)\.([a-z_]+)\]", line)
        if table:
            line = f"{table.group(2)} = {{}}"
        header = re.fullmatch(r"\[\[?([a-z_]+)\]\]?", line)  # [[clients]]: a section too
        if header:
            section, comment, first = header.group(1), [], ""
        elif line.startswith("#"):
            comment.append(line.lstrip("#").strip())
        elif "=" in line and section:
            key, _, value = line.partition("=")
            after = re.search(r"\s#\s+(.*)$", value)  # `key = value  # what it is`
            text = " ".join(part for part in [*comment, after and after[1]] if part)
            key = key.strip()
            # Keys grouped under one comment (subdomain / base_url) point to its first key.
            found[(section, key)] = text or (f"See `{section}.{first}`." if first else "")
            comment, first = [], first if first and not text else key
        elif not line:
            comment, first = [], ""
    return found


def _shown(value: Any) -> str:
    """A default as the table shows it; a model (a recipient) as its non-empty fields."""
    value = to_jsonable_python(value)
    if value in ([], {}):
        return "(empty)"
    if isinstance(value, list):
        return ", ".join(_shown(item) for item in value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={v}" for k, v in value.items() if v) + "}"
    return '""' if value == "" else "(none)" if value is None else str(value)


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
        variable = env_name((section,))
        if listed:
            model = model.__args__[0]
            out += [
                f"## [[{section}]]",
                "",
                f"A list: `[[{section}]]` tables in the file, or `{variable}` as a JSON list of "
                "objects with these keys.",
            ]
        else:
            out.append(f"## [{section}]")
        out += ["", "| setting | environment variable | type | default | what it does |"]
        out.append("|---|---|---|---|---|")
        for name, field in model.model_fields.items():
            secret = (section, name) in SECRET_FIELDS  # described on the model: not in the file
            extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
            default = str(extra.get("shown_default", ""))  # computed where it runs (a home)
            if secret:
                default = "secret: environment or secrets file"
            elif field.is_required():
                default = "required"
            elif not default:
                default = _shown(field.get_default(call_default_factory=True))
            note = (field.description if secret else notes.get((section, name))) or "-"
            cells = [f"`{section}.{name}`", f"`{env_name((section, name))}`"]
            if listed:
                cells = [f"`{section}[].{name}`", f"in `{variable}`"]
            cells += [_type(field.annotation), default, note.replace("|", "\\|")]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    sys.stdout.write(render())
