"""Transfers sent under an Art. 49 derogation, by recipient: what each pass warns about and
`status`, the metrics and `ledger report` carry. Regulators read Art. 49 as the exception
(EDPB Guidelines 2/2018), so its use is never silent."""

from __future__ import annotations

import sqlite3

DEROGATION_BASES = ("art49_1a", "art49_1b")

_BY_RECIPIENT = (
    "SELECT COALESCE(recipient, '(unknown)'), count(*) FROM events "
    "WHERE event = 'transfer' AND legal_basis IN (?, ?){extra} "
    "GROUP BY 1 ORDER BY 2 DESC, 1"
)


def by_recipient(conn: sqlite3.Connection, run_id: str | None = None) -> dict[str, int]:
    """Recipient -> transfers under a derogation: those of run ``run_id``, or all of them."""
    extra, params = ("", ()) if run_id is None else (" AND run_id = ?", (run_id,))
    rows = conn.execute(_BY_RECIPIENT.format(extra=extra), (*DEROGATION_BASES, *params))
    return {str(recipient): int(count) for recipient, count in rows}


def warning_line(recipient: str, count: int) -> str:
    """The one line a pass prints per recipient it sent chats to under a derogation."""
    return (
        f"WARNING: {count} chat(s) sent to {recipient} under an Art. 49 derogation (explicit "
        "consent or contract, per chat) in this pass: Art. 49 is the exception (EDPB 2/2018); "
        "give the recipient an adequacy or safeguards basis in transfer.recipients"
    )
