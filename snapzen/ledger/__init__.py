"""The local SQLite database: cases outbox, append-only transfer ledger, cursors and runs."""
