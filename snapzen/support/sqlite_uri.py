"""Opening a database file read-only through an SQLite URI, safely.

Written by hand because the standard library has no helper for it: ``sqlite3.connect`` takes
a path or a URI, and a read-only open needs the URI form (``mode=ro``). Pasted into
``file:...`` as it is, a path's ``%62`` is read as ``b`` (another file: say, an untouched copy
beside a tampered ledger, which verify would then check instead), and a ``?`` or ``#`` cuts
the path short. ``Path.as_uri`` percent-encodes it.
"""

from __future__ import annotations

from pathlib import Path


def read_only_uri(path: Path | str) -> str:
    """The URI opening ``path`` (made absolute) read-only; pass it with ``uri=True``."""
    return Path(path).resolve().as_uri() + "?mode=ro"
