"""Commands: one use case each (sync, run, backfill, retry, dismiss, retention, erase, status).

They compose the sync engine, the clients and the ledger; the CLI is a thin layer over them.
"""
