"""What Zendesk search does not show yet, read where nothing lags.

"It can take up to a few minutes for new tickets, users, and other resources to be indexed
for search" (reference §9): a ticket created, changed or deleted in the last minutes is
missing from search, or found as it was. The cursor-based Incremental Ticket Export has no
indexing delay, so every path that searches also reads the tickets changed in the last
``SEARCH_LAG`` from it (``recently_changed``) and, for a ticket both show, takes the export's
state (the newer one):

- the first pass of a new ledger and ``init`` (commands.init): the snapengage tickets counted;
- ``--via search`` reconciliation (commands.reconcile): the window read after the search;
- the tickets that name a user as submitter (``ZendeskClient.user_ticket_ids``: ``erase
  --delete-user``, the retention sweep's profiles) and those a person requested that
  ``ledger access --email`` lists (``ZendeskClient.requested_tickets``), through ``LagWindow``;
- the requester of a ticket deleted minutes ago, whose profile search may not show yet
  (``ZendeskUserEraser.requesters``: ``erase --delete-user``); ``LagWindow.unread`` says when
  a refused read may have missed it.

A read Zendesk refuses (our clock ahead of its own) is logged (``search_lag_window_unread``).
``recently_changed`` then gives nothing (search alone); ``LagWindow.merged`` raises it (a clear
BadRequestError) rather than answer by search alone, and ``LagWindow`` reads again from where
the refused read started at its next refresh, so nothing it would have read is skipped.

A ``LagWindow`` is that read for one command run (one per client): read the first time it is
needed, then, when asked again ``REFRESH`` or more later, only what changed since its last read
(one request, usually). A sweep that checks many profiles therefore spends about one of the
export's 10 requests a minute, not one per profile, and still sees a ticket filed during it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from snapzen.support import clock
from snapzen.support.errors import BadRequestError
from snapzen.support.log import get_logger

log = get_logger("snapzen.clients.search_lag")

# "Up to a few minutes" to index: what search may not show yet, the export reads since then.
SEARCH_LAG = timedelta(minutes=15)
# How stale a LagWindow may be before it reads what changed since (one request a minute).
REFRESH = timedelta(seconds=60)
# Zendesk refuses an incremental start_time less than a minute ago; a refresh re-reads this
# much before its last read too (clocks a little apart).
MIN_AGE = timedelta(seconds=61)


@runtime_checkable
class RecentReads(Protocol):
    def incremental_tickets(self, start_time: int) -> Iterator[list[dict[str, Any]]]: ...


def recently_changed(sink: RecentReads, now: datetime) -> Iterator[list[dict[str, Any]]]:
    """Pages of the tickets changed in the last SEARCH_LAG: those search may not find yet.
    Nothing when Zendesk refuses the start time: search alone, with the warning."""
    try:
        yield from _changed_since(sink, now - SEARCH_LAG)
    except BadRequestError:
        return  # logged (search_lag_window_unread)


def _changed_since(sink: RecentReads, start: datetime) -> Iterator[list[dict[str, Any]]]:
    """Pages of the tickets changed since ``start`` (deleted ones with status ``deleted``).
    Zendesk refusing the start time (our clock ahead of its own) is a BadRequestError that
    says so: search alone could miss what changed in the last minutes."""
    try:
        yield from sink.incremental_tickets(int(start.timestamp()))
    except BadRequestError as exc:
        log.warning("search_lag_window_unread", error=str(exc))
        raise BadRequestError(
            "Zendesk's incremental export refused to list the tickets changed in the last "
            f"{SEARCH_LAG.seconds // 60} minutes, which search may not show yet (is this "
            f"machine's clock ahead of Zendesk's?); try again in a few minutes: {exc}"
        ) from exc


def int_field(ticket: Any, name: str = "id") -> int | None:
    """``ticket[name]`` when it is an integer (an id: a bool is not one), else None."""
    value = ticket.get(name) if isinstance(ticket, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def by_id(items: Iterable[Any]) -> dict[int, dict[str, Any]]:
    """The objects among ``items`` that have an integer id, by that id (the last one wins)."""
    return {found: item for item in items if (found := int_field(item)) is not None}


def has_email(user: Any, email: str) -> bool:
    """Whether ``user``'s primary email is ``email`` (case-insensitive, spaces ignored)."""
    found = user.get("email") if isinstance(user, dict) else None
    return isinstance(found, str) and found.strip().lower() == email.strip().lower()


class LagWindow:
    """The tickets changed in the last SEARCH_LAG, each in the newest state read, by id."""

    def __init__(self, sink: RecentReads, now: Callable[[], datetime] = clock.now) -> None:
        self._sink, self._now = sink, now
        self._read_at: datetime | None = None  # when it was last read (or refused)
        self._start = datetime.min  # what the window holds changed since then
        self._next = datetime.min  # where the next read starts
        self._tickets: dict[int, dict[str, Any]] = {}
        # The last read was refused: what changed since ``_next`` is not held (yet).
        self.unread: BadRequestError | None = None

    def tickets(self) -> dict[int, dict[str, Any]]:
        """Read (or brought up to date) when first asked and then at most every REFRESH;
        read whole again once what it holds reaches back twice SEARCH_LAG (a long-lived
        client keeps no more than that). A refused read is read again from where it started
        at the next refresh; until then ``unread`` holds the refusal."""
        now = self._now()
        if self._read_at is not None and now - self._read_at < REFRESH:
            return self._tickets
        if self._read_at is None or now - self._start > 2 * SEARCH_LAG:
            self._tickets, self._start = {}, now - SEARCH_LAG
            self._next = self._start
        self._read_at = now
        try:
            for page in _changed_since(self._sink, self._next):
                self._tickets.update(by_id(page))  # read in the order they changed
        except BadRequestError as exc:
            self.unread = exc
        else:
            self.unread, self._next = None, now - MIN_AGE
        return self._tickets

    def merged(
        self,
        found: dict[int, dict[str, Any]],
        keep: Callable[[dict[str, Any]], bool],
        reread: Callable[[list[int]], Iterable[Any]],
    ) -> dict[int, dict[str, Any]]:
        """What search would find without its lag, by id: search's ``found`` tickets less
        those the window shows deleted since, and the window's tickets that ``keep`` holds for
        that search does not show yet. Those are read again (``reread``: their state now, a
        deleted one left out) since the window may be up to REFRESH old: one request per
        100, and only when there are any. A refused read raises (search alone could miss
        what changed in the last minutes)."""
        window = self.tickets()
        if self.unread is not None:
            raise self.unread
        out = {i: t for i, t in found.items() if _live(window.get(i, t))}
        added = {i for i, t in window.items() if i not in out and _live(t) and keep(t)}
        for i, ticket in by_id(reread(sorted(added)) if added else ()).items():
            if i in added and _live(ticket) and keep(ticket):
                out[i] = ticket
        return dict(sorted(out.items()))


def _live(ticket: dict[str, Any]) -> bool:
    return ticket.get("status") != "deleted"
