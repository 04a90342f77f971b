"""Settings of the loopback emulator: sizes, pacing, faults and the fixed sandbox credentials."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from datetime import datetime

# The consent notice the demo company's page shows (its version is sent with each consent
# answer, with a receipt id); snapzen is told its text's SHA-256 (consent.notices).
NOTICE_VERSION = "2026-01"
NOTICE_TEXT = (
    "Your chat is stored by Zendesk, Inc. in the United States, a country without an adequacy "
    "finding for all recipients: US authorities may access it and you may have fewer remedies."
)
NOTICES = {NOTICE_VERSION: hashlib.sha256(NOTICE_TEXT.encode("utf-8")).hexdigest()}

# Zendesk's and SnapEngage's clocks, which snapzen's offset does not move.
service_time = time.time  # the emulated service's own clock, not snapzen's

FAULT_KINDS = (
    "http_500",
    "http_502",
    "http_503_retry_after",
    "http_503",
    "timeout",
    "malformed_json",
)


@dataclass(frozen=True)
class SandboxConfig:
    """Everything that shapes one sandbox run; defaults give a realistic, fault-free demo."""

    # Synthetic SnapEngage data
    chats: int = 300
    widgets: int = 2
    days: int = 7
    seed: int = 1
    eu_share: float = 0.6
    consent_share: float = 0.5
    # Where the demo company (the controller) is established: the UK, so every chat it sends
    # to Zendesk in the US is a restricted transfer (transfer.controller_country).
    controller_country: str = "GB"
    # Hostile extremes (a 2,000-line transcript, a >70,000-character message); 0 disables them so
    # tiny test data sets stay tiny.
    long_transcripts: int = 2
    # Moment the generated chats end at; None = when the Sandbox starts. Fixing it makes two runs
    # byte-identical, which the determinism tests rely on.
    anchor: datetime | None = None
    retention_days: int = 60
    page_size: int = 100

    # Transport behaviour
    latency_ms: int = 0
    rate_limit_per_minute: int = 700
    rate_window_seconds: float = 60.0
    job_seconds: float = 0.2
    # Zendesk's pages disagree on how long a job status stays (a day; older ones an hour, and
    # only the last 100 jobs): the sandbox keeps the stricter hour.
    job_retention_seconds: float = 3600.0
    max_jobs_in_flight: int = 30
    # Bulk reads (reconciliation): Zendesk's own budgets and the incremental export's page size.
    search_export_rate_per_minute: int = 100
    incremental_export_rate_per_minute: int = 10
    export_page_size: int = 1000
    oauth_token_ttl_seconds: int = 1800
    # Search (search, search/count, search/export) sees a ticket as it was this long ago: "it
    # can take up to a few minutes for new tickets ... to be indexed for search". A ticket
    # created, changed or deleted since is found in its previous state (a new one: not at all).
    search_index_lag_seconds: float = 120.0
    # Zendesk archives solved/closed tickets (~120 days after closing; a Zendesk sandbox after
    # 3 days). Here: this many seconds after the ticket was created; None never archives.
    # Archived tickets leave List Tickets and deleted_tickets, and stay readable by id and
    # through search.
    archive_after_seconds: float | None = None
    # Refuse import items whose requester has no email ("Requester: Email cannot be blank"),
    # as a real account may: Zendesk's docs disagree on whether a name alone is enough.
    strict_requester: bool = False
    # List Tickets (GET /tickets, the external_id lookup) has its own budget per window, sent
    # as `zendesk-ratelimit-tickets-index: total=100; remaining=99; resets=43`.
    tickets_index_per_minute: int = 100
    # Rate-limit header spellings, as recorded from real accounts: "2024" sends
    # ratelimit-limit/-remaining/-reset, "2023" only rate-limit-reset (hyphenated); both send
    # X-Rate-Limit and X-Rate-Limit-Remaining.
    rate_header_style: str = "2024"

    # Faults (applied to /snapengage and /zendesk, never to /_sandbox or OAuth)
    fault_rate: float = 0.0
    timeout_share: float = 0.1
    fault_kinds: tuple[str, ...] = field(default=FAULT_KINDS)
    fault_timeout_seconds: float = 2.0

    # Network
    host: str = "127.0.0.1"
    port: int = 0

    # Fixed credentials: fake values, safe to print, only valid against this emulator.
    org_id: str = "1234567890123456"
    snapengage_token: str = "sandbox-se-token-0123456789abcdef"
    zendesk_email: str = "admin@sandbox.example"
    zendesk_token: str = "sandbox-zd-token-0123456789"
    oauth_client_id: str = "snapzen-sandbox"
    oauth_client_secret: str = "sandbox-oauth-secret-0123"

    def __post_init__(self) -> None:
        unknown = set(self.fault_kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; choose from {FAULT_KINDS}")
        for name in ("eu_share", "consent_share", "fault_rate", "timeout_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if self.chats < 0 or self.widgets < 1 or self.days < 1:
            raise ValueError("chats must be >= 0, widgets >= 1 and days >= 1")
        if self.archive_after_seconds is not None and self.archive_after_seconds < 0:
            raise ValueError("archive_after_seconds must be >= 0")
        if self.search_index_lag_seconds < 0:
            raise ValueError("search_index_lag_seconds must be >= 0")
        if self.rate_header_style not in ("2023", "2024"):
            raise ValueError("rate_header_style must be 2023 or 2024")
        if self.page_size < 1 or self.rate_limit_per_minute < 1 or self.rate_window_seconds <= 0:
            raise ValueError("page_size, rate_limit_per_minute and rate_window_seconds must be > 0")
