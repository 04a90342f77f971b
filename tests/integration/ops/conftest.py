"""Fixtures the old folders' conftests held."""

from tests.ops_fixtures import _logging_to_current_stderr  # noqa: F401
