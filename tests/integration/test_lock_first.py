"""Every command, read from the command tree, leaves the ledger alone while another process
holds the writer lock: no command opens the live ledger to write before it holds the lock.

A command that opened the database first and queued for the lock after wrote, once its turn
came, into whatever file it had opened; behind a restore that was the file moved aside
(issue 23, item 7). Here another holder keeps the lock while each command of the tree runs
once (in-process, through Typer's runner); every SQLite connection is recorded, and none may
open the live ledger read-write, nor may its content or its directory change. A command
with ``--wait`` must also say the lock is what stopped it.

The commands come from the Typer app itself, so a new command fails
``test_every_command_is_covered`` until it has sample arguments here (or a reason not to
run, for a service that never returns).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from filelock import FileLock
from typer.testing import CliRunner

from snapzen.cli.main import app
from snapzen.commands.copies import backup_ledger
from snapzen.ledger.evidence import checkpoint as signed
from snapzen.sandbox import Sandbox, SandboxConfig
from snapzen.support.clock import now as utcnow
from snapzen.support.lock import holds_writer_lock, lock_path
from tests.fakes import create_ledger

KEY = "lock-first-key-0123456789abcdef"
DAY = utcnow().date().isoformat()

# Services that never return on their own; what they write goes through run_pass, the same
# helper `sync` uses (covered below).
NOT_RUN = {
    "run": "the service loop: each pass is run_pass, as `sync`",
    "ledger serve": "a web server (read-only snapshot of the ledger)",
    "sandbox serve": "the loopback sandbox server; no ledger",
}


def sample_args(tmp: Path) -> dict[str, list[str]]:
    """Arguments each command accepts (a usage error would test nothing)."""
    return {
        "sync": [],
        "status": [],
        "backfill": ["--since", DAY, "--until", DAY],
        "retry": ["--all-failed"],
        "dismiss": ["--case", "c-1", "--reason", "never"],
        "init": [],
        "sandbox dump": ["--url", "http://127.0.0.1:9"],
        "ledger list": [],
        "ledger export": [str(tmp / "out" / "rows.csv")],
        "ledger report": [],
        "ledger subject": ["--email", "someone@example.com"],
        "ledger erase": ["--email", "someone@example.com"],
        "ledger keygen": [str(tmp / "out" / "new.pem"), str(tmp / "out" / "new.pub")],
        "ledger checkpoint": [str(tmp / "out" / "head.json"), "--signing-key", str(tmp / "k.pem")],
        "ledger cosign": [str(tmp / "cosign.json"), "--signing-key", str(tmp / "k.pem")],
        "ledger verify": [],
        "ledger access": ["--case", "c-1", "--out", str(tmp / "out" / "pack")],
        "ledger requests open": ["--type", "access", "--received", DAY, "--case", "c-1"],
        "ledger requests pause": ["req-1", "--reason", "identity"],
        "ledger requests resume": ["req-1"],
        "ledger requests extend": ["req-1", "--reason", "many records to gather"],
        "ledger requests close": ["req-1", "--outcome", "provided"],
        "ledger notices done": ["ntc-1", "--when", DAY],
        "ledger reapply-erasures": [],
        "ledger reconcile": [],
        "ledger backup": [str(tmp / "out" / "copy.db")],
        "ledger restore": [str(tmp / "backup.db"), "--no-erasure-journal"],
        "ledger hold add": ["--case", "c-1", "--reason", "litigation"],
        "ledger hold remove": ["--case", "c-1", "--reason", "settled"],
        "ledger hold list": [],
        "ledger flags resolve": ["c-1", "--kind", "duplicate_tickets", "--reason", "both kept"],
        "retention sweep": [],
    }


def leaf_commands() -> dict[str, Any]:
    found: dict[str, Any] = {}

    def walk(command: Any, path: list[str]) -> None:
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                walk(sub, [*path, name])
        else:
            found[" ".join(path)] = command

    walk(typer.main.get_command(app), [])
    return found


def test_every_command_is_covered(tmp_path: Path) -> None:
    assert set(leaf_commands()) == set(sample_args(tmp_path)) | set(NOT_RUN)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(chats=0, seed=1, days=1)) as sb:
        yield sb


@pytest.fixture
def ledger(sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)
    live = tmp_path / "ledger" / "snapzen.db"
    live.parent.mkdir()
    monkeypatch.setenv("SNAPZEN_LEDGER__PATH", str(live))
    monkeypatch.setenv("SNAPZEN_LEDGER__KEY", KEY)
    monkeypatch.setenv("SNAPZEN_SECRETS_DIR", str(tmp_path / "no-secrets"))
    monkeypatch.setenv("SNAPZEN_LOG__LEVEL", "warning")
    create_ledger(live, KEY, utcnow())
    (tmp_path / "out").mkdir()
    backup_ledger(live, tmp_path / "backup.db")
    key = signed.generate()
    signed.write_private_key(tmp_path / "k.pem", key)
    result = CliRunner().invoke(
        app, ["ledger", "checkpoint", str(tmp_path / "cosign.json"), "--signing-key",
              str(tmp_path / "k.pem")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return live


def fingerprint(live: Path) -> tuple[str, list[str]]:
    conn = sqlite3.connect(f"file:{live}?mode=ro", uri=True)
    try:
        dump = "\n".join(conn.iterdump())
    finally:
        conn.close()
    # The register of copies (commands.copies) is the one file a reader appends to beside the
    # ledger: `ledger backup` notes the copy it made. No restore moves or reads it as the
    # ledger, so it is not part of what the lock protects.
    names = sorted(p.name for p in live.parent.iterdir() if not p.name.endswith(".copies.jsonl"))
    return hashlib.sha256(dump.encode()).hexdigest(), names


@pytest.mark.parametrize("command", sorted(sample_args(Path("."))))
def test_no_command_writes_the_ledger_while_another_holds_the_lock(
    command: str, ledger: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    live = str(ledger.resolve())
    holder = FileLock(str(lock_path(ledger)))  # another process's lock: not this process's
    holder.acquire()
    before = fingerprint(ledger)
    writes: list[str] = []
    connect = sqlite3.connect

    def recording(database: Any, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        target = str(database)
        read_only = kwargs.get("uri") and "mode=ro" in target
        if not read_only and Path(target.removeprefix("file:")).resolve() == Path(live):
            writes.append(target)
        return connect(database, *args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", recording)
    try:
        result = CliRunner().invoke(app, [*command.split(), *sample_args(tmp_path)[command]])
    finally:
        monkeypatch.setattr(sqlite3, "connect", connect)
        holder.release()
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert not isinstance(result.exception, RuntimeError), output  # opened without the lock
    assert writes == [], f"{command} opened the live ledger to write without the lock"
    assert fingerprint(ledger) == before
    assert not holds_writer_lock(ledger)
    # A usage error would have tested nothing; exit 2 only as a refusal with its reason.
    assert result.exit_code != 2 or "lock" in output or "already exists" in output, output
    params = leaf_commands()[command].params
    if any("--wait" in p.opts for p in params):
        assert "lock" in output, f"{command}: exit {result.exit_code}: {output}"


def test_init_refuses_while_another_holds_the_lock(
    ledger: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`init` at a new path takes the lock first too: it never links a ledger into place
    while a restore (or another init) holds it."""
    fresh = tmp_path / "elsewhere" / "snapzen.db"
    monkeypatch.setenv("SNAPZEN_LEDGER__PATH", str(fresh))
    fresh.parent.mkdir()
    holder = FileLock(str(lock_path(fresh)))
    holder.acquire()
    try:
        result = CliRunner().invoke(app, ["init"])
    finally:
        holder.release()
    assert result.exit_code == 2 and "writer lock" in result.output
    assert not fresh.exists()
    assert CliRunner().invoke(app, ["init"]).exit_code == 0
    assert fresh.exists()


def test_the_ledger_is_opened_to_write_only_under_its_lock(ledger: Path) -> None:
    """The rule in code: `open_ledger` refuses a write open by a process without the lock,
    so a command that forgets fails in every test that runs it, not only here."""
    from snapzen.ledger.store.db import locked_ledger, open_ledger
    from snapzen.support.settings import Settings

    settings = Settings()
    with pytest.raises(RuntimeError, match="without the writer lock"):
        open_ledger(settings.ledger)
    open_ledger(settings.ledger, read_only=True).conn.close()  # readers need no lock
    with locked_ledger(settings.ledger) as db:
        assert holds_writer_lock(ledger)
        db.execute("SELECT COUNT(*) FROM events").fetchone()
    assert not holds_writer_lock(ledger)
