"""The person's copy of an access pack: one static HTML page, no script, no external asset.

Everything from the pack is escaped (transcripts are whatever was typed into a chat)."""

from __future__ import annotations

from html import escape
from typing import Any

_STYLE = (
    "body{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
    "table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.3rem;"
    "text-align:left;vertical-align:top}pre{white-space:pre-wrap}"
)
_INFO_LABELS = (
    ("controller", "Controller"),
    ("dpo", "Data protection officer"),
    ("purposes", "Purposes (Art. 15(1)(a))"),
    ("data_categories", "Categories of data (b)"),
    ("recipients", "Recipients (c)"),
    ("third_country", "Country of Zendesk, which holds the transcripts (c)"),
    ("third_countries", "Countries of all recipients (c)"),
    ("safeguards", "Safeguards for the transfer (Art. 15(2))"),
    ("retention", "Storage period (d)"),
    ("rights", "Your rights (e)"),
    ("complaint", "Complaint (f)"),
    ("source", "Source of the data (g)"),
    ("automated_decisions", "Automated decisions (h)"),
)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in sorted(value.items()))
    return str(value)


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    if not rows:
        return "<p>None.</p>"
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(_text(r.get(c)))}</td>" for c in columns) + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _ticket(ticket: dict[str, Any]) -> str:
    title = f"Ticket {ticket['ticket_id']}"
    state = ticket.get("state")
    if state == "deleted":
        return (
            f"<h3>{escape(title)}</h3><p>Deleted on {escape(_text(ticket.get('deleted_on')))} "
            f"({escape(_text(ticket.get('deleted_because')))}).</p>"
        )
    if state != "present":
        return f"<h3>{escape(title)}</h3><p>{escape(_text(state))}.</p>"
    lines = "\n".join(
        f"[{_text(c.get('created_at'))}] {_text(c.get('body'))}"
        for c in ticket.get("transcript") or []
    )
    return (
        f"<h3>{escape(title)}: {escape(_text(ticket.get('subject')))}</h3>"
        f"<p>Created {escape(_text(ticket.get('created_at')))}, status "
        f"{escape(_text(ticket.get('status')))}.</p><pre>{escape(lines)}</pre>"
    )


def render_html(pack: dict[str, Any]) -> str:
    info = pack.get("information") or {}
    info_rows = "".join(
        f"<tr><th>{escape(label)}</th><td>{escape(_text(info.get(key)))}</td></tr>"
        for key, label in _INFO_LABELS
    )
    tickets = "".join(_ticket(t) for t in pack.get("tickets") or []) or "<p>None.</p>"
    chats = _table(
        pack.get("chats") or [],
        ["case_id", "started_at", "status", "reason", "ticket_id", "snapengage_deletes_on"],
    )
    ledger = _table(
        pack.get("ledger") or [],
        ["seq", "event", "transferred_at", "recipient", "destination_country", "legal_basis",
         "mechanism_ref", "ticket_id", "retention_until", "details"],
    )  # fmt: skip
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Your data</title><style>{_STYLE}</style></head><body>"
        "<h1>Your personal data</h1>"
        f"<p>Generated {escape(_text(pack.get('generated_at')))}; request "
        f"{escape(_text(pack.get('request_id')))}. A machine-readable copy (subject.json) "
        "comes with this page.</p>"
        f"<h2>About the processing</h2><table>{info_rows}</table>"
        f"<h2>Your tickets and transcripts</h2>{tickets}"
        "<h2>Your chats and what we decided about them</h2>"
        "<p>Chats not sent are listed with the reason; SnapEngage deletes each chat it still "
        f"holds on the day shown.</p>{chats}"
        f"<h2>Records of transfers and requests</h2>{ledger}"
        "</body></html>\n"
    )
