"""Every code the ledger can hold has a plain sentence for the person (access_words.html).

The codes are collected from the source, not listed here: a new withheld reason, ledger event,
legal basis or status added anywhere in snapzen/ fails this test until it has its sentence."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest

from snapzen.commands import access_text
from snapzen.ledger.evidence.events import STATUS_AFTER, Event
from snapzen.ledger.rights import holds, requests
from snapzen.ledger.store.case_status import CaseStatus
from snapzen.ledger.store.transitions import ERASED_REASON
from snapzen.policy.models import LegalBasis
from snapzen.policy.transform import SENT_CATEGORIES

CODE = re.compile(r"^[a-z][a-z0-9_]*$")  # a code, not a message (log lines use reason= too)
SOURCE = Path(__file__).resolve().parents[3] / "snapzen"


def _literals() -> tuple[set[str], set[str]]:
    """(events, reasons) written as literals anywhere in snapzen/: ``"event": "x"`` in a dict,
    ``reason="x"`` as a keyword, and what a ``*_problem`` function returns (consent)."""
    events: set[str] = set()
    reasons: set[str] = set()
    for path in SOURCE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                # Module constants naming an event: EVENT = "request", FLAG_EVENT = "...".
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
                if any(n == "EVENT" or n.endswith("_EVENT") for n in names) and isinstance(
                    node.value.value, str
                ):
                    events.add(node.value.value)
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if (
                        isinstance(key, ast.Constant)
                        and key.value == "event"
                        and isinstance(value, ast.Constant)
                        and isinstance(value.value, str)
                    ):
                        events.add(value.value)
            elif isinstance(node, ast.keyword) and node.arg == "reason":
                # every literal the value can take (a conditional's branches too)
                for sub in ast.walk(node.value):
                    if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                        reasons.add(sub.value)
            elif isinstance(node, ast.FunctionDef) and node.name.endswith("_problem"):
                for sub in ast.walk(node):
                    if (
                        isinstance(sub, ast.Return)
                        and isinstance(sub.value, ast.Constant)
                        and isinstance(sub.value.value, str)
                    ):
                        reasons.add(sub.value.value)
    return {e for e in events if CODE.match(e)}, {r for r in reasons if CODE.match(r)}


EVENTS, REASONS = _literals()
words = access_text.words()  # the template's macros and tables
UNEXPLAINED = "explain on request"  # the fallback of a code with no sentence
# Every event the chain accepts is a member of Event (issue 25: the chain refuses any other
# name), so the enum is the list; a literal found elsewhere is listed too.
ALL_EVENTS = {event.value for event in Event} | EVENTS
ALL_EVENTS |= set(STATUS_AFTER) | {Event.RUN, requests.EVENT, holds.ADDED, holds.REMOVED}


def test_the_scan_finds_the_codes_it_should() -> None:
    # Guards the scan itself: if it found nothing, the tests below would pass vacuously.
    assert {"access_provided", "erased", "expired", "transfer", "run", "request"} <= ALL_EVENTS
    assert {"consent_refused", "consent_without_evidence", "destination_in_area"} <= REASONS


@pytest.mark.parametrize("event", sorted(ALL_EVENTS))
def test_every_ledger_event_has_a_sentence(event: str) -> None:
    text = words.event({"event": event})
    assert text != "A record our staff will explain on request.", (
        f"add a sentence for ledger event {event!r} to access_words"
    )


@pytest.mark.parametrize("reason", sorted(REASONS | {ERASED_REASON}))
def test_every_decision_reason_has_a_sentence(reason: str) -> None:
    assert UNEXPLAINED not in words.reason(reason), f"add a sentence for {reason!r} to access_words"


@pytest.mark.parametrize(
    ("codes", "sentence"),
    [
        ([b.value for b in LegalBasis], lambda code: words.basis(code)),
        ([s.value for s in CaseStatus], lambda code: words.status(code)),
        (list(SENT_CATEGORIES), lambda code: words.CATEGORIES.get(code, UNEXPLAINED)),
        (list(requests.KINDS), lambda code: words.REQUEST_KINDS.get(code, UNEXPLAINED)),
    ],
    ids=["legal bases", "case statuses", "data categories", "request kinds"],
)
def test_every_enumerated_code_has_a_sentence(codes: list[str], sentence: Any) -> None:
    assert [code for code in codes if UNEXPLAINED in sentence(code)] == []


def test_patterned_reasons_read_as_sentences() -> None:
    assert words.reason("type_offline_not_synced") == (
        "not sent: we do not archive this kind of conversation (for example an offline message)"
    )
    assert "set it aside" in words.reason("dismissed: duplicate of 12")
    assert words.reason("consent_refused") == (
        "withheld because you declined to have it sent abroad"
    )


def test_a_transfer_reads_as_a_sentence_naming_recipient_country_and_safeguard() -> None:
    row = {
        "event": "transfer",
        "recipient": "Zendesk, Inc.",
        "destination_country": "US",
        "legal_basis": "art45",
        "mechanism_ref": "UK GDPR: The Data Protection (Adequacy) (United States of America) "
        "Regulations 2023, SI 2023/1028 (UK-US data bridge) (certification DPF-1, checked "
        "2026-11-01)",
    }
    text = words.event(row)
    assert text.startswith("Your chat was sent to Zendesk, Inc. in the United States, under "
                           "the UK-US data bridge")  # fmt: skip
    assert "adequacy" in text and "art45" not in text and "certification" not in text
    kept = words.event({**row, "retention_until": "2028-11-20"})
    assert kept.endswith("It is kept there until 20 November 2028, then deleted.")
    consent = words.event({**row, "legal_basis": "art49_1a", "mechanism_ref": None})
    assert "you explicitly agreed" in consent and "art49" not in consent


def test_safeguard_instruments_are_named() -> None:
    assert access_text.instrument_name("idta IDTA-7 (TRA 2026-01-02)") == (
        "the UK International Data Transfer Agreement"
    )
    assert access_text.instrument_name(
        "EU GDPR: Decision (EU) 2023/1795 (EU-US Data Privacy Framework)"
    ) == ("the EU-US Data Privacy Framework")


def test_erasure_and_request_events_carry_their_reason() -> None:
    erased = words.event(
        {"event": "erased", "ticket_id": 115, "details": {"reason": "consent_withdrawn"}}
    )
    assert erased == "Your ticket number 115 was deleted because you withdrew your consent."
    told = words.event(
        {"event": "recipient_notice", "recipient": "SnapEngage", "details": {"status": "to_notify"}}
    )
    assert told.startswith("SnapEngage must still be asked by us to delete your data")
    asked = words.event({"event": "request", "details": {"kind": "access"}})
    assert asked == "Your request (a copy of your data) was recorded."


def test_dates_read_as_dates() -> None:
    assert access_text.day("2027-01-24") == "24 January 2027"
    assert access_text.moment("2026-11-25T08:00:00Z") == "25 November 2026 at 08:00 UTC"


def test_request_clock_events_read_as_sentences() -> None:
    paused = words.event(
        {"event": "request_paused", "details": {"kind": "erasure", "reason": "identity"}}
    )
    assert paused == (
        "We paused the time limit for your request (erasure of your data) while we asked you "
        "to confirm your identity."
    )
    extended = words.event(
        {"event": "request_extended", "details": {"kind": "access", "months": 1}}
    )
    assert "by 1 month(s)" in extended and "request_" not in extended


def test_a_notice_recorded_as_done_reads_as_told_by_us() -> None:
    row = {"event": "recipient_notice", "recipient": "Acme CRM GmbH",
           "details": {"status": "notified", "closes": "ntc-1", "on": "2026-12-07"}}  # fmt: skip
    assert words.event(row) == (
        "We told Acme CRM GmbH of your erasure and asked it to delete your data."
    )


def test_snapengage_fields_read_from_the_ip_are_named_as_the_person_knows_them() -> None:
    """SnapEngage's copy names its location fields by what they hold, and says they come from
    the IP address: its `country_code` (what SnapEngage sends) is "Country", not a code."""
    copy = {"ip_address": "203.0.113.9", "country_code": "GB", "city": "Leeds", "browser": "X"}
    chat = {"case_id": "c1", "started_at": "2026-11-25T08:00:00Z", "status": "synced",
            "snapengage_deletes_on": "2027-01-24", "snapengage_copy_state": "included",
            "snapengage_copy": copy}  # fmt: skip
    html = access_text.render_html({"information": {}, "chats": [chat], "tickets": []})
    rows = dict(re.findall(r"<tr><th>([^<]*)</th><td>([^<]*)</td></tr>", html))
    assert rows["Country (from your IP address)"] == "GB"
    assert rows["City (from your IP address)"] == "Leeds"
    assert rows["IP address"] == "203.0.113.9" and rows["Browser"] == "X"


@pytest.mark.parametrize(
    ("deletes_on", "expected"),
    [
        ("2026-10-01", "SnapEngage, the chat service, deleted its copy on 1 October 2026."),
        (None, "our record does not say when this chat started"),
    ],
)
def test_snapengages_deleted_copy_is_told_with_its_day_or_why_there_is_none(
    deletes_on: str | None, expected: str
) -> None:
    chat = {"case_id": "c1", "started_at": None, "status": "synced",
            "snapengage_deletes_on": deletes_on,
            "snapengage_copy_state": "deleted_by_snapengage"}  # fmt: skip
    html = access_text.render_html({"information": {}, "chats": [chat], "tickets": []})
    assert expected in html
    assert "copy on ." not in html
