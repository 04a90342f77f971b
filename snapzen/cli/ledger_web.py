"""`snapzen ledger serve`: a read-only Datasette over a sanitized snapshot of the ledger."""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from snapzen.cli.common import ConfigOption, handle_errors
from snapzen.cli.ledger import _evidence_settings, _open_read, app
from snapzen.support import errors


@app.command()
@handle_errors
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8001,
    workdir: Annotated[
        Path | None,
        typer.Option(help="Keep the sanitized snapshot and metadata here (default: a temp dir)."),
    ] = None,
    sql_time_limit_ms: Annotated[int, typer.Option(help="Datasette SQL time limit.")] = 5000,
    prepare_only: Annotated[
        bool,
        typer.Option("--prepare-only", help="Write snapshot + metadata, print the command, exit."),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Open a read-only (immutable) Datasette on a snapshot without raw payloads, with
    column descriptions and canned queries."""
    from snapzen.ledger import web  # lazy: start-up time

    settings = _evidence_settings(config)
    _open_read(settings).conn.close()  # same existence check and message as other commands
    if importlib.util.find_spec("datasette") is None:
        raise errors.ConfigError(
            "datasette is not installed: pip install 'snapzen[audit]'; the container image "
            "leaves it out: build the auditors' image of docs/cli.md (`ledger serve`)"
        )
    from snapzen.cli.serve import run_until_signalled, write_plugin

    with tempfile.TemporaryDirectory(prefix="snapzen-serve-") as tmp:
        target = workdir or Path(tmp)
        snapshot, metadata, sha = web.prepare(Path(settings.ledger.path), target)
        command = web.serve_command(
            snapshot,
            metadata,
            host=host,
            port=port,
            sql_time_limit_ms=sql_time_limit_ms,
            extra=["--plugins-dir", str(write_plugin(target))],
        )
        typer.echo(f"snapshot {snapshot} sha256 {sha}", err=True)
        if prepare_only:
            typer.echo(" ".join(command))
            if workdir is None:
                typer.echo("(temp dir removed; pass --workdir to keep the files)", err=True)
            return
        typer.echo(f"serving read-only at http://{host}:{port}/{web.DB_NAME}", err=True)
        code = run_until_signalled(command)  # SIGTERM/Ctrl-C: Datasette stopped, tmp removed
    raise typer.Exit(code)
