"""Deterministic, deliberately hostile synthetic SnapEngage cases plus their ground truth.

Everything is drawn from one ``random.Random(seed)`` and one seeded Faker, relative to an anchor
time, so a seed and an anchor fully determine the data set.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from random import Random
from typing import Any, TypeVar

import pycountry
from faker import Faker

from snapzen.sandbox.config import NOTICE_VERSION, SandboxConfig

Case = dict[str, Any]
T = TypeVar("T")

_LOCALES = "en_US en_GB de_DE fr_FR es_ES pl_PL pt_BR ja_JP ar_AA he_IL".split()  # noqa: SIM905
# Visitors' geo-IP countries, weighted towards big markets; Switzerland is among those outside on
# purpose: adequate, but not EEA.
_RESTRICTED = (  # noqa: SIM905
    "DE DE FR FR GB GB NL ES IT PL SE IE AT BE PT NO IS LI DK FI CZ RO GR HU MT CY"
).split()
_OUTSIDE = "US US US BR JP IN CA AU CH TR MX ZA KR AR NG".split()  # noqa: SIM905

_ACCEPTED = ["yes", "true", "1", "accepted", "on", "YES", "True", "On", "Accepted", "TRUE"]
_REFUSED = ["no", "false", "0", "declined", "No", "FALSE", "Declined", "off"]
# "  YES " counts as odd: accepted values match case-insensitively but exactly (no trimming).
_ODD: list[str | None] = ["maybe", "", "  YES ", None, "y", "yes please", "👍", "null"]

_INVALID_EMAILS = [
    "not-an-email",
    "a@b",
    "x@@y.com",
    "john doe@example.com",
    "@example.com",
    "trailing.dot@example.",
    "ünïcødé@@mail",
]
# Deliberately simple: one "@", no whitespace, a dotted domain with non-empty labels. It only has
# to agree with itself (the truth and the fake Zendesk), and it rejects the hostile samples.
_EMAIL = re.compile(r"^[^@\s]+@(?:[^@\s.]+\.)+[^@\s.]+$")

_HOSTILE_SNIPPETS = [
    "<script>alert('xss')</script>",
    "<b>bold</b> &amp; <i>entities</i> &lt;3",
    "Emoji storm 🙂🔥🚀👩‍👩‍👧‍👦",
    "مرحبا، أحتاج مساعدة في طلبي رقم ١٢٣",
    "שלום, יש לי בעיה עם החשבון שלי",
    "line one\nline two\r\nline three\n\n  indented",
    "[12:00:00] Agent: this line pretends to be a transcript header",
    "zero\u200bwidth\u200fmarks and a tab\tinside",
    "' OR 1=1; DROP TABLE cases; --",
    '```json\n{"not": "real"}\n```',
]
_PLACES = ("javascript_variables", "operator_variables", "labels")  # of a consent answer
_LANGS = ["en-us,en;q=0.5", "de-de,de;q=0.9,en;q=0.5", "fr-FR", "ar", "he-IL", "ja", "pt-BR", ""]


@dataclass(frozen=True)
class Dataset:
    """Generated widgets and cases (sorted by created time then id) with one truth row per case."""

    anchor: datetime
    widget_ids: list[str]
    cases: list[Case]
    truth: list[dict[str, Any]]


def is_valid_email(value: object) -> bool:
    """True when *value* is a syntactically plausible email address."""
    return isinstance(value, str) and bool(_EMAIL.fullmatch(value))


def _country_name(code: str | None) -> str | None:
    """As SnapEngage shows it: "" for a code it cannot place; an empty code stays as it is."""
    return getattr(pycountry.countries.get(alpha_2=code.upper()), "name", "") if code else code


def _uuid(rng: Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _pick(roll: float, table: list[tuple[float, Callable[[], T]]]) -> T:
    """The outcome of the first row whose cumulative share exceeds ``roll`` (one draw)."""
    return next(make for share, make in table if roll < share)()


_fakers = threading.local()


def _faker() -> Faker:
    """This thread's Faker, built once (~10 ms each, and the tests build a sandbox per test):
    each generator re-seeds it and draws only through its locales' seeded generators."""
    if not hasattr(_fakers, "faker"):
        _fakers.faker = Faker(_LOCALES)
    faker: Faker = _fakers.faker
    return faker


class _Generator:
    def __init__(self, cfg: SandboxConfig, anchor: datetime) -> None:
        self.cfg = cfg
        self.anchor = anchor
        self.rng = Random(cfg.seed)
        self.fake = _faker()
        self.fake.seed_instance(cfg.seed)
        en = self.fake["en_US"]
        self.agents = [(f"wc:{en.user_name()}@support.example", en.first_name()) for _ in range(5)]

    def name(self) -> str:
        rng, fake, en = self.rng, self.fake, self.fake["en_US"]
        return _pick(
            rng.random(),
            [
                (0.06, lambda: ""),
                (0.18, lambda: fake[rng.choice(["ar_AA", "he_IL"])].name()),
                (0.26, lambda: f"{en.first_name()} {rng.choice(['🦄', '🎉', '👩🏽‍💻', '✨'])}"),
                (0.29, lambda: f"<b>{en.name()}</b>"),
                (0.31, lambda: " ".join(fake["de_DE"].name() for _ in range(12))),
                (1.0, lambda: fake[rng.choice(_LOCALES)].name()),
            ],
        )

    def email(self) -> str | None:
        roll = self.rng.random()
        if roll < 0.07:
            return None
        if roll < 0.10:
            return ""
        if roll < 0.20:
            return self.rng.choice(_INVALID_EMAILS)
        address = str(self.fake["en_US"].email())
        return address.upper() if self.rng.random() < 0.1 else address

    def country(self) -> tuple[bool, Any, str]:
        """(present, raw value, region) for the visitor's geo-IP country code."""
        rng, roll, eu = self.rng, self.rng.random(), self.cfg.eu_share
        if roll < eu:
            code = rng.choice(_RESTRICTED)
            if code == "GB" and rng.random() < 0.3:
                code = "UK"
            elif rng.random() < 0.05:
                code = code.lower()
            return True, code, "restricted"
        if roll < eu + (1 - eu) * 0.15:
            present, raw = rng.choice([(False, None), (True, ""), (True, "XX"), (True, None)])
            return present, raw, "unknown"
        return True, rng.choice(_OUTSIDE), "outside"

    def consent(self) -> tuple[str, Any]:
        rng = self.rng
        if rng.random() < self.cfg.consent_share:
            return "accepted", rng.choice(_ACCEPTED)
        return _pick(
            rng.random(),
            [
                (0.4, lambda: ("refused", rng.choice(_REFUSED))),
                (0.65, lambda: ("odd", rng.choice(_ODD))),
                (1.0, lambda: ("absent", None)),
            ],
        )

    def message(self) -> str:
        if self.rng.random() < 0.2:
            return self.rng.choice(_HOSTILE_SNIPPETS)
        return str(self.fake[self.rng.choice(_LOCALES)].sentence(nb_words=self.rng.randint(3, 18)))

    def transcript(self, start_s: int, count: int, agent: tuple[str, str] | None) -> list[Case]:
        """Alternating visitor and agent lines (the visitor's with empty id and alias)."""
        entries: list[Case] = []
        t = start_s
        for i in range(count):
            author, alias = ("", "") if agent is None or i % 2 == 0 else agent
            line = {"id": author, "alias": alias, "message": self.message(), "translations": None}
            entries.append({**line, "date": t, "date_seconds": t, "date_milliseconds": t * 1000})
            t += self.rng.randint(2, 90)
        return entries

    def case(self, widget_id: str, kind: str) -> tuple[Case, dict[str, Any]]:
        rng, en = self.rng, self.fake["en_US"]
        case_id = _uuid(rng)
        offline = kind == "offline"
        in_progress = kind == "in_progress"
        agent = None if offline else rng.choice(self.agents)
        agent_id, agent_alias = agent or ("", "")
        n_messages = {"long_lines": 2000, "offline": 1}.get(kind) or (
            rng.randint(1, 3) if in_progress else rng.randint(2, 20)
        )
        if in_progress:
            created = self.anchor - timedelta(seconds=rng.uniform(20, 280))
        else:
            max_age = self.cfg.days * 86400.0
            span = n_messages * 92 + 600.0
            created = self.anchor - timedelta(seconds=rng.uniform(min(span, max_age), max_age))
        created_ms = int(created.timestamp() * 1000)
        start_s = created_ms // 1000
        transcripts = self.transcript(start_s, n_messages, agent)
        if kind == "long_message" and transcripts:
            base = "Pasted log: " + "".join(self.message() + " " for _ in range(40))
            long_text = (base * (72_000 // len(base) + 1))[:72_500]
            transcripts[0]["message"] = long_text

        name = self.name()
        email = self.email()
        present, country_code, region = self.country()
        consent, consent_value = self.consent()
        browser = rng.choice(["Chrome", "Firefox", "Safari", "Opera"])
        plan = {"name": "plan", "value": rng.choice(["free", "pro", "enterprise"])}
        labels: list[Case] = []
        if rng.random() < 0.3:
            labels.append({"name": "topic", "value": rng.choice(["billing", "bug", "sales"])})
        # Where the value sits: only the visitor's page counts by default, not agents'.
        consent_source = None if consent == "absent" else rng.choices(_PLACES, [2, 1, 1])[0]

        last_s = transcripts[-1]["date_seconds"] if transcripts else start_s
        case: Case = {
            "id": case_id,
            "url": f"https://www.snapengage.com/viewcase?c={case_id}",
            "type": "offline" if offline else "chat",
            "requested_by": email,
            "requester_details": {
                "name": name,
                "emails": [email] if email else [],
                "phones": [en.phone_number()] if rng.random() < 0.3 else [],
                "social_profile_links": [],
                "age": None,
            },
            "description": transcripts[0]["message"] if transcripts else "",
            "created_at_date": created_ms,
            "created_at_seconds": start_s,
            "created_at_milliseconds": created_ms,
            "proactive_chat": rng.random() < 0.2,
            "page_url": f"https://shop.example/{en.uri_path()}",
            "referrer_url": rng.choice(["", "https://www.google.com/", "https://news.example/"]),
            "entry_url": "https://shop.example/",
            "ip_address": en.ipv4_public() if rng.random() < 0.8 else en.ipv6(),
            "user_agent": getattr(en, browser.lower())(),
            "browser": browser,
            "os": rng.choice(["Windows", "Linux", "iOS", "macOS", "Android"]),
            "country": _country_name(country_code),
            "region": "",
            "city": en.city() if region != "unknown" else "",
            "latitude": round(rng.uniform(-60, 70), 4),
            "longitude": round(rng.uniform(-170, 170), 4),
            "source_id": rng.choice([1, 2, 3]),
            "language_code": rng.choice(_LANGS),
            "chat_waittime": 0 if offline else rng.randint(0, 240),
            "chat_agent_id": agent_id,
            "chat_agent_alias": agent_alias,
            "destination_url": "",
            "transcripts": transcripts,
            "javascript_variables": [plan],
            "operator_variables": [],
            "labels": labels,
            "widget_id": widget_id,
        }
        if present:
            case["country_code"] = country_code
        if consent_source is not None:
            # The consent tool's receipt and the notice shown, beside every answer.
            case[consent_source] += [
                {"name": "gdpr_consent", "value": consent_value},
                {"name": "gdpr_consent_receipt", "value": f"rcpt-{case_id[:8]}"},
                {"name": "gdpr_notice_version", "value": NOTICE_VERSION},
            ]
        # A live chat has no final length yet: either no field at all, or a zero.
        if offline or (in_progress and rng.random() < 0.5):
            case["chat_duration"] = 0
        elif not in_progress:
            case["chat_duration"] = max(1, last_s - start_s + rng.randint(5, 120))
            if rng.random() < 0.3:
                case["survey_score"] = rng.choice([0, 20, 40, 60, 80, 100])
                case["survey_comments"] = self.message()
        truth = {
            "id": case_id,
            "widget_id": widget_id,
            "type": case["type"],
            "created_at": datetime.fromtimestamp(created_ms / 1000, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "in_progress": in_progress,
            "country_code": country_code,
            "region": region,
            "consent": consent,
            "consent_source": consent_source,
            "email_valid": is_valid_email(email),
        }
        return case, truth


def generate(cfg: SandboxConfig, anchor: datetime) -> Dataset:
    """Build the data set for *cfg*, with chats ending at *anchor* (an aware UTC datetime)."""
    gen = _Generator(cfg, anchor)
    rng = gen.rng
    widget_ids = [_uuid(rng) for _ in range(cfg.widgets)]
    kinds = ["chat"] * cfg.chats
    slots = list(range(cfg.chats))
    rng.shuffle(slots)
    # A few special cases at deterministic positions: in-progress chats, offline messages and
    # the huge transcripts that break naive comment builders.
    n_live = min(len(slots), max(1, cfg.chats // 100)) if cfg.chats >= 3 else 0
    n_offline = max(1, cfg.chats * 8 // 100) if cfg.chats >= 5 else 0
    special = (
        ["in_progress"] * n_live
        + ["offline"] * n_offline
        + ["long_lines", "long_message"][: cfg.long_transcripts]
    )
    for slot, kind in zip(slots, special, strict=False):
        kinds[slot] = kind
    made = [gen.case(rng.choice(widget_ids), kind) for kind in kinds]
    made.sort(key=lambda pair: (pair[0]["created_at_milliseconds"], pair[0]["id"]))
    return Dataset(anchor, widget_ids, [case for case, _ in made], [row for _, row in made])
