"""`snapzen ledger …`: auditor commands over the transfer ledger.

This module holds the `ledger` group and what its commands share (opening the ledger to read,
or under the writer lock to write; the subject reference, the shared-email guard, the Zendesk
client); the commands live by job in ledger_queries (list, export), ledger_report (report),
ledger_subject (subject, erase), ledger_web (serve) and ledger_evidence (keygen, checkpoint,
cosign, verify), each registered at the end of this module. Each opens the database, calls
one library function and prints. Emails are turned into their HMAC reference at once and
never printed, logged or stored.
"""

from __future__ import annotations

import importlib
import sys
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from snapzen.cli.common import (
    ActorOption,
    ConfigOption,
    JsonFlag,
    SummaryFormatOption,
    actor_name,
    echo_json,
    handle_errors,
    settings_from,
    summary_json,
)
from snapzen.ledger.chain import subject_ref
from snapzen.support import errors

# rich, sqlite_utils, the settings, the Zendesk client and the ledger's db modules are
# imported inside the functions that use them: every `snapzen` invocation, cron runs
# included, imports this module just to register its commands, and those imports would add
# ~0.1 s to its start-up.
if TYPE_CHECKING:
    import sqlite_utils

    from snapzen.clients.zendesk import ZendeskClient
    from snapzen.ledger import collisions
    from snapzen.support.settings import Settings

app = typer.Typer(
    help="Audit the GDPR transfer ledger: list, export, report, subject access, erasure, "
    "checkpoints, verification and a read-only web UI.",
    no_args_is_help=True,
)


Since = Annotated[
    str | None, typer.Option(help="From this UTC date (YYYY-MM-DD) or ISO time, inclusive.")
]
Until = Annotated[
    str | None, typer.Option(help="Up to this UTC date (whole day) or ISO time, inclusive.")
]
Widget = Annotated[str | None, typer.Option(help="Only this SnapEngage widget id.")]
Email = Annotated[
    str,
    typer.Option(
        help="The data subject's email ('-' reads it from stdin, keeping it out of shell "
        "history). Only its HMAC reference is used."
    ),
]


# --- helpers ------------------------------------------------------------------------------


def _settings(config: Path | None) -> Settings:
    return settings_from(config)


def _evidence_settings(config: Path | None) -> Settings:
    """For the read-only evidence commands (list, export, report, subject, serve, verify,
    checkpoint):
    only the ledger settings must hold (an auditor may have the file, a public key and the
    ledger key, and no sync settings); other sections are used where they load."""
    from snapzen.support.settings import Needs  # lazy: start-up time (pydantic-settings)

    return settings_from(config, Needs.EVIDENCE)


def _known_widget(settings: Settings, db: sqlite_utils.Database, widget: str | None) -> None:
    """A ``--widget`` filter names a configured widget or one the ledger holds rows of (an
    audit may ask about a widget since removed); anything else is a typo: exit 2."""
    if widget is None or widget in settings.snapengage.widgets:
        return
    if db.execute("SELECT 1 FROM events WHERE widget_id = ? LIMIT 1", (widget,)).fetchone():
        return
    raise errors.ConfigError(
        f"--widget {widget!r} is neither one of snapengage.widgets nor in the ledger"
    )


def _open_read(settings: Settings) -> sqlite_utils.Database:
    from snapzen.ledger.db import open_ledger  # lazy: start-up time (sqlite_utils)

    return open_ledger(settings.ledger, read_only=True)


def _read_email(email: str) -> str:
    """The --email value, read from stdin for '-' (read once: stdin cannot be re-read)."""
    return sys.stdin.readline() if email == "-" else email


def _subject(settings: Settings, email: str) -> str:
    from snapzen.support.settings import (
        require_ledger_key,  # lazy: start-up time (pydantic-settings)
    )

    email = _read_email(email)
    ref = subject_ref(require_ledger_key(settings), email)
    if ref is None:
        # No reference is ever made from an invalid address, so nothing is recorded under it.
        raise errors.ConfigError(
            "--email is not a valid email address: no chats are filed under it"
        )
    return ref


CaseIds = Annotated[
    list[str] | None,
    typer.Option("--case", help="Only this chat (case id) of the subject; repeatable."),
]
TicketIds = Annotated[
    list[int] | None,
    typer.Option("--ticket", help="Only this Zendesk ticket of the subject; repeatable."),
]


def _narrow(
    conn: Any, ref: str, case_ids: list[str] | None, ticket_ids: list[int] | None
) -> set[str] | None:
    """The chats a subject request covers; exit 2 listing the candidate chats (ids and
    dates, never names) when the reference belongs to several people."""
    from snapzen.ledger import collisions  # lazy: start-up time

    try:
        return collisions.select_cases(conn, ref, case_ids or (), ticket_ids or ())
    except collisions.SubjectCollision as exc:
        refuse_shared(exc)
        raise  # unreachable: refuse_shared exits


def refuse_shared(exc: collisions.SubjectCollision) -> NoReturn:
    """Exit 2 with the candidate chats of a shared reference: ids and dates, never names."""
    typer.echo(f"snapzen: {exc}; candidate chats:", err=True)
    for item in exc.candidates:
        typer.echo(
            f"  --case {item.case_id}  ticket {_cell(item.ticket_id) or '-'}  "
            f"started {_cell(item.started_at) or '-'}  widget {_cell(item.widget_id)}",
            err=True,
        )
    raise typer.Exit(errors.EXIT_USAGE)


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def _zendesk_client(settings: Settings) -> ZendeskClient:
    from snapzen.clients.http import HttpClient  # lazy: start-up time (requests, tenacity)
    from snapzen.clients.zendesk import ZendeskClient

    return ZendeskClient(settings.zendesk, HttpClient(settings.http, service="zendesk"))


def _locked(
    settings: Settings, wait_seconds: float
) -> AbstractContextManager[sqlite_utils.Database]:
    """The ledger opened for writing once the writer lock is held (never before: a command
    queued behind a restore must write into the restored file): ``wait_seconds`` -1 waits as
    long as it takes, 0 not at all (LockHeld)."""
    from snapzen.ledger.locked import locked_ledger  # lazy: start-up time (sqlite_utils)

    return locked_ledger(settings.ledger, wait=wait_seconds != 0, timeout=wait_seconds)


# The commands, registered on `app` as each module is imported, in the order `snapzen ledger
# --help` lists them (a plain import list would be re-sorted by the import sorter).
for _module in ("ledger_queries", "ledger_report", "ledger_subject", "ledger_web",
                "ledger_evidence"):  # fmt: skip
    importlib.import_module(f"snapzen.cli.{_module}")


@app.command("reconcile")
@handle_errors
def reconcile(
    config: ConfigOption = None,
    since: Annotated[
        datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"],
            help="Read Zendesk's tickets changed since this UTC day (default: a day before "
            "the ledger's first chat or run).",
        ),
    ] = None,
    max_requests: Annotated[
        int,
        typer.Option(
            "--max-requests", min=1, help="At most this many export requests (1,000 tickets each)."
        ),
    ] = 1000,
    actor: ActorOption = None,
    fmt: SummaryFormatOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Compare the ledger with Zendesk (read-only there) and report tickets missing,
    unknown, duplicated or pointing at the wrong case, each with what to do. Reads Zendesk's
    incremental export (1,000 tickets a request, 10 requests a minute) and records the check
    in the ledger (event `reconciled`), which `status` shows. Exit 0 when they agree, 3 with
    findings. Run it weekly.
    """
    from snapzen.commands.reconcile_check import reconcile_check  # lazy: start-up time

    as_json = summary_json(fmt, json_output)
    settings = _settings(config)
    check = reconcile_check(
        settings,
        actor=actor_name(actor, settings),
        since=since.date() if since else None,
        max_requests=max_requests,
    )
    if as_json:
        echo_json(check.as_dict())
    else:
        _print_check(check.as_dict())
    raise typer.Exit(check.exit_code)


def _print_check(report: dict[str, Any]) -> None:
    from snapzen.cli.tables import print_rows  # lazy: start-up time

    counts = ", ".join(f"{kind.replace('_', ' ')} {n}" for kind, n in report["findings"].items())
    typer.echo(
        f"reconcile {report['run_id']}: {report['tickets_seen']} ticket(s) read in "
        f"{report['requests']} request(s) since {report['since']}; "
        f"{report['cases_checked']} synced case(s) checked; findings: {counts}"
    )
    if not report["complete"]:
        typer.echo(
            f"incomplete: stopped after {report['requests']} request(s) (--max-requests); "
            "a ticket not read is not judged missing",
            err=True,
        )
    if report["found"]:
        rows = [{**f, "ticket_ids": ", ".join(map(str, f["ticket_ids"]))} for f in report["found"]]
        print_rows(rows, ["kind", "case_id", "ticket_ids", "detail", "suggestion"], "findings")
