"""`make demo`: the whole product in under a minute, on loopback only.

Starts the sandbox (both APIs) on a free 127.0.0.1 port and runs the real CLI against it in
subprocesses, exactly what cron would run: ``snapzen init``, ``snapzen sync``, a second
``sync`` that must create nothing, ``ledger verify`` (the chain) and ``ledger reconcile`` (the
ledger against Zendesk: no ticket missing, unknown or duplicated). It checks the tickets against
the sandbox's ground truth and prints a summary from ``snapzen status --json``. The ledger stays
in a temporary directory so it can be explored afterwards with the printed environment lines.

Exit code 0 when every check passed, 1 when one failed.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from snapzen.sandbox import Sandbox, SandboxConfig
from snapzen.support import clock

# The default settle time: a chat that started less than this long ago may still be running.
SETTLE = timedelta(minutes=30)
CLI_TIMEOUT_SECONDS = 120.0  # a hung sync must not hang `make demo`
# Every setting a ledger command needs (the controller's country too: every command requires
# it, so that none runs on a wrong reading of which chats were transfers).
EXPLORE = (
    "SNAPZEN_LEDGER__PATH",
    "SNAPZEN_LEDGER__KEY",
    "SNAPZEN_TRANSFER__CONTROLLER_COUNTRY",
    "SNAPZEN_CONSENT__NOTICES",
    "SNAPZEN_TRANSFER__RECIPIENTS",
)


@dataclass
class DemoResult:
    workdir: Path
    env: dict[str, str]  # the SNAPZEN_* lines a user needs to explore the ledger
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures


# The demo company is the one config/snapzen.example.toml models, a UK live-chat business
# (Zendesk in the US under UK adequacy, SnapEngage and support servers under safeguards): its
# recipients are read from there, so the example and the demo never tell two stories.
EXAMPLE_CONFIG = Path(__file__).resolve().parents[1] / "config" / "snapzen.example.toml"


def _child_env(sb: Sandbox, workdir: Path) -> dict[str, str]:
    recipients = tomllib.loads(EXAMPLE_CONFIG.read_text())["transfer"]["recipients"]
    # The developer's own SNAPZEN_* settings (a production config!) must not leak into the demo.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNAPZEN_")}
    env.update(sb.env())
    env.update(
        SNAPZEN_LEDGER__PATH=str(workdir / "snapzen.db"),
        SNAPZEN_LEDGER__KEY="demo-" + secrets.token_hex(16),  # a throwaway ledger's key
        SNAPZEN_SECRETS_DIR=str(workdir / "secrets"),  # empty: ignore any /run/secrets
        SNAPZEN_ZENDESK__JOB_POLL_SECONDS="0.2",  # the sandbox's jobs take 0.2 s, not minutes
        SNAPZEN_LOG__LEVEL="warning",  # the summary is the demo's output, not the JSON log
        SNAPZEN_TRANSFER__RECIPIENTS=json.dumps(recipients),
    )
    return env


def _eligible(row: Mapping[str, Any]) -> bool:
    """The transfer policy for the demo's UK controller and its adequacy-based Zendesk
    recipient, in the sandbox truth's own terms: every chat is a restricted transfer under UK
    adequacy, needing no consent, but a refusal set by the visitor's page withholds it."""
    if row["type"] != "chat" or row["in_progress"]:
        return False
    return not (row["consent"] == "refused" and row["consent_source"] == "javascript_variables")


def _truth_problems(sb: Sandbox, first: datetime, second: datetime, created: int) -> list[str]:
    """The tickets against the sandbox's ground truth: none for a withheld or ignored chat, one
    for every eligible chat finished before the first sync began, and none from the second sync
    but for chats that crossed the settle line between the two syncs (almost always none)."""
    truth = {f"snapengage:{row['id']}": row for row in sb.truth()}
    eligible = {ext: clock.parse(row["created_at"]) for ext, row in truth.items() if _eligible(row)}
    tickets = {str(t["external_id"]) for t in sb.tickets() if not t["deleted"]}
    unexpected = sorted(tickets - eligible.keys())
    missing = sorted(e for e, at in eligible.items() if at <= first - SETTLE and e not in tickets)
    problems = []
    if unexpected:
        problems.append(f"{len(unexpected)} ticket(s) for chats without a basis: {unexpected[:3]}")
    if missing:
        problems.append(f"{len(missing)} eligible chat(s) without a ticket: {missing[:3]}")
    if created > sum(1 for at in eligible.values() if first - SETTLE < at <= second - SETTLE):
        problems.append(f"second sync created {created} ticket(s)")
    return problems


def run_demo(
    *,
    chats: int = 300,
    seed: int = 1,
    workdir: Path | None = None,
    say: Callable[[str], None] = print,
) -> DemoResult:
    """Run the demo; every check that fails is listed in ``result.failures``."""
    began = time.monotonic()
    workdir = workdir or Path(tempfile.mkdtemp(prefix="snapzen-demo-"))
    with Sandbox(SandboxConfig(chats=chats, seed=seed)) as sb:
        env = _child_env(sb, workdir)
        result = DemoResult(workdir, {name: env[name] for name in EXPLORE})
        say(f"sandbox: SnapEngage + Zendesk emulator on {sb.base_url} ({chats} chats)")

        def run(*args: str, note: str = "", ok: tuple[int, ...] = (0,)) -> None:
            command = [sys.executable, "-m", "snapzen", *args]
            done = subprocess.run(
                command, env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_SECONDS
            )
            say(f"$ snapzen {' '.join(args)}{note}\n  {(done.stdout or done.stderr).strip()}")
            if done.returncode not in ok:
                what = f"snapzen {' '.join(args)} exited {done.returncode}"
                result.failures.append(f"{what}: {done.stderr[-500:]}")

        # The ledger is created on purpose, never by a sync (a wrong path would otherwise
        # start an empty ledger and import every chat again).
        run("init")
        first_at = clock.now()
        run("sync")
        after_first = int(sb.state()["tickets_count"])
        second_at = clock.now()
        run("sync", note="   # again: must create nothing")
        run("ledger", "verify")
        run("ledger", "reconcile")  # no ticket missing, unknown or duplicated
        run("status", ok=(0, 3))  # what was sent, withheld, ignored (3: chats still settling)
        state = sb.state()
        tickets, duplicates = int(state["tickets_count"]), state["duplicate_external_ids"]
        second = tickets - after_first
        say(f"tickets in Zendesk: {tickets} (second sync: {second}); duplicates: {len(duplicates)}")
        if duplicates:
            result.failures.append(f"duplicate tickets in Zendesk: {duplicates[:5]}")
        result.failures += _truth_problems(sb, first_at, second_at, second)
    result.seconds = time.monotonic() - began
    return result


def _snapzen_command() -> str:
    """`snapzen` when it is on PATH, else the virtualenv's script (make demo does not activate)."""
    script = Path(sys.executable).parent / "snapzen"
    if shutil.which("snapzen") == str(script) or not script.exists():
        return "snapzen"
    return str(script)


def summary(result: DemoResult) -> str:
    commands = ("status", "ledger list", "ledger verify")
    lines = [
        f"\nwall time {result.seconds:.1f} s; the ledger is kept in {result.workdir}. Explore it:",
        *(f"  export {name}={shlex.quote(value)}" for name, value in result.env.items()),
        *(f"  {_snapzen_command()} {command}" for command in commands),
        "",
    ]
    if result.failures:
        return "\n".join([*lines, "DEMO CHECKS FAILED:", *(f"  - {f}" for f in result.failures)])
    return "\n".join([*lines, "demo OK: every check passed"])


def main() -> None:
    result = run_demo()
    print(summary(result))
    sys.exit(0 if result.ok else 1)


if __name__ == "__main__":
    main()
