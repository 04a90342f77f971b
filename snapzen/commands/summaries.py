"""What a command's result says: the lines the CLI prints for people (``Line``: to stdout, or
to stderr for warnings and what is still to do), written in the templates
``templates/said/`` (one per result, rendered by ``said``), and the JSON documents it
prints for scripts.

Pure functions of what snapzen.commands return, apart from the CLI so the CLI only parses
arguments, calls one function and prints; light at import (jinja2 is imported by ``said``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from snapzen import commands  # each module imported when first named (start-up time)

if TYPE_CHECKING:  # types only: this module stays light at import
    import jinja2
    from rich.text import Text

    from snapzen.commands.erase import ErasureResult
    from snapzen.sync.contracts import PassResult

Line = tuple[bool, str]  # (to stderr, text)


# What str.splitlines (and a terminal) takes for the end of a line, as an escape to show.
_BREAKS = {c: c.encode("unicode_escape").decode() for c in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"}


@functools.cache
def _in_line_env() -> jinja2.Environment:
    from snapzen.commands.templates import TEMPLATES  # lazy: jinja2 (start-up time)

    # A newline after a block tag is kept (no trim_blocks): a tag alone on its line leaves a
    # blank line, which said() leaves out, and `{% if x %}text{% endif %}` is a line or none.
    escape = str.maketrans(_BREAKS)
    return TEMPLATES.overlay(trim_blocks=False, finalize=lambda v: str(v).translate(escape))


def said(block: str, **facts: Any) -> list[Line]:
    """What ``templates/said/<block>.txt`` says of ``facts`` (stdout), then
    ``<block>_err.txt`` if there is one (stderr); blank lines are left out. A line break
    inside a value (a case id, an error text) is shown escaped: only the template's own
    newlines end a line.

    One small template per block: Jinja compiles a whole file on first use, and one file of
    every block cost each command ~150 ms of CPU to compile what it never printed."""
    from jinja2 import TemplateNotFound

    context = {"span": span, "pairs": pairs, "listing": listing, "commands": commands, **facts}
    lines: list[Line] = []
    for to_stderr, name in ((False, block), (True, f"{block}_err")):
        try:
            template = _in_line_env().get_template(f"said/{name}.txt")
        except TemplateNotFound:
            continue
        lines += [(to_stderr, line) for line in template.render(context).split("\n") if line]
    return lines


# The one markup of `status`'s notes: a line the template wraps whole in a style.
_STYLES = ("[bold red]", "[bold yellow]")


def noted(block: str, **facts: Any) -> list[Text]:
    """The lines of a template of ``templates/said/`` as rich Texts (`status`'s notes): a line
    the template wraps whole in ``[bold red]…[/]`` or ``[bold yellow]…[/]`` gets that style.
    Nothing else is read as markup, so data never is (a ``[/`` or a ``[link=…`` in a case id
    or an error is shown as it is, whatever the value beside it)."""
    from rich.text import Text

    notes = []
    for _, line in said(block, **facts):
        style = next((s for s in _STYLES if line.startswith(s) and line.endswith("[/]")), "")
        notes.append(Text(line[len(style) : -3], style=style[1:-1]) if style else Text(line))
    return notes


def span(seconds: float | None) -> str:
    """A duration for people (an age in `status`, the health check's, a clock's gap): whole
    seconds, minutes, hours or days, the largest unit that counts at least two. A negative
    one keeps its sign: the age of a chat dated in the future is not a long wait."""
    if seconds is None:
        return "-"
    if round(seconds) < 0:
        return f"-{span(-seconds)}"
    seconds = abs(seconds)
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


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
        "derogations": result.derogations,
        "interrupted": result.interrupted,
        "exit_code": result.exit_code,
    }


def retry_json(outcome: commands.retry.RetryResult) -> dict[str, Any]:
    result = outcome.result
    return {
        "run_id": result.run_id,
        "requeued": outcome.requeued,
        **result.counts.as_dict(),
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
