"""Who answers for which chats of a person: the company, or the client it is a processor for.

With ``[[clients]]`` the company runs chat on its clients' websites: each client is the
controller of its widgets' chats and the company its processor (Art. 28). A data-subject
request about those chats is the client's to answer; the company answers it on the client's
behalf, as the processing contract makes it assist the client (Art. 28(3)(e)). So an access
pack or an erasure response names, for each group of chats, its controller (name and contact
from the client's settings) and, for a client, the company as processor. A person with chats
on both gets one group per controller. Pure: settings and (case id, widget id) pairs in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from snapzen.support.settings import Settings
from snapzen.support.settings_gdpr import client_of

ON_BEHALF = "Art. 28(3)(e) GDPR"


@dataclass
class Controller:
    name: str
    contact: str
    processor: str | None = None  # the company, when it acts for a client
    case_ids: list[str] = field(default_factory=list)

    @property
    def client(self) -> bool:
        return self.processor is not None

    def as_dict(self) -> dict[str, Any]:
        return {
            "controller": self.name,
            "contact": self.contact,
            "processor": self.processor,
            "answered_on_behalf_of_controller": self.client,
            "legal_basis_of_answer": ON_BEHALF if self.client else None,
            "case_ids": self.case_ids,
        }


def group(settings: Settings, chats: Iterable[tuple[str, str | None]]) -> list[Controller]:
    """The person's chats grouped by controller: the company's own first, then each client in
    settings order. A chat of unknown widget is the company's (controller mode). With no
    chat at all, the company alone (it received the request)."""
    company = Controller(settings.record.controller, settings.record.contact)
    clients: dict[str, Controller] = {}
    for case_id, widget in chats:
        client = client_of(settings.clients, widget) if widget else None
        if client is None:
            company.case_ids.append(case_id)
            continue
        entry = clients.setdefault(
            client.name, Controller(client.name, client.contact, settings.record.controller)
        )
        entry.case_ids.append(case_id)
    ordered = [clients[c.name] for c in settings.clients if c.name in clients]
    return ([company] if company.case_ids or not ordered else []) + ordered


def sentence(party: Mapping[str, Any]) -> str:
    """Who decides and who answers for one controller's chats (``Controller.as_dict``, as the
    documents carry it), in plain words for the person."""
    name, processor = party["controller"], party.get("processor")
    contact = party.get("contact") or ""
    if processor is None:
        return (
            f"{name} decides how your data is used (the controller). You can reach them at "
            f"{contact}."
        )
    return (
        f"{name} decides how the data of these chats is used (the controller); you can reach "
        f"them at {contact}. {processor} runs the chat service on {name}'s website as its "
        f"processor, and answers this request on {name}'s behalf ({ON_BEHALF})."
    )
