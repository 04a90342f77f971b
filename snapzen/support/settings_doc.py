"""docs/configuration.md, generated from the settings model and the commented example config.

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

from snapzen.support.setting_checks import env_name
from snapzen.support.settings import SECRET_FIELDS, Settings

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "snapzen.example.toml"

SECRET_NOTES = {
    ("snapengage", "api_token"): "SnapEngage API token (Admin Dashboard → My Account → API "
    "Token). Required for sync.",
    ("zendesk", "api_token"): "Zendesk API token, with zendesk.email. Zendesk deactivates all "
    "API tokens on 2027-04-30: prefer OAuth.",
    ("zendesk", "oauth_access_token"): "A static Zendesk OAuth access token.",
    ("zendesk", "oauth_client_secret"): "OAuth client secret, with zendesk.oauth_client_id "
    "(tokens renewed automatically).",
    ("ledger", "key"): "HMAC key of the ledger (subject references, checkpoints): at least 16 "
    "characters, kept safe; losing it makes subject lookups impossible.",
}

# Settings the example config lists without a comment of their own.
PLAIN_NOTES = {
    ("http", "timeout_seconds"): "Seconds to wait for an answer to one HTTP request.",
}

CHECKS = """\
## What is checked at load

Every problem is reported in one run, one line each, named as you gave it: the file key
(`zendesk.subdomian in prod.toml`), the environment variable (`SNAPZEN_ZENDESK__SUBDOMIAN`),
or the secrets file (`secrets file /run/secrets/snapzen_zendesk__api_token`), with a "did you
mean" when a known name is close. A required setting given nowhere is named with the ways to
give it: its variable, the file key, or for a secret the file looked for in the secrets
directory (and that the directory does not exist, when it does not). snapzen then exits 2
before any network call.

- The config file: `--config FILE`, before or after the command, wins over `SNAPZEN_CONFIG`;
  a missing, unreadable or invalid file named either way exits 2 naming it.
- Unknown keys, in the file or as `SNAPZEN_<SECTION>__<KEY>` variables (an unknown section in
  the environment too).
- `transfer.controller_country` is required by every command that decides or sends: the
  example config leaves it empty, so a copied file refuses to start until someone decides it.
- `sync`, `run` and `backfill` also need `snapengage.org_id`, `snapengage.api_token`,
  `snapengage.widgets`, `zendesk.subdomain` (or `zendesk.base_url`), Zendesk credentials and
  `ledger.key` (at least 16 characters): every one missing is listed in the same run.
- The read-only evidence commands (`ledger verify`, `list`, `export`, `report`, `subject`,
  `serve`) need only the `[ledger]` settings (and `ledger.key` where a subject is looked up):
  problems in other sections do not stop them (docs/auditing.md).
- `zendesk.subdomain` is the subdomain only: `acme`, not `acme.zendesk.com` (the message
  gives the fix); a host of your own goes in `zendesk.base_url`.
- `zendesk.email` must be an email address (its shape; no DNS lookup).
- `snapengage.widgets`: widget ids (UUIDs from the SnapEngage Get the Code tab; letters,
  digits, `-` and `_`), each listed once.
- `transfer.controller_country` is required. Each of `transfer.recipients` must have a basis
  that holds under the regime: `adequacy` only for a country on the shipped UK or EU adequacy
  list (with `certification` and `checked_on` where the list is partial, as for the US),
  `safeguards` with an instrument valid under the regime, its `reference` and `tra_date`;
  exactly one recipient has `system = "zendesk"`. The message names the fix.
- The old transfer keys of `[consent]` (`controller_country`, `destination_country`,
  `recipient`, `safeguards`, `mechanism`, `mechanism_ref`, `restricted_countries`,
  `contract_widgets`) fail saying where each went.
- `consent.notices`: each value a SHA-256 hex digest.
- `pipeline.deadline_days` must be below `snapengage.retention_days`: the at-risk warning has
  to come before SnapEngage deletes the chat.
- Secrets sent in an HTTP header (the API tokens, OAuth token and secret) must not contain a
  byte-order mark, a line break, a control character or characters outside Latin-1: such a
  value is refused naming the setting (never showing the value). A secret *file* may end
  with a newline and start with a BOM (editors add them): both are stripped.
- Secrets are never accepted from the config file.
"""


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
    text = str(annotation)
    for noise in ("typing.", "pydantic.types.", "snapzen.support.settings.",
                  "snapzen.support.settings_gdpr.",
                  "snapzen.support.settings_transfer.", "pathlib."):  # fmt: skip
        text = text.replace(noise, "")
    return re.sub(r"<class '([^']+)'>", r"\1", text).replace("|", "or")


def render(example: Path = EXAMPLE) -> str:
    notes = _descriptions(example)
    out = [
        "# Configuration",
        "",
        "<!-- Generated by `python -m snapzen.support.settings_doc`; edit the comments in",
        "config/snapzen.example.toml or the settings model instead. -->",
        "",
        "snapzen reads a TOML file (`snapzen --config FILE COMMAND`, or `SNAPZEN_CONFIG`), then",
        "environment variables `SNAPZEN_<SECTION>__<KEY>`, which win. Secrets come only from the",
        "environment or from files in `/run/secrets` (or `SNAPZEN_SECRETS_DIR`), one per secret,",
        "named like the variable in lower case (`snapzen_zendesk__api_token`). Lists can be",
        "given in the environment as JSON or comma-separated.",
        "",
        "Start from `config/snapzen.example.toml`, which lists every setting with its default.",
        "",
        CHECKS,
    ]
    for section, section_field in Settings.model_fields.items():
        model: Any = section_field.annotation
        if not hasattr(model, "model_fields"):  # a list of tables: [[clients]]
            out += _list_section(section, model.__args__[0], notes)
            continue
        out += [f"## [{section}]", "", "| setting | environment variable | type | default | "
                "what it does |", "|---|---|---|---|---|"]  # fmt: skip
        for name, field in model.model_fields.items():
            secret = (section, name) in SECRET_FIELDS
            note = (SECRET_NOTES if secret else notes).get((section, name)) or PLAIN_NOTES.get(
                (section, name)
            )
            default = "secret: environment or secrets file" if secret else _shown(
                field.get_default(call_default_factory=True)
            )  # fmt: skip
            extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
            if "shown_default" in extra:  # a default computed where it runs (a home directory)
                default = str(extra["shown_default"])
            cells = [
                f"`{section}.{name}`",
                f"`{env_name((section, name))}`",
                _type(field.annotation),
                default,
                (note or "-").replace("|", "\\|"),
            ]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def _list_section(section: str, model: Any, notes: dict[tuple[str, str], str]) -> list[str]:
    """An array of tables (`[[clients]]`): one table of its keys; the environment gives the
    whole list as JSON."""
    out = [
        f"## [[{section}]]",
        "",
        f"A list: `[[{section}]]` tables in the file, or `{env_name((section,)).rstrip('_')}` "
        "as a JSON list of objects with these keys.",
        "",
        "| key | type | default | what it does |",
        "|---|---|---|---|",
    ]
    for name, field in model.model_fields.items():
        if name.startswith("_"):
            continue
        default = "required" if field.is_required() else _shown(
            field.get_default(call_default_factory=True)
        )  # fmt: skip
        note = (notes.get((section, name)) or "-").replace("|", "\\|")
        out.append(f"| `{name}` | {_type(field.annotation)} | {default} | {note} |")
    out.append("")
    return out


if __name__ == "__main__":
    sys.stdout.write(render())
