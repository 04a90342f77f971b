"""`snapzen ledger …`: audit the GDPR transfer ledger. The group, and its commands registered
from the modules that hold them (one per job), in the order `snapzen ledger --help` lists
them; `requests` and `hold` are sub-groups.
"""

from __future__ import annotations

import typer

from snapzen.cli import (
    ledger_access,
    ledger_audit,
    ledger_evidence,
    ledger_files,
    ledger_hold,
    ledger_notices,
    ledger_reconcile,
    ledger_requests,
    ledger_subject,
)

app = typer.Typer(
    help="Audit the GDPR transfer ledger: list, export, report, subject access, erasure, "
    "checkpoints, verification and a read-only web UI.",
    no_args_is_help=True,
)
app.add_typer(ledger_audit.app)  # list, export, report, serve
app.add_typer(ledger_subject.app)  # subject, erase
app.add_typer(ledger_evidence.app)  # keygen, checkpoint, cosign, verify
app.add_typer(ledger_access.app)  # access
app.add_typer(ledger_requests.app, name="requests")
app.add_typer(ledger_notices.app, name="notices")
app.add_typer(ledger_hold.app, name="hold")
app.add_typer(ledger_files.app)  # reapply-erasures, backup, restore
app.add_typer(ledger_reconcile.app)  # reconcile
