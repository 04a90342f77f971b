"""The person's copy of an access pack: one static HTML page, no script, no external asset.

Written for the person, in sentences (snapzen.commands.access_text turns the ledger's codes
into words; subject.json keeps the codes), from the Jinja2 template
``templates/access_pack.html``. It prints on A4: ``@page`` sets the paper, tables take the
page's width with no fixed column widths, and long words (URLs, user agents) wrap. Autoescape
is on: everything from the pack is escaped (transcripts are whatever was typed into a chat)."""

from __future__ import annotations

from typing import Any

from snapzen.commands import access_text as words
from snapzen.commands import controllers
from snapzen.commands.templates import TEMPLATES


def _plain(value: Any) -> str:
    if isinstance(value, dict):
        if {"name", "value"} <= set(value):
            return f"{value['name']}: {value['value']}"
        return "; ".join(f"{k.replace('_', ' ')}: {_plain(v)}" for k, v in value.items() if v)
    if isinstance(value, list):
        return ", ".join(_plain(v) for v in value)
    return "" if value is None else str(value)


def _snapengage_rows(copy: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(label, text, preformatted) of each field of SnapEngage's copy of a chat."""
    rows = []
    for key, value in copy.items():
        if key == "transcripts" and isinstance(value, list):
            lines = [
                f"{_plain(t.get('alias'))}: {_plain(t.get('message'))}"
                for t in value
                if isinstance(t, dict)
            ]
            rows.append((words.field_label(key), "\n".join(lines), True))
        elif _plain(value):
            rows.append((words.field_label(key), _plain(value), False))
    return rows


def _controller_sentence(party: dict[str, Any]) -> str:
    entry = controllers.Controller(
        str(party["controller"]), str(party.get("contact") or ""), party.get("processor")
    )
    return controllers.sentence(entry)


TEMPLATES.filters.update(
    plain=_plain,
    category=lambda code: words.CATEGORIES.get(code, ""),
    record=lambda r: f"{words.day(r.get('recorded_at'))}: {words.event_sentence(r)}",
    comment=lambda c: f"[{_plain(c.get('created_at'))}] {_plain(c.get('body'))}",
)
_WORDS = "day moment country_name basis_sentence reason_sentence status_sentence field_label"
TEMPLATES.globals.update(
    {name: getattr(words, name) for name in (*_WORDS.split(), "ticket_state_sentence")},
    copy_states=words.COPY_STATES,
    snapengage_rows=_snapengage_rows,
    controller_sentence=_controller_sentence,
)


def render_html(pack: dict[str, Any]) -> str:
    return TEMPLATES.get_template("access_pack.html").render(
        pack=pack,
        info=pack.get("information") or {},
        parties=pack.get("controllers") or [],
        ledger=pack.get("ledger") or [],
    )
