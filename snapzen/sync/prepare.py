"""The pure part of handling one case: stage it (validate, store as JSON) and prepare it
(consent decision, ticket, ledger fields). No database, no network, no clock: the pipeline
does the I/O around it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from snapzen.ledger.rights.subjects import name_ref, subject_ref
from snapzen.ledger.store import outbox
from snapzen.ledger.store.case_status import CaseStatus
from snapzen.policy.consent import decide, find_consent
from snapzen.policy.models import (
    Decision,
    ImportTicket,
    LegalBasis,
    Outcome,
    SnapEngageCase,
    parse_case,
)
from snapzen.policy.redaction import DETECTOR_VERSION, Redactor
from snapzen.policy.transform import TicketDraft, build_ticket
from snapzen.support.errors import InvalidRecordError, RecordError
from snapzen.support.jsoncodec import dumps_text, replace_lone_surrogates, utf8_safe
from snapzen.support.scrub import one_line
from snapzen.support.settings import Settings

# status, outcome, reason, subject ref, facts for the decision's ledger row
Terminal = tuple[str, str | None, str | None, str | None, dict[str, Any]]


@dataclass
class Prepared:
    """One case turned into a ticket to send (with its ``draft``: what the ledger records),
    a terminal outcome (withheld, ignored), or an error. ``draft`` has no ``batch_index``:
    the batch sets it."""

    case_id: str
    ticket: ImportTicket | None = None
    draft: dict[str, Any] | None = None
    terminal: Terminal | None = None
    error: str | None = None


class CasePreparer:
    def __init__(self, settings: Settings, ledger_key: bytes) -> None:
        self.settings = settings
        self.key = ledger_key
        self.redactor = Redactor.from_config(
            settings.redaction.enabled, settings.redaction.extra_patterns
        )

    # ------------------------------------------------------------ stage

    def stage(self, widget: str, raw: Any) -> outbox.StagedCase:
        try:
            # Plain JSON values (what SnapEngage sends): the text is then the same as with
            # default=str.
            raw_json = dumps_text(raw)
        except TypeError:
            raw_json = json.dumps(raw, ensure_ascii=False, default=str)
        if not utf8_safe(raw_json):
            # A JSON "\ud800" escape decodes to a lone surrogate that no UTF-8 store accepts:
            # SQLite raised mid-page, aborting every run on that page. Replace them with U+FFFD
            # once, here, so the ledger, the ids and the ticket sent to Zendesk are all clean.
            raw = replace_lone_surrogates(raw)
            raw_json = json.dumps(raw, ensure_ascii=False, default=str)
        try:
            case = parse_case(raw)
        except InvalidRecordError as exc:
            case_id = raw.get("id") if isinstance(raw, dict) else None
            usable_id = case_id if isinstance(case_id, str) and 0 < len(case_id) <= 200 else None
            # The synthetic id hashes the standard library's text, whatever the stored text's
            # encoder: ids of invalid cases staged by earlier versions stay the same.
            stable_text = json.dumps(raw, ensure_ascii=False, default=str)
            return outbox.StagedCase(
                case_id=usable_id or outbox.synthetic_case_id(stable_text),
                widget_id=widget,
                raw_json=raw_json,
                started_at=None,
                case_type=None,
                error=f"invalid SnapEngage case: {exc}",
            )
        started_at = case.started_at
        error = None if started_at else "invalid SnapEngage case: no usable start time"
        subject = subject_ref(self.key, case.visitor_email)
        return outbox.StagedCase(
            case_id=case.id,
            widget_id=widget,
            raw_json=raw_json,
            started_at=started_at,
            case_type=case.type,
            error=error,
            # Known from the first fetch, so an Art. 17 erasure also finds unsent chats.
            subject_ref=subject,
            name_ref=name_ref(self.key, case.visitor_name) if subject else None,
            consent_seen=find_consent(case, self.settings.consent) is not None,
        )

    # ------------------------------------------------------------ decide + transform

    def prepare_stored(self, case_id: str, widget: str, raw_json: str) -> Prepared:
        """``prepare`` for a case as stored (its raw JSON text): decoded and validated here;
        a payload that no longer parses is an error, not an exception."""
        try:
            case = parse_case(json.loads(raw_json))
        except (InvalidRecordError, ValueError) as exc:
            return Prepared(case_id, error=f"invalid SnapEngage case: {exc}")
        return self.prepare(case_id, widget, case, subject_ref(self.key, case.visitor_email))

    def prepare(
        self, case_id: str, widget: str, case: SnapEngageCase, subject: str | None
    ) -> Prepared:
        kind = (case.type or "").strip().lower()
        allowed = {"chat"} | ({"offline"} if self.settings.snapengage.include_offline else set())
        if kind not in allowed:
            reason = f"type_{kind or 'missing'}_not_synced"
            facts = {"widget_id": widget}
            return Prepared(case_id, terminal=(CaseStatus.IGNORED, None, reason, subject, facts))
        decision = decide(case, self.settings.consent, self.settings.transfer_for(widget)[1])
        if decision.outcome is Outcome.WITHHELD:
            facts = self.decision_facts(case, widget, decision)
            outcome, why = decision.outcome.value, decision.reason
            return Prepared(case_id, terminal=(CaseStatus.WITHHELD, outcome, why, subject, facts))
        try:
            draft = build_ticket(case, decision, self.settings, self.redactor.redact)
        except (ValueError, RecordError) as exc:
            return Prepared(case_id, error=f"cannot build ticket: {one_line(exc)}")
        transfer = self.transfer_fields(case, widget, decision, subject, draft)
        return Prepared(
            case_id,
            ticket=draft.ticket,
            draft={
                "outcome": decision.outcome.value,
                "legal_basis": (decision.basis or LegalBasis.NOT_RESTRICTED).value,
                "subject_ref": subject,
                "transfer": transfer,
                "not_restricted_reason": None if decision.restricted else decision.reason,
                "not_restricted_facts": None
                if decision.restricted
                else self.not_restricted_facts(widget, decision),
                "retention_until": draft.retention_until.isoformat()
                if draft.retention_until
                else None,
            },
        )

    def not_restricted_facts(self, widget: str, decision: Decision) -> dict[str, Any]:
        client, transfer = self.settings.transfer_for(widget)
        facts: dict[str, Any] = {
            "regime": decision.regime,
            "controller_country": transfer.controller_country,
        }
        if client is not None:
            facts["client"] = client
        return facts

    def transfer_fields(
        self,
        case: SnapEngageCase,
        widget: str,
        decision: Decision,
        subject: str | None,
        draft: TicketDraft,
    ) -> dict[str, Any] | None:
        """The ledger row of a restricted transfer (None when it is not one)."""
        if not decision.restricted:
            return None
        return {
            **self.decision_facts(case, widget, decision),
            "subject_ref": subject,
            "legal_basis": decision.basis.value if decision.basis else None,
            "mechanism_ref": decision.mechanism_ref,
            "data_categories": draft.categories,
            "redactions": {"detector": DETECTOR_VERSION, "counts": draft.redactions},
            "retention_until": retention.isoformat()
            if (retention := draft.retention_until)
            else None,
        }

    def decision_facts(
        self, case: SnapEngageCase, widget: str, decision: Decision
    ) -> dict[str, Any]:
        """What a decision row records besides its outcome: where the visitor was (a fact,
        not what decided it when the controller is in the area), who would receive the chat
        and where, and the consent evidence with its source. ``consent_observed_at`` stays
        empty unless a source says when consent was given; the chat's start, which is not
        that moment, is recorded under its own name."""
        client, transfer = self.settings.transfer_for(widget)
        recipient = transfer.zendesk
        evidence = decision.evidence
        started = case.started_at
        details: dict[str, Any] = {
            "chat_started_at": started.isoformat() if started else None,
            "controller_country": transfer.controller_country,
        }
        if client is not None:  # processor mode: the client is the controller
            details["client"] = client
        # Added with issue 26 (older rows lack them): the regime, the recipient's basis and
        # its evidence, the contract reference, the notice's hash.
        if decision.regime:
            details["regime"] = decision.regime
        details.update(decision.facts)
        if evidence is not None:
            details["consent_receipt"] = evidence.receipt
            details["notice_version"] = evidence.notice_version
        return {
            "widget_id": widget,
            "origin_country": decision.origin_country or "unknown",
            "recipient": recipient.name,
            "destination_country": recipient.country,
            "consent_variable": evidence.variable if evidence else None,
            "consent_value": evidence.value if evidence else None,
            "consent_source": evidence.source if evidence else None,
            "consent_observed_at": evidence.observed_at.isoformat()
            if evidence and evidence.observed_at
            else None,
            "details": details,
        }
