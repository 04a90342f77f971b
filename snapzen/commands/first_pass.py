"""A new ledger never meets snapzen's tickets unawares.

`snapzen init` at a new path, then `sync`, against a Zendesk that already holds snapzen's
tickets (a lost volume, a mistyped path, a second install) would import every chat of the
retention window again, an erased visitor's included. So `init` without ``--adopt``, and the
first `sync`/`backfill`/`retry` of a ledger that never synced, adopted nor restored, ask
Zendesk one cheap question (Search's result count for the ``snapengage`` tag) and refuse,
exit 2, when the answer is not zero. Search lags writes by minutes: tickets imported in the
last minutes may not be counted yet, older ones always are.
"""

from __future__ import annotations

import sqlite3
from typing import Protocol, runtime_checkable

from snapzen.ledger.store.identity import BIND_EVENT
from snapzen.support.errors import ConfigError
from snapzen.support.log import get_logger

log = get_logger("snapzen.commands.first_pass")

QUERY = "type:ticket tags:snapengage"


@runtime_checkable
class TicketCount(Protocol):
    def search_count(self, query: str) -> int: ...


class TicketsExist(ConfigError):
    """Zendesk holds snapzen's tickets and this ledger knows none of them (exit 2)."""


def snapzen_tickets(sink: object) -> int | None:
    """How many live tickets carry the ``snapengage`` tag (None: a sink that cannot say)."""
    if not isinstance(sink, TicketCount):
        return None
    count = sink.search_count(QUERY)
    log.info("zendesk_snapzen_tickets_counted", tickets=count)
    return count


def refuse_init(sink: object) -> None:
    count = snapzen_tickets(sink)
    if count:
        raise TicketsExist(
            f"Zendesk already holds {count} ticket(s) from snapzen (tag snapengage): a new "
            "empty ledger would import their chats again; run `snapzen init --adopt` to "
            "record them first (or `snapzen ledger restore BACKUP`); nothing was created"
        )


def never_synced(conn: sqlite3.Connection) -> bool:
    """No pass, adoption or restore ever wrote to this ledger (the key binding `init`
    chains is the one event a new ledger holds)."""
    row = conn.execute(
        """SELECT NOT EXISTS (SELECT 1 FROM runs) AND NOT EXISTS (SELECT 1 FROM cases)
                  AND NOT EXISTS (SELECT 1 FROM events WHERE event <> ?)""",
        (BIND_EVENT,),
    ).fetchone()
    return bool(row[0])


def refuse_first_pass(conn: sqlite3.Connection, sink: object, path: object) -> None:
    """Before the first pass of a ledger that never synced: refuse if Zendesk has tickets."""
    if not never_synced(conn):
        return
    count = snapzen_tickets(sink)
    if count:
        raise TicketsExist(
            f"the ledger {path} has never synced, yet Zendesk already holds {count} "
            "ticket(s) from snapzen (tag snapengage): this pass would import their chats "
            "again; remove this empty ledger and run `snapzen init --adopt` (or restore a "
            "backup with `snapzen ledger restore BACKUP`); nothing was sent"
        )
