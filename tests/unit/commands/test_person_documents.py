"""What the person reads, from the Jinja2 templates: on the access pack's page, markup that
was typed into a chat, sent by Zendesk or written in the settings shows as text, wherever it
lands (autoescape on, nothing rendered raw); the erasure response is plain text, its
characters as they are (no HTML escaping there)."""

from __future__ import annotations

from typing import Any

from snapzen.commands import controllers
from snapzen.commands.access_text import render_html
from snapzen.commands.erasure_response import render_text
from snapzen.ledger.rights import notices

MARKUP = "<b onmouseover='x()'>M&M</b>"  # a tag, an attribute, quotes and an ampersand
SHOWN = "&lt;b onmouseover=&#39;x()&#39;&gt;M&amp;M&lt;/b&gt;"


def _pack() -> dict[str, Any]:
    """A pack whose every text, from the settings, the ledger, Zendesk and SnapEngage, is
    MARKUP."""
    information: dict[str, Any] = {
        name: MARKUP
        for name in (
            "controller", "contact", "dpo", "lawful_basis", "source", "retention", "rights",
            "complaint", "regulator", "automated_decisions", "safeguards_written",
        )
    }  # fmt: skip
    information |= {
        "purposes": [MARKUP],
        "data_categories": ["identity"],
        "snapengage_retention_days": 60,
        "recipients_detail": [
            {"name": MARKUP, "system": "zendesk", "country": "US", "basis": "art46",
             "mechanism": MARKUP},
            {"name": MARKUP, "system": "snapengage", "country": None, "basis": None},
            {"name": MARKUP, "system": "other", "country": "DE", "basis": None},
        ],
    }  # fmt: skip
    copy = {
        "ip_address": MARKUP, "page_url": MARKUP,
        "requester_details": {"name": MARKUP, "emails": [MARKUP]},
        "javascript_variables": [{"name": MARKUP, "value": MARKUP}],
        "transcripts": [{"alias": MARKUP, "message": MARKUP}],
    }  # fmt: skip
    return {
        "generated_at": "2026-12-06T12:00:00Z",
        "information": information,
        "controllers": [
            {"controller": MARKUP, "contact": MARKUP, "processor": MARKUP, "case_ids": ["c1"]},
            {"controller": MARKUP, "contact": MARKUP, "processor": None, "case_ids": ["c2"]},
        ],
        "chats": [
            {"case_id": "c1", "started_at": "2026-11-25T08:00:00Z", "status": "synced",
             "snapengage_deletes_on": "2027-01-24", "snapengage_copy_state": "included",
             "snapengage_copy": copy},
        ],
        "tickets": [
            {"ticket_id": 1001, "state": "present", "subject": MARKUP, "status": MARKUP,
             "created_at": "2026-11-20T10:00:00Z",
             "transcript": [{"created_at": MARKUP, "body": MARKUP}]},
        ],
        "ledger": [
            {"event": "transfer", "case_id": "c1", "recorded_at": "2026-11-20T10:05:00Z",
             "recipient": MARKUP, "destination_country": "US", "legal_basis": "art46",
             "mechanism_ref": MARKUP},
            {"event": "transfer", "case_id": "other", "recorded_at": "2026-11-21T10:05:00Z",
             "recipient": MARKUP, "destination_country": "US", "legal_basis": "art46",
             "mechanism_ref": MARKUP},
        ],
        "forgotten": {"explanation": MARKUP},
    }  # fmt: skip


def test_the_pack_page_shows_markup_as_text_wherever_it_comes_from() -> None:
    html = render_html(_pack())
    assert "<b " not in html and "onmouseover='" not in html and "M&M" not in html
    # Each place the text lands shows it escaped (a place that dropped it would not count).
    assert html.count(SHOWN) >= 30, html.count(SHOWN)


def test_the_erasure_response_is_plain_text_with_its_characters_as_they_are() -> None:
    response = {
        "request_id": "req-1", "answered_on": "2026-12-06",
        "deleted": {"zendesk_tickets": [], "chats_never_sent": [], "zendesk_profile": False},
        "not_deleted": {"legal_hold": [], "failed": []}, "zendesk_profile": "not_requested",
        "remains": [{"where": "Zendesk", "what": MARKUP, "id": 7, "until": "until 2027-01-01",
                     "why": MARKUP}],
        "art19_recipients": [{"recipient": MARKUP, "status": notices.TO_NOTIFY,
                              "on": "2026-12-06", "how": MARKUP}],
        "controllers": [controllers.Controller(MARKUP, MARKUP, "Chat Co", ["c1"]).as_dict()],
    }  # fmt: skip
    text = render_text(response)
    assert f"- Zendesk: {MARKUP} 7, until 2027-01-01 ({MARKUP})" in text
    assert f"- {MARKUP}: to be told (owed since 2026-12-06); what we tell them: {MARKUP}" in text
    assert "&amp;" not in text and "&lt;" not in text and "&#39;" not in text


def test_what_remains_reads_until_once_whether_the_value_is_a_day_or_a_phrase() -> None:
    from types import SimpleNamespace

    from snapzen.commands.summaries import said

    remains = [
        {"where": "SnapEngage", "what": "chat", "id": "c1", "until": "2027-01-05", "why": "w"},
        {"where": "backups", "what": "backup", "id": None, "until": "until rotated out",
         "why": "w"},
    ]  # fmt: skip
    response = {
        "request_id": "req-1", "answered_on": "2026-12-06",
        "deleted": {"zendesk_tickets": [], "chats_never_sent": [], "zendesk_profile": False},
        "not_deleted": {"legal_hold": [], "failed": []}, "zendesk_profile": "not_requested",
        "remains": remains, "art19_recipients": [], "controllers": [],
    }  # fmt: skip
    letter = render_text(response)
    assert "- SnapEngage: chat c1, until 2027-01-05 (w)" in letter
    assert "- backups: backup, until rotated out (w)" in letter
    shown = "\n".join(
        text for _, text in said("erase_response", a=SimpleNamespace(response=response, path="p"))
    )
    assert "remains: SnapEngage: chat c1 until 2027-01-05" in shown
    assert "remains: backups: backup until rotated out" in shown
    assert "until until" not in letter + shown
