"""Data shapes: a tolerant model of what SnapEngage sends, strict models of what we send Zendesk.

SnapEngage documents few of the fields it sends and their types, so the case model accepts
unknown fields, treats every field but ``id`` as optional, and copes with epoch seconds or
milliseconds. The Zendesk import payload is strict (``extra="forbid"``): a typo there would be
silently dropped by Zendesk, so we want it to fail in our tests instead.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from snapzen.support import clock
from snapzen.support.errors import InvalidRecordError
from snapzen.support.jsoncodec import dumps_bytes
from snapzen.support.settings_gdpr import ConsentSource


def epoch_to_datetime(value: Any) -> datetime | None:
    """Epoch seconds or milliseconds (int, float or numeric string), or an ISO time (one with
    no zone is UTC) → aware UTC datetime; None for anything else (NaN, negatives, junk)."""
    if isinstance(value, str):
        with suppress(ValueError):
            return epoch_to_datetime(float(value))
        with suppress(ValueError, OverflowError):
            at = clock.parse(value)
            at.astimezone(UTC)  # OverflowError: past the year 9999 (or before 1) in UTC
            return at
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        return None
    with suppress(OverflowError, OSError, ValueError):
        return clock.from_epoch(value)
    return None


def first_time(*values: Any) -> datetime | None:
    """The first of ``values`` that is a time (SnapEngage sends one moment in several fields)."""
    return next((at for value in values if (at := epoch_to_datetime(value)) is not None), None)


class Lenient(BaseModel):
    # Unknown fields are accepted and dropped: the raw case is stored as received, and
    # keeping a copy of every extra field in each model cost ~15 % of validation time.
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


# A list SnapEngage may send as null.
NullAsEmpty = BeforeValidator(lambda value: [] if value is None else value)


def _stringish(value: Any) -> Any:
    """Numbers and booleans sent where text is expected become text; other junk becomes None."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value).lower() if isinstance(value, bool) else str(value)
    return None


def _int_as_text(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


# ``str | None`` that turns other values into text or None. (A custom pydantic-core union
# schema did this before issue 25; it did not buy 10 % at 1 s jobs: bench/RESULTS.md v14.)
Text = Annotated[str | None, BeforeValidator(_stringish)]


class NameValue(Lenient):
    name: Text = None
    value: Text = None


class TranscriptEntry(Lenient):
    id: Text = None
    alias: Text = None
    message: Text = None
    date: Any = None
    date_seconds: Any = None
    date_milliseconds: Any = None

    @property
    def at(self) -> datetime | None:
        return first_time(self.date_milliseconds, self.date_seconds, self.date)

    @property
    def is_visitor(self) -> bool:
        # SnapEngage leaves the author id blank for the visitor (reference §6.3).
        return not (self.id or "").strip()


class RequesterDetails(Lenient):
    name: Text = None
    emails: Annotated[list[Any], NullAsEmpty] = Field(default_factory=list)


class SnapEngageCase(Lenient):
    """One case from the Logs API. Only ``id`` is required."""

    id: Annotated[str, BeforeValidator(_int_as_text)] = Field(min_length=1, max_length=200)
    type: Text = None
    requested_by: Text = None
    requester_details: Annotated[
        RequesterDetails | None, BeforeValidator(lambda v: v if isinstance(v, dict) else None)
    ] = None
    description: Text = None
    created_at_date: Any = None
    created_at_seconds: Any = None
    created_at_milliseconds: Any = None
    chat_duration: Any = None
    country_code: Text = None
    chat_agent_alias: Text = None
    widget_id: Text = None
    transcripts: Annotated[list[TranscriptEntry], NullAsEmpty] = Field(default_factory=list)
    # The consent sources (support.settings_gdpr.ConsentSource) are these three fields.
    javascript_variables: Annotated[list[NameValue], NullAsEmpty] = Field(default_factory=list)
    operator_variables: Annotated[list[NameValue], NullAsEmpty] = Field(default_factory=list)
    labels: Annotated[list[NameValue], NullAsEmpty] = Field(default_factory=list)

    @property
    def started_at(self) -> datetime | None:
        return first_time(
            self.created_at_milliseconds, self.created_at_seconds, self.created_at_date
        )

    def ended_at(
        self, start: datetime | None, line_times: list[datetime | None]
    ) -> datetime | None:
        """Start + chat_duration, else the last transcript line, else the start, given
        ``started_at`` and each transcript entry's ``at`` (in any order), which callers
        compute once (each ``at`` parses up to three epoch fields)."""
        if start is None:
            return None
        duration = _as_number(self.chat_duration)
        candidates = [start, *(at for at in line_times if at is not None)]
        if duration is not None and duration > 0:
            try:
                candidates.append(start + timedelta(seconds=duration))
            except OverflowError:  # infinity, or an end after the year 9999
                raise InvalidRecordError(
                    "field chat_duration: the chat would end after the year 9999"
                ) from None
        return max(candidates)

    @property
    def visitor_name(self) -> str:
        name = (self.requester_details.name if self.requester_details else None) or ""
        return name.strip()

    @property
    def visitor_email(self) -> str | None:
        """The first email we were given (not validated here)."""
        if self.requested_by and self.requested_by.strip():
            return self.requested_by.strip()
        if self.requester_details:
            for email in self.requester_details.emails:
                if isinstance(email, str) and email.strip():
                    return email.strip()
        return None


def _as_number(value: Any) -> float | None:
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        with suppress(ValueError):
            try:
                return float(value)
            except OverflowError:  # an int past what a float holds (JSON allows it)
                return math.inf if int(value) > 0 else -math.inf
    return None


def parse_case(raw: Any) -> SnapEngageCase:
    """Validate one raw case; InvalidRecordError names the first bad field (never its value)."""
    if not isinstance(raw, dict):
        raise InvalidRecordError(f"case is a {type(raw).__name__}, not an object")
    try:
        return SnapEngageCase.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "case"
        raise InvalidRecordError(f"field {where}: {first['msg']}") from None


@lru_cache(maxsize=4096)
def email_address(value: str | None) -> str | None:
    """The one email rule: the address as snapzen uses it (trimmed, lower-cased), or None when
    it is not a valid address. It decides what email a ticket carries and which chats get a
    subject reference (ledger.rights.subjects), so a lookup by email finds every chat whose
    ticket carries it.

    email-validator's syntax rules without DNS lookups; `a@b`, `n/a`, special-use domains
    (`.local`, `.onion`) and numeric top-level domains are refused, `.test` (the sandbox's)
    is accepted. The address keeps its spelling, lower-cased, as the ledger's references were
    always made: not the validator's normalised form, which spells a punycode domain in
    Unicode, so a ledger written before this rule would no longer find `x@xn--bcher-kva.de`."""
    if not value or not value.strip() or len(value) > 320:
        return None
    cleaned = value.strip()
    try:
        validate_email(cleaned, check_deliverability=False, test_environment=True)
    except EmailNotValidError:
        return None
    return cleaned.lower()


# ---------------------------------------------------------------- decisions


class LegalBasis(StrEnum):
    ART45 = "art45"
    ART46 = "art46"
    ART49_1A = "art49_1a"
    ART49_1B = "art49_1b"
    NOT_RESTRICTED = "not_restricted"

    @property
    def tag(self) -> str:
        return f"gdpr_{self.value}"


class Outcome(StrEnum):
    ELIGIBLE = "eligible"
    WITHHELD = "withheld"
    NOT_RESTRICTED = "not_restricted"


class ConsentEvidence(BaseModel):
    model_config = ConfigDict(frozen=True)
    source: ConsentSource  # support.settings_gdpr.CONSENT_SOURCES
    variable: str
    value: str
    # When consent was given, if a source says so; None otherwise. Never the chat's start.
    observed_at: datetime | None = None
    receipt: str | None = None  # the consent tool's receipt id (consent.receipt_variable)
    notice_version: str | None = None  # the notice shown (consent.notice_version_variable)
    notice_sha256: str | None = None  # its text's hash, from consent.notices


class Decision(BaseModel):
    model_config = ConfigDict(frozen=True)
    outcome: Outcome
    basis: LegalBasis | None = None
    reason: str | None = None
    evidence: ConsentEvidence | None = None
    origin_country: str | None = None
    mechanism_ref: str | None = None  # the Art. 45 decision / Art. 46 safeguard relied on
    # The regime(s) the chat fell under ("uk_gdpr", "eu_gdpr", "uk_gdpr+eu_gdpr" for an
    # unknown visitor of a controller elsewhere); None when none applies.
    regime: str | None = None
    # What else explains the decision from its row alone: the recipient's basis and evidence,
    # the contract reference, the notice's SHA-256 (snapzen.policy.consent).
    facts: dict[str, Any] = Field(default_factory=dict)

    @property
    def restricted(self) -> bool:
        return self.outcome != Outcome.NOT_RESTRICTED


# ---------------------------------------------------------------- Zendesk import payload


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ImportRequester(Strict):
    name: str = Field(min_length=1, max_length=255)
    email: str | None = None


class ImportComment(Strict):
    value: str = Field(min_length=1)
    public: bool = False
    created_at: str
    author_id: int | None = None


class ImportTicket(Strict):
    external_id: str
    subject: str = Field(min_length=1, max_length=255)
    # One of the two: a requester to find or create by email (or name only), or an existing
    # user's id (zendesk.anonymous_requester_id, for visitors without a valid email).
    requester: ImportRequester | None = None
    requester_id: int | None = None
    created_at: str
    updated_at: str
    solved_at: str | None = None
    status: Literal["new", "open", "pending", "hold", "solved", "closed"]
    comments: list[ImportComment] = Field(min_length=1, max_length=5000)
    tags: list[str]

    @field_validator("tags")
    @classmethod
    def _tags(cls, tags: list[str]) -> list[str]:
        for tag in tags:
            if not re.fullmatch(r"[a-z0-9_:\-]+", tag):
                raise ValueError(f"tag {tag!r} has characters Zendesk would split or alter")
        return tags

    @model_validator(mode="after")
    def _one_requester(self) -> ImportTicket:
        if (self.requester is None) == (self.requester_id is None):
            raise ValueError("exactly one of requester and requester_id is required")
        return self


@dataclass(frozen=True)
class EncodedTicket:
    """An ``ImportTicket`` already validated and encoded: its JSON object exactly as
    ``ZendeskClient.submit_import`` writes it into a create_many body.

    What preparing a batch leaves: 100 encoded tickets take ~0.2 MB, the same 100 as
    pydantic models ~1.5 MB, and the intent recorded before the POST is these bytes."""

    external_id: str
    json: bytes

    @classmethod
    def of(cls, ticket: ImportTicket) -> EncodedTicket:
        return cls(ticket.external_id, ticket_json(ticket))


def ticket_json(ticket: ImportTicket | EncodedTicket) -> bytes:
    """One ticket of a create_many body, as JSON bytes."""
    if isinstance(ticket, EncodedTicket):
        return ticket.json
    return dumps_bytes(ticket.model_dump(mode="json", exclude_none=True))


class JobResult(Lenient):
    index: int | None = None
    id: int | None = None
    error: str | None = None
    details: str | None = None
    success: bool | None = None
    status: str | None = None


class JobStatus(Lenient):
    id: str
    status: str
    job_type: str | None = None
    total: int | None = None
    progress: int | None = None
    message: str | None = None
    results: list[JobResult] | dict[str, Any] | None = None

    @property
    def finished(self) -> bool:
        return self.status in ("completed", "failed", "killed")

    @property
    def result_items(self) -> list[JobResult]:
        return self.results if isinstance(self.results, list) else []


# Polls in a row a job may be absent from before it is given up on (see still_running).
ABSENT_POLLS = 3


def still_running(
    pending: Sequence[str], seen: Mapping[str, JobStatus], absent: dict[str, int]
) -> list[str]:
    """The jobs of ``pending`` to poll again after a poll that showed ``seen``: not finished,
    nor absent ABSENT_POLLS polls in a row (``absent`` counts; Zendesk drops or expires jobs,
    zenpy #291: the caller recovers such a job by lookup)."""
    for job_id in pending:
        absent[job_id] = 0 if job_id in seen else absent.get(job_id, 0) + 1
    return [j for j in pending if not (j in seen and seen[j].finished) and absent[j] < ABSENT_POLLS]
