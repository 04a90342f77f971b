"""The ledger's vocabulary as the command line shows it in its options: event names, columns,
the report's thresholds and `ledger list`'s terminal cap.

Light on purpose (the standard library and two stdlib-only ledger modules): every `snapzen`
invocation reads these names to register its commands.
"""

from __future__ import annotations

from snapzen.ledger.evidence.audit import ART49_MAX_MONTHS as ART49_MAX_MONTHS
from snapzen.ledger.evidence.audit import ART49_MAX_PER_MONTH as ART49_MAX_PER_MONTH
from snapzen.ledger.evidence.audit import COLUMNS as COLUMNS
from snapzen.ledger.evidence.audit import EXPIRY_HORIZON_DAYS as EXPIRY_HORIZON_DAYS
from snapzen.ledger.evidence.audit import SUBJECT_COLUMNS as SUBJECT_COLUMNS
from snapzen.ledger.evidence.derogations import warning_line as warning_line
from snapzen.ledger.evidence.events import Event as Event
from snapzen.ledger.store.case_status import CaseStatus as CaseStatus

# `ledger list`: a table drawn on a terminal stops here (a million rows on a screen help nobody)
# and says so on stdout; piped or redirected output, and csv/json/jsonl, have no cap but --limit.
TABLE_LIMIT = 1000
