"""snapzen: SnapEngage → Zendesk with a GDPR transfer ledger."""

__version__ = "0.1.0"
