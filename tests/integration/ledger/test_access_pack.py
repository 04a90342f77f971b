"""The access pack a DPO sends as it is: refused while Art. 15 information is missing, written
for the person (no codes), every recipient, SnapEngage's own copy, foreign tickets held back.

A real SQLite ledger, the sandbox (in-process) as Zendesk and the SnapEngage Logs API."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from snapzen.commands.access_request import missing_for_access, write_pack
from snapzen.commands.erase_request import Chat, at_snapengage
from snapzen.ledger.evidence.art30_record import missing_fields
from snapzen.ledger.evidence.chain import subject_ref
from snapzen.ledger.store.db import open_db, transaction
from snapzen.support.errors import ConfigError, RetriesExhausted
from snapzen.support.settings import Settings, load_settings
from tests.ledger_fixtures import ALICE, KEY, append, transfer_fields

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
REF = subject_ref(KEY, ALICE)
# What the person must never read: the ledger's codes, sequence numbers, hashes, tags.
CODES = re.compile(
    r"\b(art45|art46|art49_1a|art49_1b|synced|consent_refused|type_offline_not_synced|seq|"
    r"not_restricted|gdpr_[a-z0-9_]+|[0-9a-f]{64})\b"
)


class Zendesk:
    """Tickets by id; search by requester returns snapzen's and a foreign (email) ticket."""

    def __init__(self) -> None:
        self.tickets = {
            1001: {"id": 1001, "external_id": "snapengage:c-sent",
                   "subject": "Chat with Alice", "status": "solved",
                   "created_at": "2026-11-20T10:00:00Z", "tags": ["gdpr_art45"]},
            7001: {"id": 7001, "subject": "Invoice question", "status": "open",
                   "created_at": "2026-10-01T09:00:00Z", "via": {"channel": "email"}},
        }  # fmt: skip
        self.comments = {
            1001: [{"body": "Hello, my order is late", "created_at": "2026-11-20T10:00:00Z"}],
            7001: [{"body": "Bob here, cc Alice: invoice 17", "created_at": "2026-10-01"}],
        }
        self.read: list[int] = []

    def show_ticket(self, ticket_id: int) -> dict[str, Any] | None:
        self.read.append(ticket_id)
        return self.tickets.get(ticket_id)

    def ticket_comments(self, ticket_id: int) -> list[dict[str, Any]] | None:
        return self.comments.get(ticket_id)

    def requested_tickets(self, email: str) -> list[dict[str, Any]]:
        assert email == ALICE
        return list(self.tickets.values())


@dataclass
class Page:
    cases: list[Any]


class SnapEngage:
    """The Logs API's pages for a widget and window: every field it holds about the chat."""

    def __init__(self, cases: list[dict[str, Any]]) -> None:
        self.cases = cases
        self.asked: list[tuple[str, date, date]] = []

    def iter_pages(self, widget_id: str, start: date, end: date) -> Iterator[Page]:
        self.asked.append((widget_id, start, end))
        yield Page([c for c in self.cases if c["widget_id"] == widget_id])


def _se_case(case_id: str, message: str) -> dict[str, Any]:
    return {
        "id": case_id, "widget_id": "w1", "type": "chat", "requested_by": ALICE,
        "ip_address": "203.0.113.9", "city": "Leeds", "country": "United Kingdom",
        "browser": "Firefox", "os": "Linux",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 "
        "Firefox/128.0" + "-very-long-token" * 20,
        "page_url": "https://shop.example/" + "a-very-long-path-segment/" * 12,
        "transcripts": [{"alias": "Alice", "message": message}],
    }  # fmt: skip


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.db"
    db = open_db(path, create=True)
    sent = transfer_fields(1, case_id="c-sent", subject_ref=REF, ticket_id=1001,
                           legal_basis="art45", recorded_at="2026-11-20T10:05:00Z",
                           mechanism_ref="UK GDPR: SI 2023/1028 (UK-US data bridge)")  # fmt: skip
    append(db, [sent])
    with transaction(db) as conn:
        conn.execute("UPDATE cases SET started_at = '2026-11-20T10:00:00Z' WHERE case_id = ?",
                     ("c-sent",))  # fmt: skip
        for case_id, status, reason in (
            ("c-declined", "withheld", "consent_refused"),
            ("c-offline", "ignored", "type_offline_not_synced"),
        ):
            conn.execute(
                """INSERT INTO cases (case_id, widget_id, started_at, status, reason,
                       subject_ref, first_seen_at, updated_at)
                   VALUES (?, 'w1', '2026-11-25T08:00:00Z', ?, ?, ?, 'x', 'x')""",
                (case_id, status, reason, REF),
            )
    db.conn.close()
    return path


def _settings(monkeypatch: pytest.MonkeyPatch, **record: str) -> Settings:
    monkeypatch.setenv("SNAPZEN_TRANSFER__CONTROLLER_COUNTRY", "GB")
    monkeypatch.setenv("SNAPZEN_TRANSFER__RECIPIENTS", json.dumps([
        {"name": "Zendesk, Inc.", "country": "US", "system": "zendesk", "basis": "adequacy",
         "certification": "DPF-1", "checked_on": "2026-11-01"},
        {"name": "Mailer GmbH", "country": "DE", "system": "other", "basis": "adequacy"},
    ]))  # fmt: skip
    for name, value in record.items():
        monkeypatch.setenv(f"SNAPZEN_RECORD__{name.upper()}", value)
    return load_settings()


def _pack(ledger: Path, settings: Settings, out: Path, **kw: Any) -> Any:
    db = open_db(ledger)
    try:
        return write_pack(db, settings, kw.pop("zendesk", Zendesk()), out, subject_ref=REF,
                          email=ALICE, now=NOW, **kw)  # fmt: skip
    finally:
        db.conn.close()


def test_refused_naming_each_empty_field_nothing_written_or_recorded(
    ledger: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(monkeypatch, controller="", contact="", complaint="")
    out = tmp_path / "pack"
    with pytest.raises(ConfigError) as refused:
        _pack(ledger, settings, out)
    text = str(refused.value)
    for field in ("record.controller", "record.contact", "record.complaint"):
        assert field in text
    assert not out.exists()
    db = open_db(ledger)
    kinds = {r[0] for r in db.conn.execute("SELECT event FROM events")}
    assert kinds == {"transfer"}  # no access_provided, no request journalled


def test_the_check_is_the_reports_plus_what_only_the_person_is_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _settings(monkeypatch, purposes="", rights="")
    missing = missing_for_access(settings)
    assert missing[: len(missing_fields(settings.record))] == missing_fields(settings.record)
    assert "record.purposes (SNAPZEN_RECORD__PURPOSES)" in missing
    assert "record.rights (SNAPZEN_RECORD__RIGHTS)" in missing


def test_the_page_is_for_the_person_and_the_json_keeps_the_codes(
    ledger: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(monkeypatch, dpo="Dee Pio, dpo@company.test")
    se = SnapEngage([_se_case("c-declined", "please do not send this abroad")])
    result = _pack(ledger, settings, tmp_path / "pack", chats_reader=se)
    assert result.complete and result.snapengage_copies == 1
    pack = json.loads(result.json_path.read_text())
    html = result.html_path.read_text()

    assert CODES.findall(html) == []
    # The JSON keeps the codes.
    chats = {c["case_id"]: c for c in pack["chats"]}
    assert chats["c-declined"]["reason"] == "consent_refused"
    assert chats["c-sent"]["status"] == "synced"
    # What, why, basis and safeguard, by whom, where, until when, what they can do.
    assert "withheld because you declined to have it sent abroad" in html
    assert "we do not archive this kind of conversation" in html
    assert ("Your chat was sent to Zendesk, Inc. in the United States, under the UK-US data "
            "bridge") in html  # fmt: skip
    assert "Test Company Ltd decides how your data is used" in html
    assert "privacy@company.test" in html and "Dee Pio" in html
    assert "Information Commissioner" in html  # the regulator of a UK controller
    # Every recipient actually used: SnapEngage (not configured as one), Zendesk, the other.
    names = [r["name"] for r in pack["information"]["recipients_detail"]]
    assert names == ["Zendesk, Inc.", "Mailer GmbH", "SnapEngage"]
    assert "SnapEngage, the chat service you used" in html and "Mailer GmbH in Germany" in html
    # SnapEngage's copy of the withheld chat, every field it returned.
    copy = chats["c-declined"]["snapengage_copy"]
    assert copy["ip_address"] == "203.0.113.9" and copy["city"] == "Leeds"
    assert "IP address" in html and "203.0.113.9" in html and "Firefox" in html
    assert "please do not send this abroad" in html
    assert chats["c-declined"]["snapengage_copy_state"] == "included"
    # The chat of 2026-11-20 is held until 2027-01-19 (60 days) but SnapEngage did not return it.
    assert chats["c-sent"]["snapengage_copy_state"] == "not_found"


@pytest.mark.parametrize(("days", "held"), [(15, False), (16, True), (17, True)])
def test_the_pack_and_the_erasure_response_agree_whether_snapengage_holds_a_chat(
    ledger: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, days: int, held: bool
) -> None:
    """c-sent started 2026-11-20; with 16 days SnapEngage deletes its copy today. On that day
    it may still hold it: the pack asks for the copy, and an erasure names SnapEngage."""
    settings = _settings(monkeypatch)
    settings.snapengage.retention_days = days
    se = SnapEngage([_se_case("c-sent", "hello")])
    result = _pack(ledger, settings, tmp_path / "pack", chats_reader=se)
    chats = {c["case_id"]: c for c in json.loads(result.json_path.read_text())["chats"]}
    in_pack = chats["c-sent"]["snapengage_copy_state"] != "deleted_by_snapengage"
    in_erasure = bool(at_snapengage([Chat("c-sent", date(2026, 11, 20), "w1")], NOW.date(), days))
    assert in_pack is in_erasure is held
    assert (chats["c-sent"]["snapengage_copy_state"] == "included") is held


class SnapEngageDown:
    def iter_pages(self, widget_id: str, start: date, end: date) -> Iterator[Page]:
        raise RetriesExhausted("snapengage logs: 503 five times")
        yield  # a generator, as the client's is


def test_snapengage_not_answering_leaves_the_request_open(
    ledger: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _pack(ledger, _settings(monkeypatch), tmp_path / "pack", chats_reader=SnapEngageDown())
    assert not result.complete  # the CLI exits 3: rerun
    assert sorted(result.snapengage_unreadable) == ["c-declined", "c-offline", "c-sent"]
    html = result.html_path.read_text()
    assert "it did not answer when we asked for its copy" in html
    db = open_db(ledger)
    status = db.conn.execute(
        "SELECT json_extract(details, '$.status') FROM events WHERE event = 'request'"
    ).fetchone()
    assert status == ("open",)


def test_foreign_ticket_listed_for_review_until_included(
    ledger: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(monkeypatch)
    zendesk = Zendesk()
    first = _pack(ledger, settings, tmp_path / "one", zendesk=zendesk)
    assert [t["ticket_id"] for t in json.loads(first.json_path.read_text())["tickets"]] == [1001]
    assert first.for_review == [
        {"ticket_id": 7001, "created_at": "2026-10-01T09:00:00Z", "channel": "email"}
    ]
    assert 7001 not in zendesk.read  # not even read before review
    assert "Bob here" not in first.html_path.read_text()

    second = _pack(ledger, settings, tmp_path / "two", include_tickets=[7001])
    tickets = {t["ticket_id"]: t for t in json.loads(second.json_path.read_text())["tickets"]}
    assert tickets[7001]["created_by_snapzen"] is False and tickets[7001]["reviewed"] is True
    assert second.for_review == [] and "Bob here" in second.html_path.read_text()

    with pytest.raises(ConfigError, match="--include-ticket 1001"):
        _pack(ledger, settings, tmp_path / "three", include_tickets=[1001])


def test_page_css_prints_on_a4_without_fixed_widths(
    ledger: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _pack(ledger, _settings(monkeypatch), tmp_path / "pack")
    style = re.search(r"<style>(.*)</style>", result.html_path.read_text())
    assert style is not None
    css = style.group(1)
    assert "@page{size:A4" in css and "table-layout:fixed" in css
    assert re.search(r"width:\s*\d+(px|mm|cm|in|pt)", css) is None


def test_a_ticket_whose_external_id_is_another_chats_is_never_shown(
    ledger: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ledger's ticket id is trusted only with the chat's own external_id: a ticket
    answering with another chat's (a mis-recorded id) is named, its transcript left out."""
    settings = _settings(monkeypatch)
    zendesk = Zendesk()
    zendesk.tickets[1001]["external_id"] = "snapengage:someone-else"
    pack = _pack(ledger, settings, tmp_path / "mismatch", zendesk=zendesk)
    tickets = json.loads(pack.json_path.read_text())["tickets"]
    assert [(t["ticket_id"], t["state"]) for t in tickets] == [(1001, "not_this_chat")]
    assert "Hello, my order is late" not in pack.json_path.read_text()
    assert "transcript" not in tickets[0]
