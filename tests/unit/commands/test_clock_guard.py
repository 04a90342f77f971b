"""The clock guard's decision (a table of cases) and where its evidence comes from: the `Date`
header of Zendesk's answers, never anything snapzen recorded itself (issue 23, item 6)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
import responses

from snapzen.clients.http import HttpClient
from snapzen.clients.zendesk import ZendeskClient
from snapzen.commands.clock_guard import (
    CLOCK_SKEW_MARGIN,
    ClockAheadError,
    Verdict,
    check_against_zendesk,
    require_clock_agrees,
)
from snapzen.support.settings import HttpSettings, ZendeskSettings
from tests.fakes import ZD_BASE, ZD_EMAIL, ZD_TOKEN

ZENDESK = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
MARGIN = CLOCK_SKEW_MARGIN


@pytest.mark.parametrize(
    ("local", "server", "verdict"),
    [
        (ZENDESK, ZENDESK, Verdict.OK),
        (ZENDESK + timedelta(seconds=1), ZENDESK, Verdict.OK),  # Date is whole seconds
        (ZENDESK + MARGIN, ZENDESK, Verdict.OK),  # exactly the margin: still fine
        (ZENDESK + MARGIN + timedelta(seconds=1), ZENDESK, None),  # None: refused, ahead
        (ZENDESK + timedelta(days=3 * 365), ZENDESK, None),
        (ZENDESK - MARGIN, ZENDESK, Verdict.OK),
        (ZENDESK - MARGIN - timedelta(seconds=1), ZENDESK, Verdict.BEHIND),
        (ZENDESK - timedelta(days=400), ZENDESK, Verdict.BEHIND),
        (ZENDESK, None, Verdict.UNKNOWN),
        # Another time zone on either side is the same instant.
        (ZENDESK.astimezone(datetime.now().astimezone().tzinfo), ZENDESK, Verdict.OK),
    ],
)
def test_verdict_table(local: datetime, server: datetime | None, verdict: Verdict | None) -> None:
    if verdict is None:
        with pytest.raises(ClockAheadError, match="ahead of Zendesk's"):
            require_clock_agrees(local, server, action="sync", need_evidence=False, margin=MARGIN)
        return
    check = require_clock_agrees(local, server, action="sync", need_evidence=False, margin=MARGIN)
    assert check is verdict


def test_the_margin_is_below_the_shortest_settle_time() -> None:
    """A clock ahead by less than the margin cannot make a chat still in progress look
    settled: the smallest settle_minutes allowed is 5."""
    from snapzen.support.settings import SnapEngageSettings

    smallest = SnapEngageSettings.model_fields["settle_minutes"].metadata[0].ge
    assert timedelta(minutes=smallest) > MARGIN


def test_ahead_refuses_with_one_line_naming_both_clocks() -> None:
    with pytest.raises(ClockAheadError) as caught:
        require_clock_agrees(
            ZENDESK + timedelta(days=1096), ZENDESK, action="delete", need_evidence=True
        )
    message = str(caught.value)
    assert "\n" not in message
    assert "2029-03-10T12:00:00Z" in message and "2026-03-10T12:00:00Z" in message
    assert "1096 days ahead" in message and "refusing to delete" in message


def test_behind_is_reported_not_refused() -> None:
    check = require_clock_agrees(
        ZENDESK - timedelta(days=2), ZENDESK, action="delete", need_evidence=True
    )
    assert check is Verdict.BEHIND


def test_no_evidence_refuses_only_where_evidence_is_required() -> None:
    assert require_clock_agrees(ZENDESK, None, action="sync", need_evidence=False) is (
        Verdict.UNKNOWN
    )
    with pytest.raises(ClockAheadError, match="no readable Date header"):
        require_clock_agrees(ZENDESK, None, action="delete", need_evidence=True)
    with pytest.raises(ClockAheadError, match="no Zendesk answer"):
        check_against_zendesk(object(), lambda: ZENDESK, action="delete", need_evidence=True)
    assert check_against_zendesk(object(), lambda: ZENDESK, action="x", need_evidence=False) is None


# ---------------------------------------------------------------- the evidence


def _client() -> ZendeskClient:
    settings = ZendeskSettings(base_url=ZD_BASE, email=ZD_EMAIL, api_token=ZD_TOKEN)
    return ZendeskClient(settings, HttpClient(HttpSettings(), service="zendesk"))


def _me(date: str | None) -> dict[str, Any]:
    headers = {"Date": date} if date is not None else {}
    user = {"id": 7, "role": "admin"}
    return {"json": {"user": user}, "headers": headers}


@responses.activate
def test_the_client_reads_zendesks_date_from_the_credential_check() -> None:
    client = _client()
    assert client.server_time() is None  # nothing answered yet
    responses.add(
        responses.GET, f"{ZD_BASE}/api/v2/users/me", **_me(format_datetime(ZENDESK, True))
    )
    ahead = ZENDESK + timedelta(days=3 * 365)
    with pytest.raises(ClockAheadError, match="ahead of Zendesk's"):
        check_against_zendesk(client, lambda: ahead, action="delete", need_evidence=True)
    assert client.server_time() == ZENDESK
    right = check_against_zendesk(
        client, lambda: ZENDESK + timedelta(seconds=3), action="delete", need_evidence=True
    )
    assert right is Verdict.OK


@pytest.mark.parametrize("date", [None, "", "not a date", "Tue, 99 Foo 2026 99:99:99 GMT"])
@responses.activate
def test_a_missing_or_junk_date_is_no_evidence(date: str | None) -> None:
    client = _client()
    responses.add(responses.GET, f"{ZD_BASE}/api/v2/users/me", **_me(date))
    with pytest.raises(ClockAheadError, match="no readable Date header"):
        check_against_zendesk(client, lambda: ZENDESK, action="delete", need_evidence=True)
    assert client.server_time() is None
