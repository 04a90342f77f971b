"""`[[clients]]`: processor mode. A live-chat company runs chat on its clients' websites; each
client is the controller of its widgets' chats (Art. 28), with its own establishment, its own
recipients and bases, and its own Art. 30(2) record in the company's books. A widget belongs
to at most one client; a widget of no client is the company's own (controller mode)."""

from __future__ import annotations

from typing import Any

from pydantic import (
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from snapzen.support import setting_checks
from snapzen.support.settings_base import CommaList, Section, json_text, split_list
from snapzen.support.settings_transfer import Recipient, TransferSettings


class Client(Section):
    name: str = Field(min_length=1)
    contact: str = ""  # the controller's contact details (Art. 30(2)(a))
    controller_country: str | None = None
    widgets: CommaList = Field(default_factory=list)
    recipients: list[Recipient] | None = None  # None: the company's
    _transfer: TransferSettings | None = PrivateAttr(default=None)

    _split = field_validator("widgets", mode="before")(split_list)
    _widget_ids = field_validator("widgets")(setting_checks.check_widgets)

    @model_validator(mode="after")
    def _own_transfer(self) -> Client:
        if not self.widgets:
            raise ValueError(f"client {self.name!r} needs its widgets (widget ids)")
        values: dict[str, Any] = {"controller_country": self.controller_country}
        if self.recipients is not None:
            values["recipients"] = self.recipients
        try:
            self._transfer = TransferSettings.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(_problem(error) for error in exc.errors())
            raise ValueError(f"client {self.name!r}: {problems}") from None
        self.controller_country = self._transfer.controller_country
        return self

    @property
    def transfer(self) -> TransferSettings:
        """The client's regime and recipients (only these are read from it; retention and
        the sweep follow the company's [transfer] settings)."""
        assert self._transfer is not None  # set by the validator
        return self._transfer


def _problem(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "recipients"
    return f"{where}: {str(error['msg']).removeprefix('Value error, ')}"


def parse_clients(value: Any) -> Any:
    """SNAPZEN_CLIENTS as a JSON list (a TOML file gives `[[clients]]` tables)."""
    return json_text(value, "list of clients")


def check_clients(clients: list[Client], info: ValidationInfo) -> list[Client]:
    names = [client.name for client in clients]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ValueError(f"client names must be unique: {', '.join(twice)}")
    owner: dict[str, str] = {}
    for client in clients:
        for widget in client.widgets:
            if widget in owner:
                raise ValueError(
                    f"widget {widget} belongs to both {owner[widget]!r} and {client.name!r}; "
                    "a widget has at most one controller"
                )
            owner[widget] = client.name
    snapengage = info.data.get("snapengage")
    synced = set(getattr(snapengage, "widgets", None) or [])
    stray = sorted(widget for widget in owner if synced and widget not in synced)
    if stray:
        raise ValueError(
            f"widget(s) {', '.join(stray)} of a client are not in snapengage.widgets, so none "
            "of their chats would be read"
        )
    return clients


def client_of(clients: list[Client], widget: str) -> Client | None:
    return next((client for client in clients if widget in client.widgets), None)
