"""The one place each API client is built from settings.

Every command that talks to SnapEngage or Zendesk gets its client here, so the HTTP settings,
the service name the logs and the pacer use, and the sleep a test replaces are wired once.
Each builder raises ConfigError (exit 2) before any network call when a setting it needs is
missing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from snapzen.clients.deletion import BulkTicketDeleter, ZendeskUserEraser
from snapzen.clients.http import HttpClient
from snapzen.clients.snapengage import SnapEngageClient
from snapzen.clients.zendesk import ZendeskClient
from snapzen.support.settings import Settings
from snapzen.sync.contracts import Sink, Source

Sleep = Callable[[float], None]


def zendesk_from(settings: Settings, *, sleep: Sleep = time.sleep) -> ZendeskClient:
    """The Zendesk client (imports, reads, deletions, search, users)."""
    return ZendeskClient(
        settings.zendesk, HttpClient(settings.http, service="zendesk", sleep=sleep), sleep=sleep
    )


def snapengage_from(settings: Settings, *, sleep: Sleep = time.sleep) -> SnapEngageClient:
    """The SnapEngage Logs API client."""
    return SnapEngageClient(
        settings.snapengage, HttpClient(settings.http, service="snapengage", sleep=sleep)
    )


@dataclass
class Clients:
    """What a sync or backfill pass reads from and writes to."""

    source: Source
    sink: Sink


def clients_from(settings: Settings, *, sleep: Sleep = time.sleep) -> Clients:
    """A pass's clients: SnapEngage (the source) and Zendesk (the sink)."""
    return Clients(snapengage_from(settings, sleep=sleep), zendesk_from(settings, sleep=sleep))


def ticket_deleter_from(settings: Settings, api: ZendeskClient | None = None) -> BulkTicketDeleter:
    """Zendesk's bulk ticket deletion (soft delete, then purge), as the sweep and erasure use
    it; ``api``: the Zendesk client already built for the command, if any."""
    return BulkTicketDeleter(
        api if api is not None else zendesk_from(settings),
        timeout=settings.zendesk.job_timeout_seconds,
    )


def user_eraser_from(settings: Settings, email: str) -> ZendeskUserEraser:
    """The Zendesk end-user eraser bound to one email (which goes no further than it)."""
    return ZendeskUserEraser(zendesk_from(settings), email.strip())
