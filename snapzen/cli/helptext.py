"""Help that reads well: readable placeholders and examples, applied to every command.

Applied once to the whole command tree when Click builds it (``SnapzenGroup``), so commands
added later get the same treatment without repeating it in each option.
"""

from __future__ import annotations

import inspect
from datetime import UTC, date, datetime, timedelta
from typing import Any, get_args, get_origin

from typer.core import TyperGroup

# Examples shown under each command's help, keyed by the command's path. A command missing
# here is caught by a test (every command has an example).
EXAMPLES: dict[str, list[str]] = {
    "sync": [
        "snapzen sync",
        "snapzen -c /etc/snapzen.toml sync --wait --widget WIDGET_ID --actor cron",
    ],
    "status": ["snapzen status", "snapzen status --check", "snapzen status --format prometheus"],
    "run": ["snapzen run", "snapzen run --every 5m --format json"],
    # {week_ago} and {yesterday}: UTC dates filled in when the help is shown, so the example
    # is inside SnapEngage's 60-day window whenever it is pasted.
    "backfill": [
        "snapzen backfill --since {week_ago} --until {yesterday} --dry-run",
        "snapzen backfill --since {week_ago} --until {yesterday} --wait",
    ],
    "retry": ["snapzen retry --all-failed", "snapzen retry --case CASE_ID --wait"],
    "dismiss": [
        "snapzen dismiss --case CASE_ID --reason 'no start time in the payload'",
        "snapzen dismiss --case CASE_ID --reason 'test chat' --format json",
    ],
    "retention sweep": ["snapzen retention sweep --dry-run", "snapzen retention sweep --json"],
    "ledger list": [
        "snapzen ledger list --since 2026-01-01 --basis art49_1a",
        "snapzen ledger list --wide --format csv > ledger.csv",
    ],
    "ledger export": [
        "snapzen ledger export transfers-2026.csv --since 2026-01-01",
        "snapzen ledger export - --format jsonl | gzip > ledger.jsonl.gz",
    ],
    "ledger report": ["snapzen ledger report --since 2026-01-01", "snapzen ledger report --json"],
    "ledger subject": [
        "printf '%s' person@example.com | snapzen ledger subject --email -",
        "snapzen ledger subject --email person@example.com --format json",
    ],
    "ledger erase": [
        "snapzen ledger erase --email person@example.com --dry-run",
        "snapzen ledger erase --email - --wait --actor dpo < request.txt",
    ],
    "ledger keygen": ["snapzen ledger keygen operator.pem operator.pub.pem"],
    "ledger checkpoint": ["snapzen ledger checkpoint head-2026-01.json --signing-key operator.pem"],
    "ledger cosign": ["snapzen ledger cosign head-2026-01.json --signing-key auditor.pem"],
    "ledger verify": [
        "snapzen ledger verify",
        "snapzen ledger verify --checkpoint head-2026-01.json --public-key operator.pub.pem",
        "snapzen ledger verify --thorough   # before handing the ledger or a copy to anyone",
    ],
    "ledger serve": [
        "snapzen ledger serve",
        "snapzen ledger serve --host 0.0.0.0 --port 8001",
    ],
    "ledger access": [
        "snapzen ledger access --email - --out pack-2026-02-01/ < request.txt",
        "snapzen ledger access --case CASE_ID --out pack/ --received 2026-01-28",
    ],
    "ledger requests": ["snapzen ledger requests", "snapzen ledger requests --json"],
    "ledger notices": ["snapzen ledger notices", "snapzen ledger notices --json"],
    "ledger notices done": ["snapzen ledger notices done NOTICE_ID --when 2026-12-07"],
    "ledger hold": [
        "snapzen ledger hold add --ticket 1234 --reason 'litigation 2026-07'",
        "snapzen ledger hold list",
    ],
    "ledger hold add": ["snapzen ledger hold add --email - --reason 'litigation' < email.txt"],
    "ledger hold remove": ["snapzen ledger hold remove --ticket 1234 --reason 'case closed'"],
    "ledger hold list": ["snapzen ledger hold list", "snapzen ledger hold list --json"],
    "ledger reapply-erasures": [
        "snapzen ledger reapply-erasures",
        "snapzen ledger reapply-erasures --journal /backups/erasures.jsonl --wait",
    ],
    "ledger reconcile": [
        "snapzen ledger reconcile",
        "snapzen ledger reconcile --since 2026-01-01 --json",
    ],
    "ledger backup": ["snapzen ledger backup /backups/snapzen-$(date +%F).db"],
    "ledger restore": ["snapzen ledger restore /backups/snapzen-2026-12-01.db"],
    "init": ["snapzen init", "snapzen init --adopt"],
    "sandbox serve": [
        "snapzen sandbox serve --ready-file /tmp/sandbox.env",
        'eval "$(snapzen sandbox serve --detach --ready-file /tmp/sandbox.json)"',
    ],
    "sandbox dump": ["snapzen sandbox dump --what tickets", "snapzen sandbox dump --url URL"],
}


def example_text(line: str, today: date | None = None) -> str:
    """An example with its relative dates filled in (UTC)."""
    today = today or datetime.now(UTC).date()
    return line.replace("{week_ago}", (today - timedelta(days=7)).isoformat()).replace(
        "{yesterday}", (today - timedelta(days=1)).isoformat()
    )


def _base(annotation: Any) -> Any:
    """``int`` for ``int | None`` or ``list[int] | None``."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) is list or (len(args) == 1 and annotation is not args[0]):
        return _base(args[0]) if args else annotation
    return annotation


def placeholder(param: Any) -> str | None:
    """A word a reader understands (YYYY-MM-DD, FILE, N) instead of ``<%Y-%m-%d>`` or
    ``<list[str]>``; None keeps what the command set itself."""
    if param.metavar is not None:
        return None
    if param.param_type_name == "argument":
        return (param.name or "value").upper()  # named as the help text names it
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return ""  # a flag takes no value: nothing to show
    desc = getattr(param, "type_descriptor", None)
    if desc is None:
        return None
    name = (param.name or "value").lower()
    if desc.is_choice and desc.choices is not None:
        return "|".join(str(getattr(c, "value", c)) for c in desc.choices)
    if desc.is_datetime:
        formats = desc.parameter_info.formats or ["%Y-%m-%d"]
        return "|".join(
            f.replace("%Y", "YYYY").replace("%m", "MM").replace("%d", "DD")
            .replace("%H", "HH").replace("%M", "MM").replace("%S", "SS")
            for f in formats
        )  # fmt: skip
    if _base(desc.annotation) is bool:
        return ""
    if desc.is_path:
        return "DIR" if "dir" in name else "FILE"
    base = _base(desc.annotation)
    if base is int:
        return "ID" if name in ("ticket", "seq") else "N"
    if base is float:
        return "SECONDS" if ("wait" in name or "seconds" in name) else "NUMBER"
    if name in ("widget", "case"):
        return "ID"
    return name.upper().replace("_", "-") if name in ("email", "host", "actor") else "TEXT"


def _fix(params: list[Any]) -> None:
    for param in params:
        shown = placeholder(param)
        if shown is not None:
            param.metavar = shown


def _help_option_without_placeholder(command: Any) -> None:
    """--help is made by Click on demand, after the tree is built: fix it as it is made."""
    made = command.get_help_option

    def get_help_option(ctx: Any) -> Any:
        option = made(ctx)
        if option is not None:
            option.metavar = ""
        return option

    command.get_help_option = get_help_option


def reflow(text: str) -> str:
    """A docstring's paragraphs as single lines, so help wraps at the terminal's width only
    (the source wraps at 100 columns). Paragraphs whose lines are a list or indented (code,
    examples) keep their line breaks."""
    paragraphs = [p.strip("\n") for p in inspect.cleandoc(text).split("\n\n")]
    kept = []
    for paragraph in paragraphs:
        lines = paragraph.splitlines()
        structured = any(line.startswith((" ", "-", "*", "$", "|", "```")) for line in lines)
        kept.append(paragraph if structured else " ".join(line.strip() for line in lines))
    return "\n\n".join(kept)


def _polish(command: Any, path: str) -> None:
    if command.help:
        command.help = reflow(command.help)
    _fix(command.params)
    _help_option_without_placeholder(command)
    examples = [example_text(line) for line in EXAMPLES.get(path, [])]
    if examples and not command.epilog:
        # Rich help keeps single line breaks only between paragraphs: one example per line.
        command.epilog = "Examples:\n\n" + "\n\n".join(f"  $ {line}" for line in examples)
    for name, sub in getattr(command, "commands", {}).items():
        _polish(sub, f"{path} {name}".strip())


class SnapzenGroup(TyperGroup):
    """The top-level group: polishes the whole tree once it is built."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.help:
            self.help = reflow(self.help)
        for name, sub in self.commands.items():
            _polish(sub, name)
        _help_option_without_placeholder(self)

    def get_params(self, ctx: Any) -> list[Any]:
        params: list[Any] = super().get_params(ctx)
        _fix(params)  # typer adds its completion options after __init__
        return params
