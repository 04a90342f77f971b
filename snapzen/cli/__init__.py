"""The `snapzen` command line: thin commands over the library (wired in snapzen.cli.main)."""

from snapzen.cli.main import app, main

__all__ = ["app", "main"]
