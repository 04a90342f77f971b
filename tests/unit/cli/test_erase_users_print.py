"""What `ledger erase --delete-user` says about the person's Zendesk profile (user ids only)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from snapzen.clients.deletion import UserErasure
from snapzen.commands import summaries
from snapzen.commands.erase import ErasurePlan, ErasureResult
from snapzen.commands.erase_person import Answered
from snapzen.commands.erase_request import RequestInfo


def said(users: UserErasure, *, dry_run: bool) -> tuple[str, str]:
    """(stdout, stderr) of an erasure of nobody's tickets that found ``users``."""
    result = ErasureResult(ErasurePlan("ref"), dry_run=dry_run, users=users)
    request = RequestInfo("req-1", "erasure", date(2026, 1, 1), Path("rights.jsonl"), b"k")
    erased = Answered("ref", result, request, delete_user=True)
    lines = summaries.said("erased", e=erased, blocked=summaries.still_naming(result))
    out = "\n".join(text for to_stderr, text in lines if not to_stderr)
    return out, "\n".join(text for to_stderr, text in lines if to_stderr)


def test_a_requester_with_another_email_is_named_as_not_theirs() -> None:
    out, err = said(UserErasure(to_delete=[78], deleted=[78], other_email=[88]), dry_run=False)
    assert "Zendesk users deleted: [78]" in out and "no Zendesk end-user profile" not in out
    assert "Zendesk user 88 requested a ticket of this person but has another primary" in err


def test_no_profile_is_said_only_when_neither_source_found_one() -> None:
    assert "no Zendesk end-user profile with this email" in said(UserErasure(), dry_run=True)[0]


def test_a_blind_look_up_is_not_confirmed_never_no_profile() -> None:
    out, err = said(UserErasure(unconfirmed=[1003]), dry_run=False)
    assert "no Zendesk end-user profile" not in out
    assert "Zendesk profile NOT confirmed: the requester of ticket(s) [1003]" in err
