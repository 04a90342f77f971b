"""Policy: pure domain logic (models, consent, transform, redaction, countries). No I/O."""
