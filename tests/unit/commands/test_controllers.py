"""Who answers for which chats (commands.controllers): the company for its own widgets, a
client (`[[clients]]`) for its widgets with the company as its processor, one group per
controller for a person with chats on both; and how the pack's page says so."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from snapzen.commands import controllers
from snapzen.commands.access_text import render_html
from snapzen.support.settings_gdpr import Client

OWN = "1a2b3c4d-0000-4000-8000-000000000001"
SHOP = "1a2b3c4d-0000-4000-8000-000000000002"
LADEN = "1a2b3c4d-0000-4000-8000-000000000003"


def _settings() -> Any:
    clients = [
        Client(name="Shop UK Ltd", contact="privacy@shop.example", controller_country="GB",
               widgets=[SHOP]),
        Client(name="Laden GmbH", contact="datenschutz@laden.example", controller_country="DE",
               widgets=[LADEN]),
    ]  # fmt: skip
    record = SimpleNamespace(controller="Chat Co Ltd", contact="privacy@chat.example")
    return SimpleNamespace(record=record, clients=clients)


def test_chats_are_grouped_by_controller_company_first_then_clients_in_settings_order() -> None:
    groups = controllers.group(
        _settings(), [("c4", LADEN), ("c1", OWN), ("c2", SHOP), ("c3", None), ("c5", LADEN)]
    )
    assert [(g.name, g.processor, g.case_ids) for g in groups] == [
        ("Chat Co Ltd", None, ["c1", "c3"]),  # a chat of no known widget is the company's
        ("Shop UK Ltd", "Chat Co Ltd", ["c2"]),
        ("Laden GmbH", "Chat Co Ltd", ["c4", "c5"]),
    ]
    laden = groups[2].as_dict()
    assert laden["contact"] == "datenschutz@laden.example"
    assert laden["answered_on_behalf_of_controller"] is True
    assert laden["legal_basis_of_answer"] == "Art. 28(3)(e) GDPR"
    assert groups[0].as_dict()["legal_basis_of_answer"] is None


def test_a_client_only_person_has_the_client_alone_and_nobody_has_the_company() -> None:
    only = controllers.group(_settings(), [("c2", SHOP)])
    assert [g.name for g in only] == ["Shop UK Ltd"]
    nobody = controllers.group(_settings(), [])
    assert [(g.name, g.processor) for g in nobody] == [("Chat Co Ltd", None)]


def _pack(groups: list[controllers.Controller]) -> dict[str, Any]:
    info = {"controller": "Chat Co Ltd", "contact": "privacy@chat.example",
            "data_categories": ["chat_content"]}  # fmt: skip
    return {"information": info, "controllers": [g.as_dict() for g in groups],
            "generated_at": "2026-12-06T10:00:00Z"}  # fmt: skip


def test_the_page_names_the_client_as_controller_and_the_company_as_its_processor() -> None:
    html = render_html(_pack(controllers.group(_settings(), [("c2", SHOP)])))
    assert "Your personal data held by Shop UK Ltd</h1>" in html
    assert "Shop UK Ltd decides how the data of these chats is used (the controller)" in html
    assert "privacy@shop.example" in html
    assert (
        "Chat Co Ltd runs the chat service on Shop UK Ltd&#39;s website as its processor, "
        "and answers this request on Shop UK Ltd&#39;s behalf (Art. 28(3)(e) GDPR)"
    ) in html
    assert "For the chats c2, you may also write to Shop UK Ltd, their controller" in html
    assert "Who we are" not in html


def test_a_mixed_person_reads_each_controller_with_its_chats() -> None:
    groups = controllers.group(_settings(), [("c1", OWN), ("c4", LADEN)])
    html = render_html(_pack(groups))
    assert "held by Chat Co Ltd and Laden GmbH</h1>" in html
    assert "Chat Co Ltd decides how your data is used (the controller)." in html
    assert "Your chats concerned: c1." in html and "Your chats concerned: c4." in html


def test_the_company_alone_reads_as_before() -> None:
    html = render_html(_pack(controllers.group(_settings(), [("c1", OWN)])))
    assert "<h2>Who we are</h2><p>Chat Co Ltd decides how your data is used" in html
    assert "processor" not in html
