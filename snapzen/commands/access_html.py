"""The person's copy of an access pack: one static HTML page, no script, no external asset.

Written for the person, in sentences (snapzen.commands.access_text turns the ledger's codes
into words; subject.json keeps the codes). It prints on A4: ``@page`` sets the paper, tables
take the page's width with no fixed column widths, and long words (URLs, user agents) wrap.
Everything from the pack is escaped (transcripts are whatever was typed into a chat)."""

from __future__ import annotations

from html import escape
from typing import Any

from snapzen.commands import access_text as words
from snapzen.commands import controllers

_STYLE = (
    "@page{size:A4;margin:15mm}"
    "*{box-sizing:border-box}"
    "body{font-family:sans-serif;line-height:1.4;max-width:60rem;margin:0 auto;padding:1rem;"
    "overflow-wrap:anywhere;word-break:break-word}"
    "@media print{body{max-width:none;padding:0}h2,h3{break-after:avoid}}"
    "table{border-collapse:collapse;width:100%;table-layout:fixed}"
    "td,th{border:1px solid #ccc;padding:.3rem;text-align:left;vertical-align:top;"
    "overflow-wrap:anywhere;word-break:break-word}"
    "th{width:30%}"
    "pre{white-space:pre-wrap;overflow-wrap:anywhere;word-break:break-word;font-family:inherit}"
)


def _e(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return escape(", ".join(_plain(v) for v in value))
    return escape(_plain(value))


def _plain(value: Any) -> str:
    if isinstance(value, dict):
        if {"name", "value"} <= set(value):
            return f"{value['name']}: {value['value']}"
        return "; ".join(f"{k.replace('_', ' ')}: {_plain(v)}" for k, v in value.items() if v)
    if isinstance(value, list):
        return ", ".join(_plain(v) for v in value)
    return "" if value is None else str(value)


def _list(items: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>" if items else ""


def _recipient(r: dict[str, Any], info: dict[str, Any]) -> str:
    name, where = _e(r["name"]), ""
    if r.get("country"):
        where = f" in {_e(words.country_name(r['country']))}"
    if r.get("system") == "snapengage":
        days = info.get("snapengage_retention_days")
        return (
            f"{name}{where}, the chat service you used: it receives every chat first and "
            f"keeps it for {_e(days)} days after it started, then deletes it."
        )
    if r.get("basis"):
        how = words.basis_sentence(r["basis"], r.get("mechanism"))
    else:
        how = "without sending your data outside the area where the law protects it"
    role = "keeps our support tickets (the archive of your chats)"
    if r.get("system") == "other":
        role = "helps us process your data"
    return f"{name}{where} {role}; your data goes there {_e(how)}."


def _who(info: dict[str, Any], parties: list[dict[str, Any]], dpo: str) -> str:
    """Who decides (the controller of each group of chats) and who answers."""
    if not any(p.get("processor") for p in parties):
        return (
            f"<h2>Who we are</h2><p>{_e(info.get('controller'))} decides how your data is used "
            f"(the controller). You can reach us at {_e(info.get('contact'))}.{dpo}</p>"
        )
    items = []
    for party in parties:
        chats = ", ".join(str(c) for c in party.get("case_ids") or [])
        entry = controllers.Controller(
            str(party["controller"]), str(party.get("contact") or ""), party.get("processor")
        )
        scope = f" Your chats concerned: {_e(chats)}." if chats and len(parties) > 1 else ""
        items.append(f"{_e(controllers.sentence(entry))}{scope}")
    return f"<h2>Who is responsible for your data</h2>{_list(items)}" + (
        f"<p>{dpo.strip()}</p>" if dpo else ""
    )


def _about(info: dict[str, Any], parties: list[dict[str, Any]] | None = None) -> str:
    dpo = f" Our data protection officer: {_e(info['dpo'])}." if info.get("dpo") else ""
    purposes = _list([_e(p) for p in info.get("purposes") or []])
    kinds = _list([_e(words.CATEGORIES.get(c, "")) for c in info["data_categories"]])
    recipients = _list([_recipient(r, info) for r in info.get("recipients_detail") or []])
    written = info.get("safeguards_written")  # the operator's own words, if any
    safeguards = f"<p>How transfers abroad are protected: {_e(written)}.</p>" if written else ""
    return (
        _who(info, parties or [], dpo) + f"<h2>Why we keep your data</h2>{purposes}"
        f"<p>The law that allows it: {_e(info.get('lawful_basis'))}.</p>"
        f"<h2>What we keep</h2>{kinds}"
        f"<p>Where it comes from: {_e(info.get('source'))}.</p>"
        f"<h2>Who has your data, and where</h2>{recipients}{safeguards}"
        f"<h2>How long we keep it</h2><p>{_e(info.get('retention'))}.</p>"
        f"<p>{_e(info.get('automated_decisions'))}</p>"
    )


def _snapengage_copy(copy: dict[str, Any]) -> str:
    rows = []
    for key, value in copy.items():
        if key == "transcripts" and isinstance(value, list):
            lines = "\n".join(
                f"{_plain(t.get('alias') or '')}: {_plain(t.get('message'))}"
                for t in value
                if isinstance(t, dict)
            )
            text = f"<pre>{escape(lines)}</pre>"
        else:
            text = _e(value)
        if text:
            rows.append(f"<tr><th>{escape(words.field_label(key))}</th><td>{text}</td></tr>")
    return "<table>" + "".join(rows) + "</table>"


def _chat(chat: dict[str, Any], ledger: list[dict[str, Any]]) -> str:
    started = _e(words.moment(chat.get("started_at")))
    what = words.status_sentence(chat.get("status"))
    if chat.get("reason") and chat.get("status") in ("withheld", "ignored"):
        what = words.reason_sentence(chat.get("reason"))
    events = [
        f"{_e(words.day(r.get('recorded_at')))}: {_e(words.event_sentence(r))}"
        for r in ledger
        if r.get("case_id") == chat.get("case_id")
    ]
    state = chat.get("snapengage_copy_state")
    held = words.COPY_STATES.get(str(state), "").format(
        until=_e(words.day(chat.get("snapengage_deletes_on")))
    )
    copy = chat.get("snapengage_copy")
    return (
        f"<h3>Chat started {started} (SnapEngage reference {_e(chat.get('case_id'))})</h3>"
        f"<p>This chat was {_e(what)}.</p>{_list(events)}"
        + (f"<p>{held}</p>" if held else "")
        + (_snapengage_copy(copy) if isinstance(copy, dict) else "")
    )


def _ticket(ticket: dict[str, Any]) -> str:
    title = f"Ticket {_e(ticket.get('ticket_id'))}"
    if ticket.get("subject"):
        title += f": {_e(ticket.get('subject'))}"
    state = _e(words.ticket_state_sentence(ticket))
    if ticket.get("state") != "present":
        return f"<h3>{title}</h3><p>{state}</p>"
    lines = "\n".join(
        f"[{_plain(c.get('created_at'))}] {_plain(c.get('body'))}"
        for c in ticket.get("transcript") or []
    )
    created = _e(words.moment(ticket.get("created_at")))
    return (
        f"<h3>{title}</h3><p>{state} Created {created}; its status in Zendesk: "
        f"{_e(ticket.get('status'))}.</p><pre>{escape(lines)}</pre>"
    )


def _rights(info: dict[str, Any], parties: list[dict[str, Any]] | None = None) -> str:
    clients = [
        f"For the chats {_e(', '.join(str(c) for c in p.get('case_ids') or []))}, you may "
        f"also write to {_e(p['controller'])}, their controller, at {_e(p.get('contact'))}."
        for p in parties or []
        if p.get("processor")
    ]
    return (
        "<h2>What you can do</h2>"
        f"<p>{_e(info.get('rights'))}</p>"
        "<p>You may ask us to correct anything wrong, to erase your data, to restrict what we "
        "do with it, or object to it; you may also ask again for a copy. Write to "
        f"{_e(info.get('contact'))}.</p>"
        + "".join(f"<p>{line}</p>" for line in clients)
        + f"<p>{_e(info.get('complaint'))} The regulator: {_e(info.get('regulator'))}.</p>"
    )


def _forgotten(summary: dict[str, Any] | None) -> str:
    """What we no longer hold (the retention sweep forgot it), in the sweep's own sentences."""
    if not summary:
        return ""
    return f"<h2>What we no longer hold</h2><p>{_e(summary.get('explanation'))}</p>"


def render_html(pack: dict[str, Any]) -> str:
    info = pack.get("information") or {}
    parties = pack.get("controllers") or []
    held_by = (
        " and ".join(str(p["controller"]) for p in parties)
        if any(p.get("processor") for p in parties)
        else info.get("controller")
    )
    ledger = pack.get("ledger") or []
    chats = pack.get("chats") or []
    chat_ids = {c.get("case_id") for c in chats}
    tickets = "".join(_ticket(t) for t in pack.get("tickets") or []) or "<p>None.</p>"
    other = [
        f"{_e(words.day(r.get('recorded_at')))}: {_e(words.event_sentence(r))}"
        for r in ledger
        if r.get("case_id") not in chat_ids
    ]
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Your data</title><style>{_STYLE}</style></head><body>"
        f"<h1>Your personal data held by {_e(held_by)}</h1>"
        f"<p>This is the copy of your personal data you asked for, prepared on "
        f"{_e(words.day(pack.get('generated_at')))}. The file subject.json that comes with "
        "it holds the same data in a form a computer can read, which you may give to "
        "another organisation.</p>"
        f"{_about(info, parties)}"
        "<h2>Your chats</h2>"
        + ("".join(_chat(c, ledger) for c in chats) or "<p>None.</p>")
        + f"<h2>Your tickets and their messages</h2>{tickets}"
        "<h2>Other records about you</h2>"
        + (_list(other) or "<p>None.</p>")
        + _forgotten(pack.get("forgotten"))
        + _rights(info, parties)
        + "</body></html>\n"
    )
