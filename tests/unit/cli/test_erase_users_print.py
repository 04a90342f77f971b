"""What `ledger erase --delete-user` says about the person's Zendesk profile (user ids only)."""

from __future__ import annotations

import pytest

from snapzen.cli.ledger_rights import _print_users
from snapzen.clients.deletion import UserErasure


def test_a_requester_with_another_email_is_named_as_not_theirs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _print_users(UserErasure(to_delete=[78], deleted=[78], other_email=[88]), dry_run=False)
    out, err = capsys.readouterr()
    assert "Zendesk users deleted: [78]" in out and "no Zendesk end-user profile" not in out
    assert "Zendesk user 88 requested a ticket of this person but has another primary" in err


def test_no_profile_is_said_only_when_neither_source_found_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _print_users(UserErasure(), dry_run=True)
    assert "no Zendesk end-user profile with this email" in capsys.readouterr().out


def test_a_blind_look_up_is_not_confirmed_never_no_profile(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _print_users(UserErasure(unconfirmed=[1003]), dry_run=False)
    out, err = capsys.readouterr()
    assert "no Zendesk end-user profile" not in out
    assert "Zendesk profile NOT confirmed: the requester of ticket(s) [1003]" in err
