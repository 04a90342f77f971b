"""The person's copy of an access pack (subject.html): plain sentences, and the page.

The ledger speaks in codes (``art49_1a``, ``synced``, ``consent_refused``); subject.json keeps
them, the page the person reads says what they mean. Every code the ledger can hold has its
sentence here: tests/unit/commands/test_access_text.py collects the codes from the source and
fails when one is missing. Pure functions, no I/O.

The page is one static HTML page, no script, no external asset, rendered from the Jinja2
template ``templates/access_pack.html``. It prints on A4: ``@page`` sets the paper, tables
take the page's width with no fixed column widths, and long words (URLs, user agents) wrap.
Autoescape is on: everything from the pack is escaped (transcripts are whatever was typed
into a chat).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pycountry

from snapzen.commands import controllers
from snapzen.commands.templates import TEMPLATES
from snapzen.ledger.evidence.events import Event

# Where a recipient is, by pycountry's names; these read with an article ("the United States").
_THE = {"AE", "BS", "DO", "GB", "GM", "IM", "MV", "NL", "PH", "US"}

# The basis of a transfer (policy.models.LegalBasis), as the end of "sent to X in Y ...".
BASES = {
    "art45": "under {instrument}: the law there is recognised as protecting your data as "
    "well as ours (adequacy)",
    "art46": "under {instrument}: a contract that binds the recipient to protect your data "
    "(standard data protection clauses)",
    "art49_1a": "because you explicitly agreed to it in the chat, after being told of the risks",
    "art49_1b": "because it was needed for the contract between you and us",
    # A recipient's configured basis (commands.access_info): per chat, one of the two above.
    "art49": "only for a chat in which you explicitly agreed to it, or where it was needed "
    "for the contract between you and us",
    "not_restricted": "without a transfer abroad that needs special protection (it stays "
    "where the law already protects it)",
}

# A chat's status in the outbox (ledger.store.case_status.CaseStatus).
STATUSES = {
    "pending": "not sent yet; it is waiting to be processed",
    "pushing": "being sent at this moment",
    "synced": "sent to our support system",
    "withheld": "not sent, and it never will be",
    "failed": "not sent yet: the last attempt did not succeed and it will be tried again",
    "ignored": "not sent: we do not archive this kind of conversation",
}

# Why a chat was withheld, not restricted, or ignored (the ``reason`` of a decision).
REASONS = {
    "consent_refused": "withheld because you declined to have it sent abroad",
    "no_consent_recorded": "withheld because you were not asked, or did not answer, whether "
    "it could be sent abroad",
    "consent_value_not_accepted": "withheld because your answer was not a clear yes",
    "consent_without_evidence": "withheld because we could not show when and how you agreed",
    "notice_version_not_listed": "withheld because we could not show which notice you were "
    "shown when you agreed",
    "erased_art17": "withheld because you asked us to erase your data",
    "controller_and_visitor_outside_area": "sent without a restricted transfer: neither you "
    "nor we are in the UK or the European Economic Area",
    "destination_in_area": "sent without a restricted transfer: it stays where the law "
    "already protects it",
}
# Reasons built from a pattern: ``type_<kind>_not_synced`` and ``dismissed: <text>``.
TYPE_REASON = re.compile(r"^type_[a-z0-9_]*_not_synced$")
TYPE_SENTENCE = "not sent: we do not archive this kind of conversation (for example an "
"offline message)"
DISMISSED_SENTENCE = "not sent: our staff set it aside after it could not be sent"

# Why an erasure event was recorded (its details.reason, cli ERASE_REASONS).
ERASE_REASONS = {
    "art17_request": "because you asked us to erase it",
    "consent_withdrawn": "because you withdrew your consent",
    "objection": "because you objected to the processing",
    "erased_art17": "because you asked us to erase it",
}

# Ledger events: what each record about you means. ``{ticket}`` / ``{recipient}`` filled in.
EVENTS: dict[str, str] = {
    Event.TRANSFER: "Your chat was sent to {recipient} in {country}, {basis}.",
    Event.SENT: "Your chat was sent to {recipient}.",
    Event.ADOPTED: "A ticket that already held your chat was recorded as ours.",
    Event.WITHHELD: "Decision recorded: your chat was {reason}.",
    Event.IGNORED: "Decision recorded: your chat was {reason}.",
    Event.DISMISSED: "Your chat was not sent: our staff set it aside after it could not be sent.",
    Event.FAILED: "Your chat could not be sent and will not be tried again.",
    Event.ERASED: "Your ticket {ticket} was deleted {erase_reason}.",
    Event.EXPIRED: "Your ticket {ticket} was deleted because the time we keep it had ended.",
    Event.RESTORED: "Our records were restored from a backup; your earlier erasure was applied "
    "again.",
    Event.RUN: "A routine run of our archiving tool.",
    Event.REQUEST: "Your request ({kind}) was recorded.",
    Event.REQUEST_PAUSED: "We paused the time limit for your request ({kind}) while we asked you "
    "{pause_reason}.",
    Event.REQUEST_RESUMED: "The time limit for your request ({kind}) started again; the days it "
    "was paused were added to it.",
    Event.REQUEST_EXTENDED: "We extended the time limit for your request ({kind}) by {months} "
    "month(s), and told you why.",
    Event.HOLD_ADDED: "Your data was kept beyond its usual time because of a legal claim.",
    Event.HOLD_REMOVED: "The legal hold on your data was lifted.",
    Event.ACCESS_PROVIDED: "A copy of your data was prepared for you.",
    Event.RECIPIENT_NOTICE: "{notice}",
    Event.CASE_FLAGGED: "One of your chats was set aside for our staff to check by hand before "
    "anything more is done with it.",
    Event.CASE_FLAG_RESOLVED: "Our staff's check of your chat by hand was completed.",
    Event.LEDGER_BOUND: "Our records were sealed with their key (a technical record).",
    Event.OPERATOR_STATEMENT: "Our staff recorded a statement about the erasure records.",
    Event.RECONCILED: "A routine check of our records against the ticket system.",
    Event.PERIOD_FORGOTTEN: "At the end of their retention, our records of a month of chats "
    "were made anonymous: they can no longer be linked to anyone.",
}

# Art. 19: whether a recipient was told of an erasure (ledger.notices, details.status).
NOTICES = {
    "notified": "{recipient} was told of your erasure: we deleted your data there ourselves.",
    "to_notify": "{recipient} must still be asked by us to delete your data; we recorded "
    "that we owe it this notice.",
    # A ``notified`` event that closes a ``to_notify`` one (`ledger notices done`).
    "told": "We told {recipient} of your erasure and asked it to delete your data.",
}

# Events after which a ticket holds the chat until the row's retention_until.
KEPT_EVENTS = (Event.TRANSFER, Event.SENT, Event.ADOPTED)

# Request kinds and outcomes (ledger.requests, commands.erase_request).
REQUEST_KINDS = {
    "access": "a copy of your data",
    "erasure": "erasure of your data",
    "withdrawal": "withdrawal of your consent",
    "objection": "objection to the processing",
    "rectification": "correction of your data",
    "restriction": "restriction of the processing",
}

# Why a request's clock was paused (ledger.rights.requests.PAUSE_REASONS).
PAUSE_REASONS = {
    "identity": "to confirm your identity",
    "clarification": "to clarify your request",
}

# What became of a ticket in the pack (commands.access_request).
TICKET_STATES = {
    "present": "Held in our support system (Zendesk).",
    "deleted": "Deleted on {deleted_on} {why}.",
    "not_found": "No longer found in our support system.",
    "unreadable": "Could not be read at this moment; we will send it to you separately.",
}
DELETED_BECAUSE: dict[str, str] = {
    Event.ERASED: "because you asked us to erase it",
    Event.EXPIRED: "because the time we keep it had ended",
}

# The categories of data a ticket carries (policy.transform.SENT_CATEGORIES).
CATEGORIES = {
    "identity": "your name",
    "contact_data": "your email address",
    "chat_content": "what you wrote in the chat and our replies",
}

# Whether SnapEngage's own copy of a chat is in the pack (commands.access_tickets).
COPY_STATES = {
    "included": "SnapEngage, the chat service, still holds this chat until {until}; its copy "
    "is shown below, with everything it recorded about you.",
    "not_found": "SnapEngage should still hold this chat until {until}, but did not return "
    "it when we asked.",
    "unreadable": "SnapEngage still holds this chat until {until}; it did not answer when we "
    "asked for its copy, which we will send you separately.",
    "deleted_by_snapengage": "SnapEngage, the chat service, deleted its copy on {until}.",
}

# The SnapEngage fields as the person would name them.
SNAPENGAGE_LABELS = {
    "ip_address": "IP address",
    "country": "Country (from your IP address)",
    "country_code": "Country (from your IP address)",
    "region": "Region (from your IP address)",
    "city": "City (from your IP address)",
    "latitude": "Latitude (from your IP address)",
    "longitude": "Longitude (from your IP address)",
    "browser": "Browser",
    "os": "Operating system",
    "user_agent": "Browser identification string",
    "page_url": "Page you were on",
    "entry_url": "Page you entered the site on",
    "referrer_url": "Page that led you to the site",
    "destination_url": "Page you went to",
    "requested_by": "Email address",
    "requester_details": "Your details",
    "language_code": "Browser language",
    "description": "Your first message",
    "transcripts": "Conversation",
}

_SAFEGUARD_NAMES = {
    "eu_sccs": "the European Commission's standard contractual clauses",
    "idta": "the UK International Data Transfer Agreement",
    "uk_addendum": "the UK Addendum to the European Commission's standard contractual clauses",
}
_REGIME_PREFIX = re.compile(r"^(UK GDPR|EU GDPR):\s*")
_CHECKED = re.compile(r"\s*\(certification [^()]*\)")
_NAMED = re.compile(r"\(([^()]+)\)\s*$")


def day(value: Any) -> str:
    """``2027-01-24`` (or a timestamp) -> ``24 January 2027``; anything else as it is."""
    text = str(value or "")
    try:
        parsed = date.fromisoformat(text[:10])
    except ValueError:
        return text
    return f"{parsed.day} {parsed.strftime('%B')} {parsed.year}"


def moment(value: Any) -> str:
    """``2026-11-25T08:00:00Z`` -> ``25 November 2026 at 08:00 UTC``."""
    text = str(value or "")
    clock = text[11:16] if len(text) >= 16 and text[10] == "T" else ""
    return day(text) + (f" at {clock} UTC" if clock else "")


def country_name(code: str | None) -> str:
    if not code:
        return "a country we could not determine"
    found = pycountry.countries.get(alpha_2=code.upper())
    if found is None:
        return f"the country with code {code.upper()}"
    name = str(getattr(found, "common_name", found.name))
    return f"the {name}" if found.alpha_2 in _THE else name


def instrument_name(mechanism: str | None) -> str:
    """``UK GDPR: The ... Regulations 2023, SI 2023/1028 (UK-US data bridge) (certification
    X, checked D)`` -> ``the UK-US data bridge``; ``idta REF (TRA D)`` -> the IDTA's name."""
    text = (mechanism or "").split(";")[0].strip()
    first = text.split(" ", 1)[0].lower()
    if first in _SAFEGUARD_NAMES:
        return _SAFEGUARD_NAMES[first]
    text = _CHECKED.sub("", _REGIME_PREFIX.sub("", text)).strip()
    named = _NAMED.search(text)
    if named:
        return f"the {named.group(1)}"
    return text or "the applicable safeguard"


def basis_sentence(basis: str | None, mechanism: str | None = None) -> str:
    template = BASES.get(basis or "", "on a basis we will explain on request")
    return template.format(instrument=instrument_name(mechanism))


def reason_sentence(reason: str | None) -> str:
    """Why a chat was not sent (or sent without a restricted transfer)."""
    text = (reason or "").strip()
    if text in REASONS:
        return REASONS[text]
    if TYPE_REASON.match(text):
        return TYPE_SENTENCE
    if text.startswith("dismissed:"):
        return DISMISSED_SENTENCE
    return "for a reason our staff will explain on request"


def status_sentence(status: str | None) -> str:
    return STATUSES.get(status or "", "in a state our staff will explain on request")


def event_sentence(row: dict[str, Any]) -> str:
    """One ledger row about the person, as a sentence (no sequence numbers, no hashes)."""
    raw = row.get("details")
    details: dict[str, Any] = raw if isinstance(raw, dict) else {}
    event = str(row.get("event") or "")
    template = EVENTS.get(event, "A record our staff will explain on request.")
    ticket = row.get("ticket_id")
    notice = NOTICES.get(
        "told" if details.get("closes") else str(details.get("status")),
        "{recipient} was told of your request.",
    )
    kept = ""
    if event in KEPT_EVENTS and row.get("retention_until"):
        kept = f" It is kept there until {day(row['retention_until'])}, then deleted."
    return (
        template.format(
            recipient=row.get("recipient") or "our support system",
            country=country_name(row.get("destination_country")),
            basis=basis_sentence(row.get("legal_basis"), row.get("mechanism_ref")),
            reason=reason_sentence(details.get("reason")),
            ticket=f"number {ticket}" if ticket else "",
            erase_reason=ERASE_REASONS.get(str(details.get("reason")), "because you asked us to"),
            kind=REQUEST_KINDS.get(str(details.get("kind")), "a request about your data"),
            pause_reason=PAUSE_REASONS.get(str(details.get("reason")), "for more information"),
            months=details.get("months", 2),
            notice=notice.format(recipient=row.get("recipient") or "A recipient of your data"),
        ).replace("  ", " ")
        + kept
    )


def ticket_state_sentence(ticket: dict[str, Any]) -> str:
    template = TICKET_STATES.get(str(ticket.get("state")), "Its state is unknown.")
    why = DELETED_BECAUSE.get(str(ticket.get("deleted_because")), "")
    return template.format(deleted_on=day(ticket.get("deleted_on")), why=why).replace(" .", ".")


def field_label(name: str) -> str:
    return SNAPENGAGE_LABELS.get(name, name.replace("_", " ").capitalize())


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
            rows.append((field_label(key), "\n".join(lines), True))
        elif _plain(value):
            rows.append((field_label(key), _plain(value), False))
    return rows


def _controller_sentence(party: dict[str, Any]) -> str:
    entry = controllers.Controller(
        str(party["controller"]), str(party.get("contact") or ""), party.get("processor")
    )
    return controllers.sentence(entry)


TEMPLATES.filters.update(
    plain=_plain,
    category=lambda code: CATEGORIES.get(code, ""),
    record=lambda r: f"{day(r.get('recorded_at'))}: {event_sentence(r)}",
    comment=lambda c: f"[{_plain(c.get('created_at'))}] {_plain(c.get('body'))}",
)
_WORDS = (day, moment, country_name, basis_sentence, reason_sentence, status_sentence)
TEMPLATES.globals.update(
    {word.__name__: word for word in (*_WORDS, field_label, ticket_state_sentence)},
    copy_states=COPY_STATES,
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
