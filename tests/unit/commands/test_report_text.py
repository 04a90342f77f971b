"""`ledger report` in sentences: a fact a ledger row does not hold is printed as missing
(``None``, as the printer before the template did), never as a blank that reads like part of
the sentence (``   in : 2 transfers``)."""

from __future__ import annotations

from typing import Any

from snapzen.commands import report_text
from snapzen.commands.ledger_queries import ReportResult
from snapzen.ledger.evidence.art30_record import LABELS
from snapzen.ledger.evidence.audit import Report

NAMELESS = {"recipient": None, "destination_country": None, "transfers": 2}


def _report() -> Report:
    return Report(
        generated_at="2026-12-07T10:00:00Z", since=None, until=None, head_seq=9, transfers=2,
        events={"transfer": 2}, by_month=[], by_destination=[NAMELESS], by_basis=[],
        by_origin=[], withheld=[], expiring_horizon_days=90, expiring_until="2027-03-07",
        expiring_total=0, expiring_by_month=[], art49=[], art49_max_months=2,
        art49_max_per_month=20,
    )  # fmt: skip


def test_a_transfer_row_without_recipient_or_country_says_so_in_record_and_report() -> None:
    record: dict[str, Any] = {key: "set" for key in LABELS}
    record |= {
        "e_transfers": [{**NAMELESS, "legal_basis": "art49_1a", "mechanism_ref": None}],
        "e_derogations": {},
    }
    lines = report_text.text(ReportResult(report=_report(), record=record))
    assert "    None in None: 2 transfers under art49_1a." in lines  # the Art. 30(1)(e) list
    assert "  None in None: 2 transfers" in lines  # recipients and destination countries
    assert not [line for line in lines if " in : " in line]
