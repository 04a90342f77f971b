"""snapzen: SnapEngage → Zendesk with a GDPR transfer ledger."""

# The one place the version lives (pyproject reads it); CHANGELOG.md says what each one changed.
__version__ = "0.2.0.dev0"
