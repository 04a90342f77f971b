"""What a command's result says: the lines the CLI prints for people (``Line``: to stdout, or
to stderr for warnings and what is still to do), written in the template
``templates/said.txt`` (one block per result, rendered by ``said``), and the JSON documents it
prints for scripts.

Pure functions of what snapzen.commands return, apart from the CLI so the CLI only parses
arguments, calls one function and prints; light at import (jinja2 is imported by ``said``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from snapzen import commands  # each module imported when first named (start-up time)

if TYPE_CHECKING:  # types only: this module stays light at import
    from snapzen.commands.erase import ErasureResult
    from snapzen.sync.contracts import PassResult

Line = tuple[bool, str]  # (to stderr, text)


def said(block: str, *, markup: bool = False, **facts: Any) -> list[Line]:
    """What the template ``templates/said.txt`` says of ``facts``: the lines of its block
    ``block`` (stdout), then those of ``block_err`` if it has one (stderr); blank lines are
    left out. ``markup``: the block is rich markup, and every value put in it is escaped
    (data is never markup)."""
    from snapzen.commands.templates import TEMPLATES  # lazy: jinja2 (start-up time)

    env = TEMPLATES
    if markup:
        from rich.markup import escape

        env = TEMPLATES.overlay(finalize=lambda value: escape(str(value)))
    template = env.get_template("said.txt")
    helpers = {"age": age, "pairs": pairs, "listing": listing, "commands": commands}
    context = template.new_context({**helpers, **facts})
    return [
        (to_stderr, line)
        for to_stderr, name in ((False, block), (True, f"{block}_err"))
        if name in template.blocks
        for line in "".join(template.blocks[name](context)).splitlines()
        if line
    ]


def age(seconds: float | None) -> str:
    """An age as `status` shows it: minutes, hours or days."""
    if seconds is None:
        return "-"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < 86400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def pairs(counts: dict[Any, Any]) -> str:
    """``key=value, ...`` in the keys' order (a missing reason is ``None``)."""
    return ", ".join(f"{k}={n}" for k, n in sorted(counts.items(), key=str))


def listing(ids: Sequence[str], limit: int = 5) -> str:
    """A few ids and how many more: a summary line, not a dump (--format json lists all)."""
    shown = ", ".join(ids[:limit])
    return shown + (f" (+{len(ids) - limit} more)" if len(ids) > limit else "")


def verified(verdict: commands.checkpoints.Verdict) -> bool:
    """Whether the ledger verified against every checkpoint given (an altered checkpoint file
    proves nothing either way)."""
    failed = verdict.bad_signatures or verdict.tables.problems
    return not failed and verdict.chain.first_problem is None


def still_naming(result: ErasureResult) -> dict[int, list[int]]:
    """`ledger erase`: per Zendesk profile found, the tickets that still name it once this
    erasure has deleted (in a dry run: would delete) the person's tickets."""
    own = {t.ticket_id for t in result.plan.to_delete} if result.dry_run else set()
    blocked = result.users.blocked if result.users is not None else {}
    return {user: [t for t in tickets if t not in own] for user, tickets in blocked.items()}


def pass_json(result: PassResult) -> dict[str, Any]:
    """What `sync --format json` prints for a pass (and `run --format json` for each)."""
    return {
        "run_id": result.run_id,
        **result.counts.as_dict(),
        "at_risk": [r["case_id"] for r in result.at_risk],
        "failed_total": result.failed_total,
        "derogations": dict(getattr(result, "derogations", {})),
        "interrupted": result.interrupted,
        "exit_code": result.exit_code,
    }


def retry_json(outcome: commands.retry.RetryResult) -> dict[str, Any]:
    result = outcome.result
    return {
        "run_id": result.run_id if result is not None else None,
        "requeued": list(outcome.requeued),
        **(result.counts.as_dict() if result is not None else {}),
        "exit_code": outcome.exit_code,
    }


def backfill_json(result: commands.backfill.BackfillResult) -> dict[str, Any]:
    plan, report = result.plan, result.dry_run
    return {
        "since": plan.since.isoformat(),
        "until": plan.until.isoformat(),
        "widgets": list(plan.widgets),
        "windows_total": result.windows_total,
        "windows_skipped": result.windows_skipped,
        "windows_done": result.windows_done,
        **result.counts.as_dict(),
        "interrupted": result.interrupted,
        "dry_run": None if report is None else asdict(report),
        "exit_code": result.exit_code,
    }
