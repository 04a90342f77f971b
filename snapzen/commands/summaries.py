"""What a command's result says: the lines the CLI prints for people (``Line``: to stdout, or
to stderr for warnings and what is still to do) and the JSON documents it prints for scripts.

Pure functions of what snapzen.commands return, apart from the CLI so the CLI only parses
arguments, calls one function and prints; light at import (nothing but the standard library).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from snapzen import commands  # each module imported when first named (start-up time)

if TYPE_CHECKING:  # types only: this module stays light at import
    from snapzen.ledger.rights.erasure_reapply import ReapplyResult
    from snapzen.sync.contracts import PassResult

Line = tuple[bool, str]  # (to stderr, text)


def out(text: str) -> Line:
    return (False, text)


def err(text: str) -> Line:
    return (True, text)


def said(block: str, *, markup: bool = False, **facts: Any) -> list[Line]:
    """What the template ``templates/said.txt`` says of ``facts``: the lines of its block
    ``block`` (stdout), then those of ``block_err`` if it has one (stderr). ``markup``: the
    block is rich markup, and every value put in it is escaped (data is never markup)."""
    from snapzen.commands.templates import TEMPLATES  # lazy: jinja2 (start-up time)

    env = TEMPLATES
    if markup:
        from rich.markup import escape

        env = TEMPLATES.overlay(finalize=lambda value: escape(str(value)))
    template = env.get_template("said.txt")
    context = template.new_context(dict(facts, age=age, pairs=pairs, listing=listing))
    return [
        (to_stderr, line)
        for to_stderr, name in ((False, block), (True, f"{block}_err"))
        if name in template.blocks
        for line in "".join(template.blocks[name](context)).splitlines()
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


def sync_lines(result: PassResult, deadline_days: int) -> Iterator[Line]:
    """A pass in one line, then its warnings."""
    c = result.counts
    yield out(
        f"sync {result.run_id}: fetched {c.fetched}, created {c.created}, "
        f"withheld {c.withheld}, ignored {c.ignored}, failed {c.failed}, "
        f"ambiguous {c.ambiguous}, recovered {c.recovered}; ledger: decisions "
        f"{c.decisions} (transfers {c.transfers})"
    )
    for recipient, count in result.derogations.items():
        yield err(commands.ledger_terms.warning_line(recipient, count))
    if result.at_risk:
        yield err(
            f"WARNING: {len(result.at_risk)} unsynced case(s) are older than {deadline_days} "
            f"days and at risk of SnapEngage's deletion: "
            f"{listing([r['case_id'] for r in result.at_risk], 10)}"
        )
    if result.failed_total:
        yield err(f"{result.failed_total} case(s) failed; see `snapzen status`")
    if result.interrupted:
        yield err("snapzen: sync interrupted; the next sync does the rest")


def retry_json(outcome: commands.retry.RetryResult) -> dict[str, Any]:
    result = outcome.result
    return {
        "run_id": result.run_id if result is not None else None,
        "requeued": list(outcome.requeued),
        **(result.counts.as_dict() if result is not None else {}),
        "exit_code": outcome.exit_code,
    }


def retry_lines(outcome: commands.retry.RetryResult) -> Iterator[Line]:
    result = outcome.result
    if not outcome.requeued:
        yield out("retry: no failed case to retry")
    elif result is not None:
        yield out(
            f"retry {result.run_id}: requeued {len(outcome.requeued)}, created "
            f"{result.counts.created}, failed again {result.counts.failed}"
        )
        if result.failed_total:
            yield err(f"{result.failed_total} case(s) failed; see `snapzen status`")


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


def backfill_lines(result: commands.backfill.BackfillResult, dry_run: bool) -> Iterator[Line]:
    plan, c, report = result.plan, result.counts, result.dry_run
    label = ("dry run" if dry_run else "backfill") + (
        " (interrupted)" if result.interrupted else ""
    )
    windows = (
        f"{label} {plan.since}..{plan.until} ({', '.join(plan.widgets)}): "
        f"{result.windows_total} window(s), {result.windows_skipped} already finished, "
        f"{result.windows_done} done; fetched {c.fetched}"
    )
    if report is None:
        yield out(
            f"{windows}, created {c.created}, withheld {c.withheld}, ignored {c.ignored}, "
            f"failed {c.failed}; ledger: decisions {c.decisions} (transfers {c.transfers})"
        )
    else:  # nothing happened: the conditional, and a few ids per line (--format json: all)
        yield out(
            f"{windows}; would create {len(report.would_create)} ticket(s), would withhold "
            f"{len(report.would_withhold)}, would ignore {len(report.would_ignore)}"
        )
        if report.would_create:
            yield out(f"  would create: {listing(report.would_create)}")
        for reason in sorted(set(report.would_withhold.values())):
            ids = sorted(k for k, v in report.would_withhold.items() if v == reason)
            yield out(f"  would withhold ({reason or 'no reason'}, {len(ids)}): {listing(ids)}")
        if report.would_ignore:
            yield out(f"  would ignore: {listing(sorted(report.would_ignore))}")
        yield out(
            "dry run: nothing was written to Zendesk or to the ledger "
            "(--format json lists every case id)"
        )
    if result.interrupted:
        yield err("snapzen: backfill interrupted; run the same command again to resume")
    elif result.last is not None and result.last.at_risk:
        yield err(
            f"WARNING: {len(result.last.at_risk)} unsynced case(s) are at risk of SnapEngage's "
            f"deletion: {listing([r['case_id'] for r in result.last.at_risk], 10)}"
        )


def sweep_lines(result: commands.retention.SweepResult) -> Iterator[Line]:
    """A retention sweep, or (dry) what it would do, then what is left for the next one."""
    yield from map(out, _planned(result) if result.dry_run else _swept(result))
    for count, line in (
        (result.failed, "ticket(s) not confirmed deleted; the next sweep retries them"),
        (result.users_failed, "Zendesk user profile(s) not deleted; the next sweep retries"),
        (result.purge_failed, "deleted ticket(s) not purged; Zendesk scrubs them within 30 days"),
    ):
        if count:
            yield err(f"{count} {line}")


def _planned(result: commands.retention.SweepResult) -> Iterator[str]:
    """What a dry run would do: the first 50 tickets due, the profiles, the months forgotten."""
    yield (
        f"retention sweep (dry run, as of {result.as_of}): {result.due} ticket(s) due "
        f"for deletion{' and purge' if result.purge else ''}"
    )
    for due in result.planned[:50]:
        yield (
            f"  ticket {due.ticket_id}  case {due.case_id}  widget {due.widget_id}  "
            f"retention ended {due.retention_until}"
        )
    if result.due > 50:
        yield f"  … and {result.due - 50} more (use --json for up to 1000)"
    yield f"would purge {result.due if result.purge else 0} from Zendesk's deleted-tickets bin"
    if not result.users_checked:
        yield "Zendesk end-user profiles: not checked (Zendesk could not be asked)"
    for user in result.users_planned:
        yield f"would delete Zendesk user {user} (no ticket names them after this)"
    if result.users_kept:
        yield f"{result.users_kept} Zendesk user(s) kept: other tickets name them"
    for period in result.forgotten:
        yield commands.retention_forget.describe(period, planned=True)


def _swept(result: commands.retention.SweepResult) -> Iterator[str]:
    yield (
        f"retention sweep {result.run_id} (as of {result.as_of}): due {result.due}, "
        f"deleted {result.deleted}, already gone {result.already_gone}, "
        f"purged {result.purged}, failed {result.failed}, "
        f"previously erased {result.previously_erased}, ledger events {result.recorded}, "
        f"held {result.held}, Zendesk users deleted {result.users_deleted}, "
        f"kept {result.users_kept}"
    )
    if (r := result.reconciled) is not None:
        yield (
            f"reconcile: {r['months']} month(s) searched; unknown expired tickets "
            f"{r['found']}, deleted {r['deleted']}, already gone {r['already_gone']}, "
            f"held {r['held']}, failed {r['failed']}"
        )
    for period in result.forgotten:
        yield commands.retention_forget.describe(period, planned=False)


def verify_lines(verdict: commands.checkpoints.Verdict, thorough: bool) -> tuple[bool, list[Line]]:
    """(whether the ledger verified against what was given, what to say)."""
    result, tables, bad_signatures = verdict.chain, verdict.tables, verdict.bad_signatures
    first = result.first_problem
    # The file, not the ledger: an altered checkpoint proves nothing either way.
    lines = [err(f"snapzen: bad checkpoint file: {bad.message}") for bad in bad_signatures]
    if bad_signatures and first is None and not tables.problems:
        lines.append(err(
            f"snapzen: the ledger itself verifies ({result.rows} rows, head seq "
            f"{result.head_seq}) but was not compared with that checkpoint; ask for an "
            "unaltered copy"
        ))  # fmt: skip
        return False, lines
    if first is not None or tables.problems:
        if first is not None:
            lines.append(err(f"snapzen: ledger TAMPERED: first bad row {first.line()}"))
        lines += [err(f"snapzen: also: {p.line()}") for p in result.problems if p is not first]
        lines += [
            err(f"snapzen: working tables disagree with the chain: {p.line()}")
            for p in tables.problems
        ]
        if tables.unlisted:
            lines.append(err(
                f"snapzen: more disagreements than these {len(tables.problems)} were found "
                "and are not listed"
            ))  # fmt: skip
        return False, lines
    given = verdict.checkpoints_given
    lines.append(out(
        f"ledger OK: {result.rows} ledger rows, head seq {result.head_seq}, hash {result.head_hash}"
        + (f"; {result.checkpoints_checked} checkpoint(s) match" if given else "")
        + ("; SQLite integrity check ok (every index agrees with its table)" if thorough else "")
    ))  # fmt: skip
    lines.append(out(
        f"cases and runs agree with the chain: {tables.cases_checked} cases, "
        f"{tables.runs_checked} runs checked"
        + (f"; {tables.before_log} decided before the decision log" if tables.before_log else "")
    ))  # fmt: skip
    if not given:
        lines.append(out(
            "note: rows deleted from the end of the chain leave it consistent; only a "
            "checkpoint kept elsewhere (--checkpoint FILE --public-key FILE) can show that"
        ))  # fmt: skip
    return True, lines


def caught_up_lines(
    found: commands.reconcile.ReconcileResult | None, done: ReapplyResult | None
) -> Iterator[Line]:
    """`init --adopt` and `ledger restore`: Zendesk's tickets adopted or caught up with, then
    the erasure journal re-applied."""
    if found is not None:
        yield from _reconciled(found)
    if done is None:
        return
    yield out(
        f"erasure journal: {done.entries} erasure(s) re-applied, {done.withheld} chat(s) "
        f"withheld, {done.events} erased event(s) appended, {done.requests} request "
        f"event(s) restored ({done.from_replaced} known only to the replaced ledger)"
    )
    if done.no_journal:
        yield out("no erasure journal: your statement that there is none is recorded")
    if done.in_flight:
        yield err(
            f"{len(done.in_flight)} chat(s) of erased people were being sent when the backup "
            "was taken: run `snapzen sync`, then `snapzen ledger erase` for them again"
        )


def _reconciled(found: commands.reconcile.ReconcileResult) -> Iterator[Line]:
    counts = found.counts
    yield out(
        f"Zendesk since {found.since.date().isoformat()} ({found.via.value}, "
        f"{found.pages} request(s)): {found.cases_found} snapengage case(s) with tickets; "
        f"adopted {counts.adopted}, already recorded {counts.already}, "
        f"flagged {len(counts.flagged)}"
    )
    if found.in_flight:
        yield out(
            f"{found.in_flight} case(s) in flight in the replaced ledger or the backup: "
            f"their jobs were waited for; {found.looked_up} found by external_id beyond the "
            "bulk read"
        )
    if counts.flagged:
        yield err(
            f"{len(counts.flagged)} case(s) need a person (several tickets with one external "
            "id, or a ticket the ledger did not expect); see `snapzen status`"
        )


def access_lines(result: commands.access_request.AccessResult) -> Iterator[Line]:
    """An access pack written: its files and hashes, then what it could not hold."""
    yield out(
        f"access pack {result.request_id}: {result.tickets} ticket(s), "
        f"{len(result.case_ids)} chat(s); {result.json_path} sha256 {result.sha256_json}; "
        f"{result.html_path} sha256 {result.sha256_html}"
    )
    if not result.found:
        yield err("nothing found for this person (recorded as such)")
    if result.forgotten:
        yield err(result.forgotten)
    if result.snapengage_copies:
        yield out(f"SnapEngage's own copy included for {result.snapengage_copies} chat(s)")
    for entry in result.for_review:
        yield err(
            f"NOT in the pack, review first: Zendesk ticket {entry['ticket_id']} (created "
            f"{entry.get('created_at')}, channel {entry.get('channel')}) was not created by "
            "snapzen and may hold other people's data; if it may be given to this person, "
            f"rerun with --include-ticket {entry['ticket_id']}"
        )
    if result.snapengage_unreadable:
        yield err(
            f"SnapEngage did not return its copy of chats {result.snapengage_unreadable} (rerun)"
        )
    if result.unreadable:
        yield err(f"tickets NOT read from Zendesk (rerun): {result.unreadable}")


def reconcile_lines(report: dict[str, Any]) -> Iterator[Line]:
    """A `ledger reconcile` check in one line (its findings follow as a table)."""
    counts = ", ".join(f"{kind.replace('_', ' ')} {n}" for kind, n in report["findings"].items())
    yield out(
        f"reconcile {report['run_id']}: {report['tickets_seen']} ticket(s) read in "
        f"{report['requests']} request(s) since {report['since']}; "
        f"{report['cases_checked']} synced case(s) checked; findings: {counts}"
    )
    if not report["complete"]:
        yield err(
            f"incomplete: stopped after {report['requests']} request(s) (--max-requests); "
            "a ticket not read is not judged missing"
        )
    for flag in report.get("resolved", []):
        yield out(f"resolved flag {flag['kind']} of case {flag['case_id']}: Zendesk agrees now")
