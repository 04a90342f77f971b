"""`snapzen ledger erase`: one person's erasure request from end to end.

Refuse a shared reference (exit 2) before queueing for the lock, then, under the lock, decide
again on the ledger that is erased, delete the tickets and journal the request
(snapzen.commands.erase, .erase_request), its Art. 19 notices chained in the same
transaction; then write the response for the person (snapzen.commands.erasure_response). A
dry run only reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import sqlite_utils

from snapzen.commands import clients
from snapzen.commands.erase import ErasureResult, erase_subject, known_tickets
from snapzen.commands.erase_request import RequestInfo, other_recipients
from snapzen.commands.erasure_response import respond
from snapzen.commands.ledger_open import (
    locked,
    received_day,
    refuse_request_with_received,
    subject_of,
)
from snapzen.ledger.rights import collisions, requests
from snapzen.ledger.rights.requests import Request
from snapzen.ledger.store.db import open_ledger
from snapzen.support import clock, errors
from snapzen.support.settings import Settings, require_ledger_key

# --reason → the `reason` in each `erased` event (art17 keeps the name earlier rows carry).
_EVENT_REASON = {"art17": "art17_request"}


@dataclass
class Answered:
    """What the erasure did (or, dry, would do), then the response written for the person."""

    ref: str
    result: ErasureResult
    request: RequestInfo
    delete_user: bool
    response: dict[str, Any] | None = None  # the response's JSON document; None for a dry run
    path: Path | None = None
    lookup_failed: str | None = None  # the error's class when the profile lookup failed


def erase_person(
    settings: Settings,
    email: str,
    *,
    dry_run: bool,
    actor: str,
    wait_seconds: float,
    delete_user: bool,
    reason: str,
    received: str | None,
    cases: list[str] | None,
    tickets: list[int] | None,
    request: str | None,
    out: Path | None,
    on_erased: Callable[[Answered], None],
) -> Answered:
    """``on_erased`` is told as soon as the tickets are deleted and recorded (before the
    response is written). LockHeld when another snapzen holds the writer lock."""
    ref = subject_of(settings, email)
    refuse_request_with_received(request, received)

    def checked(db: sqlite_utils.Database) -> tuple[set[str] | None, Request | None]:
        """The chats to erase (exit 2 for a shared email not narrowed) and the request it
        answers (exit 2 when unknown, closed or not of an erasure kind)."""
        selected = collisions.select_cases(db.conn, ref, cases or (), tickets or ())
        if request is None:
            return selected, None
        kinds = requests.ERASURE_KINDS
        return selected, requests.open_one(db.conn, request, clock.now().date(), kinds)

    with open_ledger(settings.ledger, read_only=True) as reader:  # before queueing for the lock
        selected, answered = checked(reader)
    if selected is not None and delete_user:
        raise errors.ConfigError(
            "--delete-user with --case/--ticket: the Zendesk profile of this email may be "
            "another person's too; delete it by hand once you know whose it is"
        )
    deleter = None if dry_run else clients.ticket_deleter_from(settings)
    users = clients.user_eraser_from(settings, email) if delete_user else None
    info = RequestInfo(
        request_id=answered.request_id if answered else requests.new_request_id(),
        kind=answered.kind if answered else requests.REASON_KINDS[reason],
        received_on=(
            date.fromisoformat(answered.received_on) if answered else received_day(received)
        ),
        journal=settings.ledger.erasure_journal_path,
        journal_key=require_ledger_key(settings),
        snapengage_days=settings.snapengage.retention_days,
        others=other_recipients(settings),
    )
    # A dry run only reads; a real erasure appends to the chain, so it queues behind a sync.
    ledger = settings.ledger
    with open_ledger(ledger, read_only=True) if dry_run else locked(settings, wait_seconds) as db:
        if not dry_run:  # again on the ledger erased, now that the lock is held
            selected, _ = checked(db)
        result = erase_subject(
            db,
            ref,
            deleter,
            dry_run=dry_run,
            actor=actor,
            users=users,
            reason=_EVENT_REASON.get(reason, reason),
            request=None if dry_run else info,
            only_cases=selected,
        )
    done = Answered(ref, result, info, delete_user)
    on_erased(done)
    if dry_run:
        return done
    lookup = None
    if selected is None and result.users is None:
        # Read-only: the person's Zendesk profile and the tickets that still name them (those
        # snapzen did not create, once its own are deleted); on an error, its class is said.
        try:
            eraser = clients.user_eraser_from(settings, email)
            lookup = eraser.plan(eraser.requesters(known_tickets(result.plan)))
        except errors.SnapzenError as exc:
            done.lookup_failed = type(exc).__name__
    # Without --out: `responses/` beside the ledger database (as private as it is).
    out_dir = out or Path(settings.ledger.path).parent / "responses"
    # only read: the erasure chained it all, its Art. 19 notices too
    with open_ledger(settings.ledger, read_only=True) as db:
        done.response, done.path = respond(
            db,
            result,
            settings,
            request_id=info.request_id,
            out_dir=out_dir,
            now=clock.now(),
            lookup=lookup,
        )
    return done
