"""``snapzen ledger access``: answer one person's access request with their access pack
(Art. 15, Art. 20), under the writer lock, with the Zendesk and SnapEngage clients built from
settings.

Found by email (its HMAC), case id or ticket id; an email several people used is narrowed
to named chats first, as for erasure (snapzen.ledger.rights.collisions). Refused (ConfigError, exit
2) while the Art. 15 information is incomplete (``require_complete``). The pack holds:

- every ticket of theirs with its transcript, read from Zendesk by id (access_tickets, which
  reads SnapEngage's copies too);
  tickets Zendesk search finds by the email that snapzen did not create are only listed for
  review until included by id after it; erased or expired tickets are listed as deleted;
- every ledger row about them and every decision about their chats, with the day SnapEngage
  deletes each, and SnapEngage's own copy of each chat it still holds;
- the Art. 15(1)(a)-(h) and 15(2) information (``information``, from `[record]` and
  `[transfer]`): who the controller is, why, every recipient actually used (SnapEngage
  included, CJEU C-154/21) with its country and basis, how long, the person's rights and the
  regulator. Before a pack can be sent, the fields `ledger report` requires for the Art. 30
  record (snapzen.ledger.evidence.art30_record.missing_fields) must be filled in, and what only
  the person is told: their rights and where to complain. Recipients, safeguards and the
  storage period are derived from `[transfer]` when `[record]` leaves them empty.

``DIR/subject.json`` is the machine-readable copy (Art. 20, with the ledger's codes),
``DIR/subject.html`` the one for the person, in sentences (access_text). Then
one transaction appends an ``access_provided`` event with both files' SHA-256 and closes the
``access`` request in the journal.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from snapzen.commands import clients, controllers
from snapzen.commands.access_text import render_html
from snapzen.commands.access_tickets import ChatReader, TicketReader, attach_copies, read_tickets
from snapzen.commands.ledger_open import (
    locked,
    received_day,
    refuse_request_with_received,
    subject_of,
)
from snapzen.ledger.evidence.art30_record import missing_fields, retention_statement
from snapzen.ledger.evidence.audit import COLUMNS, decode_json_columns
from snapzen.ledger.evidence.events import Event
from snapzen.ledger.rights import collisions, erasure_journal, forget, period_keys, requests
from snapzen.policy.transform import SENT_CATEGORIES
from snapzen.support import clock, errors
from snapzen.support.adequacy import Regime
from snapzen.support.atomic import atomic_text, private_dir
from snapzen.support.settings import Settings, require_ledger_key
from snapzen.support.settings_gdpr import RecipientSystem, TransferBasis

FORMAT = "snapzen-access-pack/1"
PACK_FILES = ("subject.json", "subject.html")


# Where the person can complain, by the controller's regime (Art. 15(1)(f), Art. 77).
REGULATORS = {
    Regime.UK_GDPR: "the Information Commissioner's Office (ICO), ico.org.uk, 0303 123 1113",
    Regime.EU_GDPR: "the data protection authority of the EU or EEA country where you live, "
    "work, or where you think the problem happened (edpb.europa.eu lists them)",
}
SNAPENGAGE = "SnapEngage"
_BASES = {TransferBasis.ADEQUACY: "art45", TransferBasis.SAFEGUARDS: "art46"}


def _recipient(
    name: str, system: str, country: str | None = None, basis: str | None = None, how: str = ""
) -> dict[str, Any]:
    return {"name": name, "system": system, "country": country, "basis": basis, "mechanism": how}


def _recipients(settings: Settings) -> list[dict[str, Any]]:
    transfer = settings.transfer
    out: list[dict[str, Any]] = []
    for recipient in transfer.recipients:
        under = recipient.restricted_under(transfer.regimes())
        # Art. 49: per chat, consent or contract, as each transfer row records.
        basis = _BASES.get(recipient.basis, "art49") if under else "not_restricted"
        how = recipient.mechanism(under) if under else ""
        out.append(_recipient(recipient.name, recipient.system, recipient.country, basis, how))
    if not any(r["system"] == RecipientSystem.SNAPENGAGE for r in out):
        # The chat service always holds the chat first, whether or not it is configured as a
        # recipient with its country.
        out.append(_recipient(SNAPENGAGE, RecipientSystem.SNAPENGAGE))
    return out + [_recipient(name, "other") for name in settings.record.recipients]


# The [record] fields the person is told as they are written.
_TOLD = "controller contact dpo purposes lawful_basis rights complaint source automated_decisions"


def information(settings: Settings) -> dict[str, Any]:
    """Art. 15(1)(a)-(h) and 15(2), from [record], [consent] and [transfer]."""
    record, transfer = settings.record, settings.transfer
    detail = _recipients(settings)
    regime = transfer.regime
    return {
        # Who (with the DPO), why (a) and on what basis; the rights (e) and where to complain
        # (f); the source (g); automated decisions (h).
        **record.model_dump(include=set(_TOLD.split())),
        "data_categories": list(SENT_CATEGORIES),  # (b)
        "recipients": [r["name"] for r in detail],  # (c)
        "recipients_detail": detail,
        "third_country": transfer.zendesk.country,
        "third_countries": sorted({r.country for r in transfer.recipients}),
        "safeguards_written": record.safeguards,
        "safeguards": record.safeguards or "; ".join(transfer.describe_recipients()),  # 15(2)
        "retention": retention_statement(record, transfer),  # (d), as `ledger report` (f)
        "snapengage_retention_days": settings.snapengage.retention_days,
        "regulator": REGULATORS[regime] if regime else " or ".join(REGULATORS.values()),
    }


# Art. 15(1)(e), (f): empty them and the person does not learn what they can do.
PERSON_ONLY = ("rights", "complaint")


def missing_for_access(settings: Settings) -> list[str]:
    """The empty fields an access pack needs, each with the variable that sets it."""
    record = settings.record
    return missing_fields(record) + [
        f"record.{attr} (SNAPZEN_RECORD__{attr.upper()})"
        for attr in PERSON_ONLY
        if not str(getattr(record, attr)).strip()
    ]


def require_complete(settings: Settings) -> None:
    """ConfigError (exit 2) naming every empty field: nothing is written or recorded."""
    missing = missing_for_access(settings)
    if missing:
        raise errors.ConfigError(
            "ledger access: the pack would not tell the person what Art. 15 requires; fill "
            "in: " + "; ".join(missing)
        )


@dataclass
class AccessResult:
    request_id: str
    subject_ref: str | None
    case_ids: list[str]
    json_path: Path
    html_path: Path
    sha256_json: str = ""
    sha256_html: str = ""
    tickets: int = 0
    unreadable: list[int] = field(default_factory=list)  # Zendesk did not answer: exit 3
    found: bool = True
    # Tickets Zendesk search found that snapzen did not create: listed, not in the pack.
    for_review: list[dict[str, Any]] = field(default_factory=list)
    snapengage_unreadable: list[str] = field(default_factory=list)  # exit 3
    snapengage_copies: int = 0
    forgotten: str | None = None  # nothing found: the months the retention sweep forgot

    @property
    def complete(self) -> bool:
        return not self.unreadable and not self.snapengage_unreadable


@dataclass(frozen=True)
class Scope:
    """Whose data a pack covers. ``narrowed``: the email reference is shared by several
    people, so only these chats are theirs: nothing filed under the reference alone (other
    chats, holds, requests) and no Zendesk search by the email goes into the pack."""

    subject_ref: str | None
    case_ids: list[str]
    narrowed: bool = False


def resolve(
    conn: sqlite3.Connection,
    *,
    subject_ref: str | None,
    case_ids: Sequence[str] = (),
    ticket_ids: Sequence[int] = (),
) -> Scope:
    """The chats of the person asking. By email (its reference): all chats filed under it,
    or only the named cases/tickets; a reference several people used raises
    collisions.SubjectCollision (exit 2) until narrowed, as erasure does. By one case or
    ticket: the chat leads to its subject when it carried an email, unless that email is
    shared, when the pack covers that chat alone."""
    if subject_ref is not None:
        selected = collisions.select_cases(conn, subject_ref, case_ids, ticket_ids)
        if selected is not None:
            return Scope(subject_ref, sorted(selected), narrowed=True)
        return Scope(subject_ref, _subject_cases(conn, subject_ref))
    case_id = case_ids[0] if case_ids else None
    ticket_id = ticket_ids[0] if ticket_ids else None
    row = conn.execute(
        "SELECT case_id, subject_ref FROM cases WHERE case_id = ? OR ticket_id = ?",
        (case_id, ticket_id),
    ).fetchone()
    if row is None:
        row = conn.execute(
            "SELECT case_id, subject_ref FROM events WHERE case_id = ? OR ticket_id = ? "
            "ORDER BY seq LIMIT 1",
            (case_id, ticket_id),
        ).fetchone()
    if row is None:
        return Scope(None, [case_id] if case_id else [])
    # A chat row's reference is keyed by its month: back to the person's (None: forgotten,
    # or a chat without an email).
    ref = period_keys.lookup_of(conn, str(row[1])) if row[1] is not None else None
    if ref is None:
        return Scope(None, [str(row[0])])
    if collisions.people(conn, ref) > 1:
        return Scope(ref, [str(row[0])], narrowed=True)
    return Scope(ref, _subject_cases(conn, ref))


def _subject_cases(conn: sqlite3.Connection, subject_ref: str) -> list[str]:
    chained, params = period_keys.match(conn, subject_ref)  # every period not forgotten
    ids = {
        str(r[0])
        for r in conn.execute(
            "SELECT case_id FROM cases WHERE subject_ref = ? UNION "
            f"SELECT case_id FROM events WHERE {chained} AND event IN (?, ?, ?)",
            (subject_ref, *params, Event.TRANSFER, Event.ERASED, Event.EXPIRED),
        )
    }
    return sorted(ids)


def _ledger_rows(
    db: sqlite_utils.Database, subject_ref: str | None, case_ids: list[str]
) -> list[dict[str, Any]]:
    marks = ", ".join("?" for _ in case_ids) or "NULL"
    chained, refs = period_keys.match(db.conn, subject_ref) if subject_ref else ("", [])
    sql = (
        f"SELECT {', '.join(COLUMNS)} FROM events WHERE case_id IN ({marks})"
        + (f" OR {chained}" if subject_ref else "")
        + " ORDER BY seq"
    )
    return [decode_json_columns(row) for row in db.query(sql, [*case_ids, *refs])]


def _chats(
    db: sqlite_utils.Database, case_ids: list[str], se_retention_days: int
) -> list[dict[str, Any]]:
    """The person's chats; SnapEngage keeps each `retention_days` after it started, whatever
    we did with it (``snapengage_deletes_on``, None without a start)."""
    marks = ", ".join("?" for _ in case_ids) or "NULL"
    sql = f"""SELECT case_id, widget_id, started_at, status, outcome, legal_basis, reason,
                  ticket_id, synced_at, expired_at,
                  date(substr(started_at, 1, 10), ?) AS snapengage_deletes_on
              FROM cases WHERE case_id IN ({marks}) ORDER BY started_at, case_id"""
    return list(db.query(sql, [f"+{se_retention_days} days", *case_ids]))


def write_pack(
    db: sqlite_utils.Database,
    settings: Settings,
    reader: TicketReader,
    out_dir: Path,
    *,
    subject_ref: str | None = None,
    case_ids: Sequence[str] = (),
    ticket_ids: Sequence[int] = (),
    email: str | None = None,
    received_on: date | None = None,
    actor: str = "cli",
    now: datetime | None = None,
    chats_reader: ChatReader | None = None,
    include_tickets: Sequence[int] = (),
    request_id: str | None = None,
) -> AccessResult:
    """Build and write the pack, then record it (the caller holds the writer lock); with
    ``request_id`` (an open request of `ledger requests open`) the pack answers it. A shared
    email reference not narrowed by case or ticket raises collisions.SubjectCollision before
    anything is written or recorded."""
    require_complete(settings)  # exit 2, nothing written or recorded
    moment = (now or clock.now()).astimezone(UTC)
    journal = settings.ledger.erasure_journal_path
    key = require_ledger_key(settings) if settings.ledger.key is not None else None
    if key is not None:  # an edited journal refuses the request before anything is written
        erasure_journal.prepare(journal, key, db.conn)
    scope = resolve(db.conn, subject_ref=subject_ref, case_ids=case_ids, ticket_ids=ticket_ids)
    ref = scope.subject_ref
    paths = (out_dir / PACK_FILES[0], out_dir / PACK_FILES[1])
    result = AccessResult(request_id or requests.new_request_id(), ref, scope.case_ids, *paths)
    # Narrowed: the reference (and the Zendesk requester behind the email) is shared, so
    # rows filed under it alone and tickets found by the email may be someone else's.
    ledger = _ledger_rows(db, None if scope.narrowed else ref, scope.case_ids)
    chats = _chats(db, scope.case_ids, settings.snapengage.retention_days)
    read = read_tickets(reader, ledger, chats, None if scope.narrowed else email, include_tickets)
    tickets, result.unreadable, result.for_review = read.tickets, read.unreadable, read.for_review
    result.tickets = len(tickets)
    if chats_reader is not None:  # SnapEngage's own copy of each chat it still holds
        copies = attach_copies(
            chats_reader, chats, moment.date(), settings.snapengage.retention_days
        )
        result.snapengage_copies, result.snapengage_unreadable = copies
    result.found = bool(ledger or chats or tickets)
    result.forgotten = None if result.found else forget.note(db.conn)
    # A client's chats are the client's (controller) to answer for; the company, its
    # processor, answers on its behalf (commands.controllers, Art. 28(3)(e)).
    parties = controllers.group(settings, [(c["case_id"], c.get("widget_id")) for c in chats])
    pack = {
        "format": FORMAT,
        "generated_at": clock.format(moment),
        "request_id": result.request_id,
        "subject_ref": ref,
        "asked_by": {
            "case_ids": list(case_ids),
            "ticket_ids": list(ticket_ids),
            "email": bool(email),
            "narrowed_to_chats": scope.narrowed,
        },
        "information": information(settings),
        "controllers": [entry.as_dict() for entry in parties],
        "tickets": tickets,
        "chats": chats,
        "ledger": ledger,
        # What the retention sweep forgot (months, request periods), in plain words too.
        "forgotten": forget.summary(db.conn),
    }
    json_text = json.dumps(pack, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    html_text = render_html(pack)
    private_dir(out_dir)
    for path, text in ((result.json_path, json_text), (result.html_path, html_text)):
        with atomic_text(path) as handle:
            handle.write(text)
    result.sha256_json, result.sha256_html = (
        hashlib.sha256(text.encode()).hexdigest() for text in (json_text, html_text)
    )
    # The pack handed over, and the request it answers, which survives a restore (journal).
    with erasure_journal.chained(db, journal, key, actor=actor, now=moment) as recorder:
        _record(recorder, result, received_on or moment.date())
    return result


def _record(recorder: requests.Recorder, result: AccessResult, received: date) -> None:
    """The pack handed over (in the chain only), and the request it answers (journalled)."""
    counts = {
        "sha256_json": result.sha256_json,
        "sha256_html": result.sha256_html,
        "tickets": result.tickets,
        "cases": len(result.case_ids),
        "unreadable_tickets": len(result.unreadable),
        "tickets_for_review": len(result.for_review),
        "snapengage_copies": result.snapengage_copies,
    }
    target = (result.request_id, result.subject_ref)
    recorder.append(Event.ACCESS_PROVIDED, *target, counts, journal=False)
    status = requests.CLOSED if result.complete else requests.OPEN
    outcome = ("provided" if result.found else "nothing_found") if result.complete else "partial"
    answer = {"sha256_json": result.sha256_json}
    details = requests.request_details("access", received, status, outcome, answer)
    recorder.append(requests.EVENT, *target, details)


def check_target(cases: list[str], tickets: list[int], email: str | None) -> None:
    """One case or one ticket; or an email, narrowed by any --case/--ticket of that person
    (needed when several people used it)."""
    if email is None and len(cases) + len(tickets) != 1:
        raise errors.ConfigError("give --email, or exactly one --case or --ticket")


def answer(
    settings: Settings,
    out: Path,
    *,
    cases: list[str],
    tickets: list[int],
    email: str | None,
    received: str | None,
    request: str | None,
    actor: str,
    wait_seconds: float,
    include_tickets: list[int],
) -> AccessResult:
    """Write and record the pack; LockHeld when another snapzen holds the writer lock,
    SubjectCollision (nothing written or recorded) for a shared email not narrowed."""
    require_complete(settings)  # exit 2 before anything is read, written or recorded
    ref = subject_of(settings, email) if email is not None else None
    day = received_day(received)
    refuse_request_with_received(request, received)
    with locked(settings, wait_seconds) as db:
        if request is not None:
            day = date.fromisoformat(
                requests.open_one(db.conn, request, clock.now().date(), ("access",)).received_on
            )
        return write_pack(
            db,
            settings,
            clients.zendesk_from(settings),
            out,
            subject_ref=ref,
            case_ids=cases,
            ticket_ids=tickets,
            email=email,
            received_on=day,
            actor=actor,
            chats_reader=clients.snapengage_from(settings),
            include_tickets=include_tickets,
            request_id=request,
        )
