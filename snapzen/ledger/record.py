"""The Art. 30(1) record of this processing (chat transcripts archived to Zendesk), as
`snapzen ledger report` prints it beside the transfer figures.

Fixed facts (controller, DPO, purposes, categories of data subjects, retention, security
measures) come from the ``[record]`` settings; what the ledger can show is read from it:
the categories of personal data actually sent, the recipients, and each destination with
the safeguard or derogation relied on and how many transfers used it.
"""

from __future__ import annotations

import sqlite3
from typing import Any

NOT_SET = "(not set)"


def retention_statement(record: Any, transfer: Any) -> str:
    """How long the chats are kept, in one sentence, for the Art. 30(1)(f) record and the
    access pack's Art. 15(1)(d) alike: ``[record] retention`` as written, or, when it is
    empty, what the retention settings apply (``transfer.retention_years`` from the chat's
    start, the ticket's ``expires_YYYY_MM`` tag, then the retention sweep deletes it)."""
    if record.retention.strip():
        return str(record.retention.strip())
    years = int(transfer.retention_years)
    return f"{years} year{'' if years == 1 else 's'} from the chat's start, then deleted"


def art30_record(
    conn: sqlite3.Connection,
    record: Any,
    consent: Any,
    where: str = "",
    params: list[Any] | None = None,
    *,
    transfer: Any,
) -> dict[str, Any]:
    """``record``: the RecordSettings; ``consent``: the ConsentSettings; ``where``/``params``:
    a WHERE clause over transfers (audit.Filters.where) limiting the figures' window;
    ``transfer``: the TransferSettings (the retention, when ``record.retention`` is empty)."""
    params = list(params or [])
    scope = f"{where} AND" if where else " WHERE"
    categories = [
        str(row[0])
        for row in conn.execute(
            f"SELECT DISTINCT j.value FROM transfers, json_each(transfers.data_categories) AS j"
            f"{scope} transfers.event = 'transfer' AND json_valid(transfers.data_categories) "
            "ORDER BY 1",
            params,
        )
    ]
    transfers = [
        {
            "recipient": recipient,
            "destination_country": destination,
            "legal_basis": basis,
            "mechanism_ref": mechanism,
            "transfers": count,
        }
        for recipient, destination, basis, mechanism, count in conn.execute(
            f"SELECT recipient, destination_country, legal_basis, mechanism_ref, count(*) "
            f"FROM transfers{scope} event = 'transfer' GROUP BY 1, 2, 3, 4 ORDER BY 5 DESC",
            params,
        )
    ]
    return {
        "a_controller": record.controller or NOT_SET,
        "a_controller_country": consent.controller_country or NOT_SET,
        "a_representative": record.representative or NOT_SET,
        "a_dpo": record.dpo or NOT_SET,
        "b_purposes": list(record.purposes),
        "c_data_subjects": list(record.data_subjects),
        "c_personal_data_sent": categories,
        "d_recipients": sorted(
            {str(t["recipient"]) for t in transfers} | {consent.recipient, *record.recipients}
        ),
        "e_configured_destination": consent.destination_country,
        "e_transfers": transfers,
        "f_retention": retention_statement(record, transfer),
        "g_security_measures": list(record.security_measures) or [NOT_SET],
    }


LABELS = {
    "a_controller": "(a) Controller (name and contact)",
    "a_controller_country": "(a) Controller established in",
    "a_representative": "(a) Representative",
    "a_dpo": "(a) DPO contact",
    "b_purposes": "(b) Purposes",
    "c_data_subjects": "(c) Categories of data subjects",
    "c_personal_data_sent": "(c) Categories of personal data sent",
    "d_recipients": "(d) Recipients",
    "e_configured_destination": "(e) Destination (configured)",
    "f_retention": "(f) Time limits for erasure",
    "g_security_measures": "(g) Security measures",
}
