"""The Jinja2 templates of what snapzen writes for a person: the access pack's page
(``access_pack.html`` and its sentences ``access_words.html``, snapzen.commands.access_text),
the answer to an erasure request (``erasure_response.txt``, snapzen.commands.erasure_response),
`ledger report`'s sentences (``ledger_report.txt``, snapzen.commands.report_text), the lines
the CLI prints (``said/<result>.txt``, snapzen.commands.summaries) and `status --format
prometheus` (``status_metrics.txt``). Autoescape is on for HTML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from snapzen.commands import controllers


@jinja2.pass_eval_context
def _finalize(context: jinja2.nodes.EvalContext, value: Any) -> Any:
    """A missing fact (None) prints nothing on the HTML page; the text outputs (the CLI's
    lines, `ledger report`, the metrics, the erasure response) print it as ``str`` does, as
    their printers did before the templates: ``None in None``, not a blank that reads as a
    value."""
    return "" if value is None and context.autoescape else value


TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent),
    autoescape=jinja2.select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    finalize=_finalize,
)


TEMPLATES.globals["controller_sentence"] = controllers.sentence
