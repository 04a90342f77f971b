"""The rights journal: Art. 17 erasures and data-subject requests kept outside the database.

A backup taken before an erasure knows nothing of it: restored, its pending chats of the
erased person would be sent again, its ledger would show their tickets as live and its
request list would lose every request made since. So every erasure and every request event
also appends a line to a file beside the database (``ledger.erasure_journal``, 0600), and
``snapzen ledger checkpoint`` copies that file next to each checkpoint, whose signature
covers the journal's head. After a restore or an adoption, ``erasure_reapply`` brings the
ledger up to date from the journal united with the replaced ledger's own record.

Lines are keyed and chained (``snapzen.ledger.rights.journal_file``): a deleted, reordered, forged
or edited line is refused, naming it. They carry ids and the subject's HMAC only, never an
email. An erasure narrowed to some chats of a shared email (``--case``) journals those
chats only, never the whole reference: the other people behind it are not erased. Once a
request period is forgotten, its requests' lines are removed from the journal
(snapzen.ledger.rights.journal_file); its ``period_forgotten`` line stays.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import sqlite_utils

from snapzen.ledger.rights import journal_file, period_keys
from snapzen.ledger.rights.journal_file import JournalDamaged as JournalDamaged
from snapzen.ledger.rights.notices import EVENT as NOTICE_EVENT
from snapzen.ledger.rights.requests import EVENT as REQUEST_EVENT
from snapzen.ledger.rights.requests import EVENTS as REQUEST_EVENTS
from snapzen.ledger.rights.requests import Recorder, is_erasure_record
from snapzen.ledger.store.db import transaction
from snapzen.support.atomic import atomic_text

ERASURE, REQUEST = "erasure", "request"
FORGOTTEN = "period_forgotten"  # a month of chats forgotten (snapzen.ledger.rights.forget)
# Lines read and left to others: the compaction (journal_file) and operators' statements.
_OTHER = (journal_file.COMPACTED, "statement")


@dataclass(frozen=True)
class JournalEntry:
    request_id: str
    subject_ref: str
    erased_at: str  # ISO UTC; chats started up to here are the erased person's past chats
    reason: str
    tickets: list[int] = field(default_factory=list)
    cases: list[str] = field(default_factory=list)  # withheld (never sent) by the erasure
    # True: only ``cases`` (and ``tickets``) were erased, not everyone under subject_ref
    narrowed: bool = False
    widgets: dict[str, str] = field(default_factory=dict)  # narrowed: case id -> widget id

    def body(self) -> dict[str, Any]:
        return {"v": 1, **asdict(self)}

    def key(self) -> tuple[str, str]:
        return (self.request_id, self.subject_ref)


@dataclass(frozen=True)
class RequestLine:
    """One request-family event of the chain (``request``, ``request_paused``,
    ``request_resumed``, ``request_extended``: snapzen.ledger.rights.requests.EVENTS), or an
    Art. 19 notice (``recipient``: snapzen.ledger.rights.notices)."""

    request_id: str
    subject_ref: str | None
    at: str  # the event's recorded_at
    actor: str | None
    details: dict[str, Any]
    event: str = REQUEST_EVENT
    recipient: str | None = None

    def body(self) -> dict[str, Any]:
        body = asdict(self)
        if self.recipient is None:
            del body["recipient"]  # request lines as before notices were journalled
        return body

    def identity(self) -> tuple[str, str, str, bytes]:
        """What makes two copies of one event the same event (a re-applied copy is marked)."""
        plain = {k: v for k, v in self.details.items() if k != "reapplied"}
        if self.recipient is not None:
            plain["@recipient"] = self.recipient
        return (self.event, self.request_id, self.at, orjson.dumps(plain, option=_SORTED))


_SORTED = orjson.OPT_SORT_KEYS


def _parsed(kind: type[Any], body: Mapping[str, Any]) -> Any:
    """A line's entry as ``kind`` (TypeError for a missing field, or details not a dict)."""
    parsed = kind(**{f.name: body[f.name] for f in fields(kind) if f.name in body})
    if isinstance(parsed, RequestLine) and not isinstance(parsed.details, dict):
        raise TypeError("details")
    return parsed


@dataclass
class Contents:
    """What the rights journal (``read``) or a ledger's own chain (erasure_reapply) holds:
    the erasures, the request events, the periods forgotten (``{period: when}``) and the
    requests whose request period was forgotten."""

    erasures: list[JournalEntry] = field(default_factory=list)
    requests: list[RequestLine] = field(default_factory=list)
    forgotten: dict[str, str] = field(default_factory=dict)
    forgotten_requests: set[str] = field(default_factory=set)

    def lacking_in(self, other: Contents) -> Contents:
        """What these hold that ``other`` lacks: erasures (by request and person), request
        events (by ``identity``), periods forgotten."""
        have, seen = {e.key() for e in other.erasures}, {r.identity() for r in other.requests}
        return Contents(
            [e for e in self.erasures if e.key() not in have],
            [r for r in self.requests if r.identity() not in seen],
            {p: at for p, at in self.forgotten.items() if p not in other.forgotten},
        )

    def union(self, other: Contents) -> Contents:
        """These lines, then what ``other`` holds that these lack."""
        extra = other.lacking_in(self)
        return Contents(
            [*self.erasures, *extra.erasures],
            [*self.requests, *extra.requests],
            {**other.forgotten, **self.forgotten},
            self.forgotten_requests | other.forgotten_requests,
        )


def _vouched(known: Iterable[JournalEntry] | None) -> journal_file.Vouched:
    """The old unkeyed lines ``known`` (the ledger's own erasures) vouch for; any for
    ``known=None`` (read, never re-written from)."""
    return None if known is None else {entry.key() for entry in known}


def read(path: Path, key: bytes | None, *, known: Iterable[JournalEntry] | None = ()) -> Contents:
    """The journal, verified line by line (JournalDamaged names the first bad one). Old
    unkeyed lines are accepted only when ``known`` (the ledger's own erasures) holds them."""
    return contents_of(path, journal_file.read(path, key, vouched=_vouched(known)))


def contents_of(path: Path, lines: Iterable[journal_file.Line]) -> Contents:
    """The entries of ``lines`` read (verified) from the journal at ``path``."""
    contents = Contents()
    for line in lines:
        if line.type in _OTHER:
            continue
        if line.type not in (ERASURE, REQUEST, FORGOTTEN):
            raise JournalDamaged(f"{path}: line {line.number}: unknown type {line.type!r}")
        try:
            if line.type == FORGOTTEN:
                contents.forgotten.setdefault(str(line.entry["period"]), str(line.entry["at"]))
                contents.forgotten_requests.update(map(str, line.entry.get("request_ids", ())))
            elif line.type == ERASURE:
                contents.erasures.append(_parsed(JournalEntry, line.entry))
            else:
                contents.requests.append(_parsed(RequestLine, line.entry))
        except (KeyError, TypeError, ValueError):
            raise JournalDamaged(f"{path}: line {line.number}: not a journal entry") from None
    return contents


def append(path: Path, key: bytes, contents: Contents) -> None:
    """Append the erasures, the request events and the periods forgotten, in that order, and
    fsync them: an erasure is not done until its line is on disk."""
    periods = sorted(contents.forgotten.items())
    journal_file.append(
        path,
        key,
        [
            *((ERASURE, entry.body()) for entry in contents.erasures),
            *((REQUEST, line.body()) for line in contents.requests),
            *((FORGOTTEN, {"period": p, "at": at}) for p, at in periods),
        ],
    )


@contextmanager
def chained(
    db: sqlite_utils.Database, path: Path, key: bytes | None, *, actor: str, now: datetime
) -> Iterator[Recorder]:
    """Request events appended in one transaction (through the Recorder yielded), then the
    same events to the rights journal. Without the ledger key there is no journal; with it,
    an edited journal refuses them first (JournalDamaged, exit 2)."""
    if key is not None:
        prepare(path, key, db.conn)
    with transaction(db) as conn:
        recorder = Recorder(conn, actor, now)
        yield recorder
    if key is not None:
        append_requests(path, key, recorder.rows)


def append_requests(path: Path, key: bytes, rows: Iterable[Mapping[str, Any]]) -> None:
    """Append the request events just committed to the chain (rows as append_events returns)."""
    append(path, key, Contents(requests=[request_line(row) for row in rows]))


def request_line(row: Mapping[str, Any]) -> RequestLine:
    details = row.get("details")
    if isinstance(details, str | bytes):
        details = orjson.loads(details) if details else {}
    return RequestLine(
        request_id=str(row["case_id"]),
        # The lookup reference (a chained row keys it by the request period): a restore
        # chains it again under the period's key.
        subject_ref=row.get("lookup_ref", row.get("subject_ref")),
        at=str(row["recorded_at"]),
        actor=row.get("actor"),
        details=dict(details or {}),
        event=str(row.get("event") or REQUEST_EVENT),
        recipient=row.get("recipient"),
    )


def migrate(path: Path, key: bytes, known: Iterable[JournalEntry]) -> int:
    """Rewrite a version-1 journal in the keyed format, once; its lines must be the ledger's
    own erasures (``known``), or the whole file is refused."""
    return journal_file.migrate(path, key, _vouched(known))


def prepare(path: Path, key: bytes, conn: sqlite3.Connection) -> Contents:
    """Before a command that will append: the journal must take the line (JournalDamaged,
    exit 2, naming the bad line, before anything is done); an old-format journal is
    migrated once, its lines vouched for by this ledger's own erasures; then it is caught up
    with what this ledger committed but never journalled (``catch_up``). Returns what the
    journal holds now."""
    own = ledger_record(conn)
    migrate(path, key, own.erasures)
    journalled = read(path, key, known=own.erasures)
    behind = catch_up(path, key, conn, journalled, own)
    return journalled.union(behind)


def catch_up(
    path: Path,
    key: bytes,
    conn: sqlite3.Connection,
    journalled: Contents,
    own: Contents | None = None,
) -> Contents:
    """Append the erasures and request events this ledger committed that the journal
    (``journalled``, as read) lacks, and return them: a writer killed between its commit and
    its journal append left them out, and a backup older than them would otherwise lose them.
    Idempotent: a line the journal holds is never written again (erasures by request and
    person, events by ``RequestLine.identity``); a forgotten request is never brought back."""
    behind = lacking(conn, journalled, own)
    if behind.erasures or behind.requests:
        append(path, key, behind)
    return behind


def lacking(
    conn: sqlite3.Connection, journalled: Contents, own: Contents | None = None
) -> Contents:
    """The erasures and request events of this ledger (``own``: its ``ledger_record``, when
    the caller has read it) that ``journalled`` lacks, leaving out the requests whose request
    period the ledger or the journal forgot."""
    own = own or ledger_record(conn)
    gone = own.forgotten_requests | journalled.forgotten_requests
    kept = Contents(
        [e for e in own.erasures if e.request_id not in gone],
        [r for r in own.requests if r.request_id not in gone],
    )
    return kept.lacking_in(journalled)


# --- the ledger's own record, for the union with the journal -------------------------------


def ledger_record(conn: sqlite3.Connection) -> Contents:
    """This ledger's own erasures and request events (its request events read once: there is
    no index on the event name) and the requests whose request period it forgot."""
    requests = ledger_requests(conn)
    return Contents(
        ledger_erasures(conn, requests), requests, forgotten_requests=forgotten_requests(conn)
    )


def ledger_requests(conn: sqlite3.Connection) -> list[RequestLine]:
    """Every request event the ledger's chain holds (receipts, answers, pauses, resumptions,
    extensions) and the Art. 19 notices of its erasures, in order."""
    events = (*REQUEST_EVENTS, NOTICE_EVENT)
    columns = ("case_id", "subject_ref", "recorded_at", "actor", "details", "event", "recipient")
    rows = conn.execute(
        f"SELECT {', '.join(columns)} FROM events "
        f"WHERE event IN ({', '.join('?' * len(events))}) ORDER BY seq",
        events,
    )
    resolver, gone = period_keys.Resolver(conn), forgotten_requests(conn)
    found = []
    for row in (dict(zip(columns, values, strict=True)) for values in rows):
        if str(row["case_id"]) in gone:
            continue  # its request period was forgotten: not brought back
        # The lookup reference (the chained one is keyed by the request period).
        row["lookup_ref"] = resolver.resolve(row["subject_ref"], str(row["event"]))
        found.append(request_line(row))
    return found


def forgotten_requests(conn: sqlite3.Connection) -> set[str]:
    """The request ids whose request period this ledger forgot (its chain says)."""
    try:
        return {str(row[0]) for row in conn.execute(period_keys.FORGOTTEN_REQUESTS_SQL)}
    except sqlite3.Error:
        return set()


def widgets_of(conn: sqlite3.Connection, case_ids: Iterable[str]) -> dict[str, str]:
    """The widget of each case the ledger knows (a narrowed erasure's chats, so a restore
    can withhold one the restored ledger has never seen)."""
    wanted = list(case_ids)
    marks = ", ".join("?" * len(wanted))  # none: `IN ()`, which SQLite reads as no case
    rows = conn.execute(f"SELECT case_id, widget_id FROM cases WHERE case_id IN ({marks})", wanted)
    return {str(case_id): str(widget) for case_id, widget in rows}


def ledger_erasures(
    conn: sqlite3.Connection, requests: list[RequestLine] | None = None
) -> list[JournalEntry]:
    """The erasures a ledger knows of itself: its chained erasure requests (not refused by a
    legal hold), and its ``erased_subjects`` rows; each with the tickets its chain records
    as erased for that person (those chats only, for a narrowed erasure)."""
    erased: dict[str, list[tuple[str, str, int]]] = {}
    resolver = period_keys.Resolver(conn)
    for chained, case_id, at, ticket in conn.execute(
        "SELECT subject_ref, case_id, recorded_at, ticket_id FROM events "
        "WHERE event = 'erased' AND subject_ref IS NOT NULL AND ticket_id IS NOT NULL"
    ):
        if (ref := resolver.resolve(str(chained), "erased")) is not None:
            erased.setdefault(ref, []).append((str(case_id), str(at), int(ticket)))

    def tickets(ref: str, until: str, cases: list[str] | None = None) -> list[int]:
        mine = erased.get(ref, [])
        return sorted({t for c, at, t in mine if at <= until and (cases is None or c in cases)})

    found: dict[tuple[str, str], JournalEntry] = {}
    for line in ledger_requests(conn) if requests is None else requests:
        details, ref = line.details, line.subject_ref
        if line.event != REQUEST_EVENT or not is_erasure_record(details) or ref is None:
            continue  # a receipt, pause or close of the clock is not an erasure
        narrowed = bool(details.get("narrowed"))
        cases = [str(c) for c in details.get("cases", [])] if narrowed else []
        reason = str(details.get("reason", ""))
        erasure = tickets(ref, line.at, cases if narrowed else None)
        entry = JournalEntry(
            line.request_id, ref, line.at, reason, erasure, cases, narrowed, widgets_of(conn, cases)
        )
        found[entry.key()] = entry  # the latest event of a request wins
    try:
        rows = conn.execute("SELECT request_id, subject_ref, erased_at FROM erased_subjects")
    except sqlite3.OperationalError:  # a ledger older than the table
        return list(found.values())
    for request_id, ref, at in rows:
        erasure = tickets(str(ref), str(at))
        entry = JournalEntry(str(request_id), str(ref), str(at), "erased_subjects", erasure)
        found.setdefault(entry.key(), entry)
    return list(found.values())


def copy_for_checkpoint(
    live: Path, copy: Path, key: bytes | None, known: Iterable[JournalEntry]
) -> tuple[int, str] | None:
    """Copy the journal next to a checkpoint (0600) and return the copy's head (line count,
    last MAC) for the checkpoint to sign; None when there is no journal. With the ledger key,
    an old-format journal is migrated first and every MAC is checked; a damaged journal is
    refused (JournalDamaged), as a broken chain is never signed."""
    if not live.is_file():
        return None
    if key is not None:
        migrate(live, key, known)
    text = live.read_text(encoding="utf-8")
    with atomic_text(copy) as handle:
        handle.write(text)
    return journal_file.head(journal_file.read(copy, key, vouched=None))
