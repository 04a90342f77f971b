"""The working store: the ledger database, its schema, the outbox of cases, cursors, runs, the
writer lock, flags and the ledger's identity."""
