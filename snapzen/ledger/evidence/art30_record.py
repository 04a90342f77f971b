"""The Art. 30(1) record of this processing (chat transcripts archived to Zendesk), as
`snapzen ledger report` prints it beside the transfer figures.

Fixed facts (controller, DPO, purposes, categories of data subjects, retention, security
measures) come from the ``[record]`` settings; what the ledger can show is read from it:
the categories of personal data actually sent, the recipients, and each destination with
the safeguard or derogation relied on and how many transfers used it.

Processor mode (issue 26): the Art. 30(2) record the company keeps for each client it
processes chats for, and the per-client summary beside its own Art. 30(1) record.

Decision rows of a client's widgets carry ``details.client`` (the client's name); the
company's own rows carry none. Art. 30(2): (a) the processor and each controller (name,
contact), (b) the categories of processing carried out for it, (c) its transfers to third
countries with their safeguards, (d) the security measures.

Both records are dicts of labelled fields (``LABELS``, ``LABELS_30_2``), rendered alike by
snapzen.commands.report_text.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from snapzen.ledger.evidence.audit import transfers_by
from snapzen.ledger.evidence.derogations import DEROGATION_BASES

NOT_SET = "(not set)"


# The Art. 30(1) fields only a person can fill in; `ledger report` refuses while one is empty.
MANDATORY = (
    ("controller", "record.controller", "SNAPZEN_RECORD__CONTROLLER"),
    ("contact", "record.contact", "SNAPZEN_RECORD__CONTACT"),
    ("lawful_basis", "record.lawful_basis (the Art. 6 basis)", "SNAPZEN_RECORD__LAWFUL_BASIS"),
    ("purposes", "record.purposes", "SNAPZEN_RECORD__PURPOSES"),
    ("security_measures", "record.security_measures", "SNAPZEN_RECORD__SECURITY_MEASURES"),
)

LEDGER_RETENTION = (
    "the transfer ledger (this file) is a processing activity of its own, kept as "
    "accountability evidence (Art. 5(2)) for as long as the transfers it records must be "
    "shown lawful; its rows hold keyed references, never names or emails, and the raw chat "
    "payloads are dropped once each chat is decided"
)


def ledger_retention(transfer: Any, record: Any = None) -> str:
    """Art. 30(1)(f) for the ledger: what it keeps, and when it forgets each month's people
    and the evidence of each request (``record.request_evidence_years``)."""
    years = int(transfer.retention_years)
    evidence = int(getattr(record, "request_evidence_years", 6))
    return (
        f"{LEDGER_RETENTION}. A chat's rows reference its person under a key of the month the "
        f"chat started; once every ticket of that month has expired ({years} "
        f"year{'' if years == 1 else 's'} from the chat's start), the retention sweep destroys "
        "the month's key and deletes its working rows (a chained `period_forgotten` event): "
        "the rows stay in the chain, linked to nobody. The evidence of answering each "
        "person's request (the request, its clock, the answer, erasures, holds, Art. 19 "
        "notices) is keyed by the month it was recorded and forgotten the same way "
        f"{evidence} year{'' if evidence == 1 else 's'} after the last step of every request "
        "of that month (`record.request_evidence_years`: as long as a complaint or a claim "
        "about the answer could be brought), once no notice is owed, no legal hold names "
        "it, and no older copy of the ledger or SnapEngage's own copy of an erased chat "
        "still needs its erasure record"
    )


# For an Art. 30(2) record (the company as processor): its own name, contact and measures.
MANDATORY_30_2 = ("controller", "contact", "security_measures")


def missing_fields(record: Any, processor: bool = False) -> list[str]:
    """The mandatory Art. 30 fields left empty, each with the variable that sets it."""
    return [
        f"{name} ({env})"
        for attribute, name, env in MANDATORY
        if not (processor and attribute not in MANDATORY_30_2)
        and not any(str(v).strip() for v in _as_list(getattr(record, attribute)))
    ]


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def retention_statement(record: Any, transfer: Any) -> str:
    """How long the chats are kept, in one sentence, for the Art. 30(1)(f) record and the
    access pack's Art. 15(1)(d) alike: ``[record] retention`` as written, or, when it is
    empty, what the retention settings apply (``transfer.retention_years`` from the chat's
    start, the ticket's ``expires_YYYY_MM`` tag, then the retention sweep deletes it)."""
    if record.retention.strip():
        return str(record.retention.strip())
    years = int(transfer.retention_years)
    return f"{years} year{'' if years == 1 else 's'} from the chat's start, then deleted"


def snapengage_retention(snapengage_days: int | None) -> str:
    """Art. 30(1)(f) for the other copy: SnapEngage's own retention of each chat."""
    if not snapengage_days:
        return NOT_SET
    return f"SnapEngage deletes its copy {snapengage_days} days after the chat"


def transfers_by_recipient(
    conn: sqlite3.Connection, scope: str, params: list[Any]
) -> list[dict[str, Any]]:
    """Transfer counts by recipient, destination, basis and mechanism, most first; ``scope``
    is " WHERE" or a WHERE clause ending in " AND" (the report's window, a client's rows)."""
    by = "recipient, destination_country, legal_basis, mechanism_ref"
    return transfers_by(conn, by, f"{scope} event = 'transfer'", params)


def art30_record(
    conn: sqlite3.Connection,
    record: Any,
    transfer: Any,
    where: str = "",
    params: list[Any] | None = None,
    snapengage_days: int | None = None,
) -> dict[str, Any]:
    """``record``: the RecordSettings; ``transfer``: the TransferSettings; ``where``/``params``:
    a WHERE clause over transfers (audit.Filters.where) limiting the figures' window."""
    params = list(params or [])
    scope = f"{where} AND" if where else " WHERE"
    categories = [
        str(row[0])
        for row in conn.execute(
            f"SELECT DISTINCT j.value FROM events, json_each(events.data_categories) AS j"
            f"{scope} events.event = 'transfer' AND json_valid(events.data_categories) "
            "ORDER BY 1",
            params,
        )
    ]
    transfers = transfers_by_recipient(conn, scope, params)
    derogated: dict[str, int] = {}
    for row in transfers:
        if row["legal_basis"] in DEROGATION_BASES:
            name = str(row["recipient"])
            derogated[name] = derogated.get(name, 0) + int(row["transfers"])
    return {
        "a_controller": record.controller or NOT_SET,
        "a_contact": record.contact or NOT_SET,
        "a_controller_country": transfer.controller_country,
        "a_regime": " or ".join(r.label for r in transfer.regimes())
        + ("" if transfer.regime else " (by the visitor's location, Art. 3(2))"),
        "a_representative": record.representative or NOT_SET,
        "a_dpo": record.dpo or NOT_SET,
        "b_purposes": list(record.purposes),
        "b_lawful_basis": record.lawful_basis or NOT_SET,
        "c_data_subjects": list(record.data_subjects),
        "c_personal_data_sent": categories,
        "d_recipients": sorted(
            {str(t["recipient"]) for t in transfers}
            | {r.name for r in transfer.recipients}
            | set(record.recipients)
        ),
        "e_recipient_bases": transfer.describe_recipients(),
        "e_transfers": transfers,
        "e_derogations": derogated,
        "f_retention": retention_statement(record, transfer),  # as the access pack says
        "f_snapengage_retention": snapengage_retention(snapengage_days),
        "f_ledger_retention": record.ledger_retention or ledger_retention(transfer, record),
        "g_security_measures": list(record.security_measures) or [NOT_SET],
    }


LABELS = {
    "a_controller": "(a) Controller",
    "a_contact": "(a) Controller's contact",
    "a_controller_country": "(a) Controller established in",
    "a_regime": "(a) Regime",
    "a_representative": "(a) Representative",
    "a_dpo": "(a) DPO contact",
    "b_purposes": "(b) Purposes",
    "b_lawful_basis": "(b) Lawful basis of the processing (Art. 6)",
    "c_data_subjects": "(c) Categories of data subjects",
    "c_personal_data_sent": "(c) Categories of personal data sent",
    "d_recipients": "(d) Recipients",
    "e_recipient_bases": "(e) Recipients and the basis of each transfer",
    "f_retention": "(f) Time limits for erasure",
    "f_snapengage_retention": "(f) SnapEngage's copy",
    "f_ledger_retention": "(f) The ledger itself",
    "g_security_measures": "(g) Security measures",
}


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
    return {
        "a_processor": record.controller or NOT_SET,
        "a_processor_contact": record.contact or NOT_SET,
        "a_processor_dpo": record.dpo or NOT_SET,
        "a_controller": client.name,
        "a_controller_contact": client.contact or NOT_SET,
        "a_controller_country": client.controller_country,
        "b_processing": [
            f"{purpose}, on the controller's documented instructions (Art. 28(3)(a))"
            for purpose in record.purposes
        ],
        "c_recipient_bases": client.describe_recipients(),
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
                "controller_country": client.controller_country,
                "transfers": int(counts.get("transfer", 0)),
                "sent_not_restricted": int(counts.get("sent", 0)),
                "withheld": int(counts.get("withheld", 0)),
            }
        )
    return out
