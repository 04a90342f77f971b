"""subject.html prints on A4: rendered in headless Chromium as print media at the width of an
A4 page inside its margins, no element reaches past it (skipped without Chromium, as
test_web_browser.py is)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from snapzen.commands.access_text import render_html
from tests.e2e.ledger.test_web_browser import CHROMEDRIVER, CHROMIUM, CHROMIUM_FLAGS

# A4 is 210 mm wide; @page gives 15 mm margins: 180 mm printable, at 96 CSS px per inch.
PRINTABLE_PX = int(180 / 25.4 * 96)  # 680
LONG = "x" * 400  # one unbroken word: a URL, a user agent, a pasted token


def _pack() -> dict[str, Any]:
    copy = {
        "ip_address": "203.0.113.9", "user_agent": "Mozilla/5.0 " + LONG,
        "page_url": "https://shop.example/" + LONG, "city": "Leeds",
        "requester_details": {"name": "Alice", "emails": ["alice@example.com"]},
        "transcripts": [{"alias": "Alice", "message": "see " + LONG}],
    }  # fmt: skip
    return {
        "generated_at": "2026-12-06T12:00:00Z",
        "information": {
            "controller": "Test Company Ltd", "contact": "privacy@company.test",
            "purposes": ["customer support chat archiving"], "lawful_basis": "Art. 6(1)(f)",
            "data_categories": ["identity", "contact_data", "chat_content"],
            "recipients_detail": [
                {"name": "Zendesk, Inc.", "system": "zendesk", "country": "US",
                 "basis": "art45", "mechanism": "UK GDPR: SI 2023/1028 (UK-US data bridge)"},
                {"name": "SnapEngage", "system": "snapengage", "country": None, "basis": None},
            ],
            "snapengage_retention_days": 60, "retention": "2 years " + LONG,
            "rights": "You may ask.", "complaint": "You may complain.", "regulator": "the ICO",
        },
        "chats": [
            {"case_id": "c-" + LONG, "started_at": "2026-11-25T08:00:00Z", "status": "withheld",
             "reason": "consent_refused", "snapengage_deletes_on": "2027-01-24",
             "snapengage_copy_state": "included", "snapengage_copy": copy},
        ],
        "tickets": [
            {"ticket_id": 1001, "state": "present", "subject": "Chat " + LONG,
             "status": "solved", "created_at": "2026-11-20T10:00:00Z",
             "transcript": [{"created_at": "2026-11-20", "body": "link: " + LONG}]},
        ],
        "ledger": [
            {"event": "transfer", "case_id": "other", "recorded_at": "2026-11-20T10:05:00Z",
             "recipient": "Zendesk, Inc. " + LONG, "destination_country": "US",
             "legal_basis": "art45", "mechanism_ref": "SI 2023/1028 (UK-US data bridge)"},
        ],
    }  # fmt: skip


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (apt-get install -y chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


WIDEST = """
const items = [document.documentElement, ...document.querySelectorAll('body *')];
return Math.max(document.documentElement.scrollWidth,
                ...items.map(e => Math.ceil(e.getBoundingClientRect().right)));
"""


@pytest.mark.browser
def test_no_element_is_wider_than_the_a4_printable_width(browser: Any, tmp_path: Path) -> None:
    page = tmp_path / "subject.html"
    page.write_text(render_html(_pack()), encoding="utf-8")
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": PRINTABLE_PX, "height": 1000, "deviceScaleFactor": 1, "mobile": False},
    )
    browser.get(page.as_uri())
    assert "Your personal data held by Test Company Ltd" in browser.title + browser.page_source
    widest = browser.execute_script(WIDEST)
    assert widest <= PRINTABLE_PX, f"{widest}px wide; A4 inside its margins is {PRINTABLE_PX}px"
    # And it prints: Chromium lays it out on A4 paper.
    pdf = browser.execute_cdp_cmd("Page.printToPDF", {"preferCSSPageSize": True})
    assert pdf["data"]
