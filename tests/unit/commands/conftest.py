"""Fixtures the old folders' conftests held."""

from tests.ledger_fixtures import db, ledger_path, tamper  # noqa: F401
from tests.ops_fixtures import _logging_to_current_stderr  # noqa: F401
