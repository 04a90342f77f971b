"""Processor mode (issue 26): the Art. 30(2) record the company keeps for each client it
processes chats for, and the per-client summary beside its own Art. 30(1) record.

Decision rows of a client's widgets carry ``details.client`` (the client's name); the
company's own rows carry none. Art. 30(2): (a) the processor and each controller (name,
contact), (b) the categories of processing carried out for it, (c) its transfers to third
countries with their safeguards, (d) the security measures.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from snapzen.ledger.evidence.art30_record import NOT_SET, transfers_by_recipient

CLIENT = "json_extract(events.details, '$.client')"


def scoped(where: str, params: list[Any], client: str | None) -> tuple[str, list[Any]]:
    """``where`` narrowed to one client's rows, or to the company's own (``client`` None)."""
    condition = f"{CLIENT} IS NULL" if client is None else f"{CLIENT} = ?"
    extra = [] if client is None else [client]
    joined = f"{where} AND {condition}" if where else f" WHERE {condition}"
    return joined, [*params, *extra]


def art30_2_record(
    conn: sqlite3.Connection,
    record: Any,
    client: Any,
    where: str = "",
    params: list[Any] | None = None,
) -> dict[str, Any]:
    """``record``: the company's RecordSettings (it is the processor); ``client``: a Client."""
    clause, values = scoped(where, list(params or []), client.name)
    transfers = transfers_by_recipient(conn, f"{clause} AND", values)
    transfer = client.transfer
    return {
        "a_processor": record.controller or NOT_SET,
        "a_processor_contact": record.contact or NOT_SET,
        "a_processor_dpo": record.dpo or NOT_SET,
        "a_controller": client.name,
        "a_controller_contact": client.contact or NOT_SET,
        "a_controller_country": transfer.controller_country,
        "b_processing": [
            f"{purpose}, on the controller's documented instructions (Art. 28(3)(a))"
            for purpose in record.purposes
        ],
        "c_recipient_bases": transfer.describe_recipients(),
        "c_transfers": transfers,
        "d_security_measures": list(record.security_measures) or [NOT_SET],
    }


LABELS_30_2 = {
    "a_processor": "(a) Processor",
    "a_processor_contact": "(a) Processor's contact",
    "a_processor_dpo": "(a) Processor's DPO",
    "a_controller": "(a) Controller",
    "a_controller_contact": "(a) Controller's contact",
    "a_controller_country": "(a) Controller established in",
    "b_processing": "(b) Categories of processing carried out for the controller",
    "c_recipient_bases": "(c) Recipients and the basis of each transfer",
    "d_security_measures": "(d) Security measures",
}


def client_summary(
    conn: sqlite3.Connection, clients: list[Any], where: str = "", params: list[Any] | None = None
) -> list[dict[str, Any]]:
    """One line per client: its controller's country and its decisions by event."""
    out = []
    for client in clients:
        clause, values = scoped(where, list(params or []), client.name)
        counts = dict(
            conn.execute(
                f"SELECT event, count(*) FROM events{clause} "
                "AND event IN ('transfer', 'sent', 'withheld') GROUP BY event",
                values,
            ).fetchall()
        )
        out.append(
            {
                "client": client.name,
                "controller_country": client.transfer.controller_country,
                "transfers": int(counts.get("transfer", 0)),
                "sent_not_restricted": int(counts.get("sent", 0)),
                "withheld": int(counts.get("withheld", 0)),
            }
        )
    return out
