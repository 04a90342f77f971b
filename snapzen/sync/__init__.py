"""The sync engine: the pass that fetches, prepares, submits, polls and records."""
