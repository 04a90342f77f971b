"""Clients: HTTP transport and the SnapEngage (source) and Zendesk (sink) APIs. No database here."""
