"""Fixtures the old folders' conftests held."""

from tests.ledger_fixtures import db, ledger_path, tamper  # noqa: F401
