"""The fixtures of tests/ledger_fixtures.py."""

from tests.ledger_fixtures import db, ledger_path, tamper  # noqa: F401
