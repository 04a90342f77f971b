"""The prepare worker's child process: ``python -m snapzen.sync.prepare_child FD``, started
by ``prepare_worker.PrepareWorker.start`` (the protocol is described there). It imports only
what preparing needs, reads stored payloads read-only, and never writes.
"""

from __future__ import annotations

import signal
import sqlite3
import sys
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from snapzen.policy.models import EncodedTicket, ImportTicket
from snapzen.support.scrub import one_line
from snapzen.support.sqlite_uri import read_only_uri
from snapzen.sync.prepare import CasePreparer, Prepared

_IDS_PER_QUERY = 500  # well under SQLite's bound on host parameters


def serve(conn: Connection) -> None:
    """Answer requests until the parent closes the socket (or dies: the same EOF)."""
    try:
        message = conn.recv()
    except (EOFError, OSError):
        return
    _, settings, key, db_path = message
    preparer = CasePreparer(settings, key)
    # Opened on the first request: a first backfill creates the database file only when its
    # first pass starts, which may be after this process is up.
    db: sqlite3.Connection | None = None
    try:
        while True:
            try:
                number, request = conn.recv()
            except (EOFError, OSError):  # closed, or reset with our answer unread: the end
                return
            try:
                if db is None:
                    db = _open_read_only(Path(db_path))
                reply: tuple[int, str, Any] = (number, "ok", _prepare(preparer, db, request))
            except Exception as exc:  # one request fails, the worker goes on
                # one_line scrubs emails; no traceback (pydantic errors quote input values).
                reply = (number, "error", one_line(f"{type(exc).__name__}: {exc}"))
            try:
                conn.send(reply)
            except (OSError, ValueError):
                return
    finally:
        if db is not None:
            db.close()


def _prepare(
    preparer: CasePreparer, db: sqlite3.Connection, request: Sequence[tuple[str, str]]
) -> list[Prepared]:
    ids = [case_id for case_id, _ in request]
    stored: dict[str, str] = {}
    for offset in range(0, len(ids), _IDS_PER_QUERY):
        chunk = ids[offset : offset + _IDS_PER_QUERY]
        marks = ", ".join("?" for _ in chunk)
        stored.update(
            db.execute(
                f"SELECT case_id, raw FROM cases WHERE case_id IN ({marks}) AND raw IS NOT NULL",
                chunk,
            ).fetchall()
        )
    missing = [case_id for case_id in ids if case_id not in stored]
    if missing:
        # The parent selected them as pending with a payload a moment ago: something else
        # changed them. Refuse the request; the parent prepares from what it read.
        raise LookupError(f"{len(missing)} case(s) have no stored payload")
    return [
        _encoded(preparer.prepare_stored(case_id, widget, stored[case_id]))
        for case_id, widget in request
    ]


def _encoded(prepared: Prepared) -> Prepared:
    """The ticket sent back as its JSON (``EncodedTicket``): far smaller to hold, and not
    encoded again by the pass."""
    if isinstance(prepared.ticket, ImportTicket):
        prepared.ticket = EncodedTicket.of(prepared.ticket)
    return prepared


def _open_read_only(path: Path) -> sqlite3.Connection:
    # Read-only, and never the one to create or migrate the file (the parent did). Each
    # payload is read once: a page cache (2 MB by default) would only hold memory.
    conn = sqlite3.connect(read_only_uri(path), uri=True)
    conn.execute("PRAGMA cache_size = -256")
    return conn


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or not args[0].isdigit():
        print(
            "usage: python -m snapzen.sync.prepare_child FD (started by snapzen)", file=sys.stderr
        )
        return 2
    # Started in its own process group (a terminal's Ctrl-C does not reach it); a SIGINT
    # sent to it anyway is ignored too: it ends when the parent closes the socket.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn = Connection(int(args[0]))
    try:
        serve(conn)
    except Exception as exc:  # e.g. an init message this version cannot read
        # One line, no traceback: the parent logs that it prepares on its own from now on.
        print(f"snapzen prepare worker: {one_line(exc)}", file=sys.stderr)
        return 1
    finally:
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
