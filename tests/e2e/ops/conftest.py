"""The fixtures of tests/ops_fixtures.py."""

from tests.ops_fixtures import _logging_to_current_stderr  # noqa: F401
