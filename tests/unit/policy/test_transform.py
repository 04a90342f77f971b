"""Case → Zendesk import payload: ticket shape, requester, transcript lines, splitting, tags."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from pydantic import ValidationError

from snapzen.policy.consent import decide
from snapzen.policy.models import ImportTicket, LegalBasis, parse_case
from snapzen.policy.redaction import Redactor
from snapzen.policy.transform import (
    CommentPart,
    build_ticket,
    clean_text,
    expiry_tag,
    retention_until,
    split_by_bytes,
    transcript_lines,
)
from snapzen.support.errors import InvalidRecordError, RecordError
from snapzen.support.settings import Settings
from tests.fakes import make_case

START = datetime(2026, 3, 14, 9, 26, 53, tzinfo=UTC)
REDACT = Redactor.from_config(["card"]).redact


def ticket_for(raw: dict, settings: Settings | None = None) -> ImportTicket:
    settings = settings or Settings()
    case = parse_case(raw)
    decision = decide(case, settings.consent, settings.transfer)
    return build_ticket(case, decision, settings, REDACT).ticket


def test_ticket_shape() -> None:
    t = ticket_for(make_case("abc", started=START, name="Zoë Ünal", email="Zoe@Example.org"))
    assert t.external_id == "snapengage:abc"
    assert t.subject == "Chat with Zoë Ünal on 2026-03-14"
    assert t.requester is not None
    assert t.requester.model_dump() == {"name": "Zoë Ünal", "email": "zoe@example.org"}
    assert t.created_at == "2026-03-14T09:26:53Z"
    assert t.solved_at == t.updated_at == "2026-03-14T09:28:53Z"  # start + chat_duration
    assert t.status == "solved"
    assert t.tags == ["snapengage", "expires_2028_03", "gdpr_art49_1a"]
    assert len(t.comments) == 1 and t.comments[0].public is False
    body = t.comments[0].value
    assert "[09:26:53] Visitor: Hello, I need help" in body
    assert "[09:27:23] Agent Smith: Sure, how can I help?" in body


@pytest.mark.parametrize("duration", [float("inf"), 1e300, 10**30, "1e309", 3e11])
def test_a_duration_past_the_year_9999_is_an_error_naming_the_field(duration: object) -> None:
    raw = make_case("abc", started=START)
    raw["chat_duration"] = duration
    with pytest.raises(InvalidRecordError, match=r"^field chat_duration: "):
        ticket_for(raw)


# The numeric and time fields of a case, and values SnapEngage could send in any of them.
NUMERIC_FIELDS = [
    ("chat_duration",),
    ("created_at_milliseconds",),
    ("created_at_seconds",),
    ("created_at_date",),
    ("transcripts", "date_milliseconds"),
    ("transcripts", "date_seconds"),
    ("transcripts", "date"),
]
ODD_NUMBERS = (
    st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats().map(repr)
    | st.datetimes(timezones=st.timezones()).map(lambda moment: moment.isoformat())
    | st.sampled_from(["inf", "nan", "1e309", "9999-12-31T23:59:59-05:00", "0001-01-01+05:00"])
)


@hsettings(max_examples=300, deadline=None)
@given(fields=st.lists(st.sampled_from(NUMERIC_FIELDS), min_size=1, max_size=3), data=st.data())
def test_odd_numbers_in_any_time_field_give_a_ticket_or_a_one_line_error(
    fields: list[tuple[str, ...]], data: st.DataObject
) -> None:
    """Whatever number a case's time fields hold, building its ticket gives a ticket or the
    error sync/prepare records as that case's failure (ValueError or RecordError, one line):
    never another exception, which would end the whole pass."""
    raw = make_case("abc", started=START)
    for field in fields:
        target = raw["transcripts"][0] if len(field) == 2 else raw
        target[field[-1]] = data.draw(ODD_NUMBERS)
    try:
        ticket_for(raw)
    except (ValueError, RecordError) as exc:
        assert str(exc) and "\n" not in str(exc)


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "x@@y.com", "", None, "a b@c.de"])
def test_invalid_email_gives_name_only_requester(email: str | None) -> None:
    t = ticket_for(make_case("abc", started=START, email=email, name="Ann"))
    assert t.requester is not None and t.requester_id is None
    assert t.requester.model_dump() == {"name": "Ann", "email": None}


def test_nameless_visitor_still_has_a_requester_name() -> None:
    t = ticket_for(make_case("abc", started=START, name="", email=None))
    assert t.requester is not None and t.requester.name == "SnapEngage visitor"


def test_expiry_counts_two_years_from_chat_start() -> None:
    leap = datetime(2024, 2, 29, 23, 59, tzinfo=UTC)
    assert retention_until(leap, 2).isoformat() == "2026-02-28"
    assert expiry_tag(leap, 2) == "expires_2026_02"
    assert expiry_tag(datetime(2026, 12, 31, 23, 0, tzinfo=UTC), 2) == "expires_2028_12"


def test_not_restricted_basis_tag() -> None:
    t = ticket_for(make_case("abc", started=START, country="US", consent=None))
    assert LegalBasis.NOT_RESTRICTED.tag in t.tags


def test_long_transcript_is_split_across_comments_without_losing_lines() -> None:
    settings = Settings()
    settings.zendesk.comment_max_bytes = 2_000
    messages = [("" if i % 2 else "Op", f"line {i} " + "x" * 150) for i in range(200)]
    messages.append(("", "y" * 5_000))  # one line longer than a whole comment
    t = ticket_for(make_case("abc", started=START, messages=messages), settings)
    assert len(t.comments) > 10
    assert all(len(c.value.encode()) <= 2_000 for c in t.comments)
    assert all("(part " in c.value for c in t.comments)
    joined = "".join(c.value for c in t.comments)
    for i in range(200):
        assert f"line {i} " in joined
    assert joined.count("y") >= 5_000


@pytest.mark.parametrize(
    "word",
    ["Здравствуйте, мне нужна помощь", "您好，我需要帮助", "مرحبا أحتاج مساعدة", "😀👍🏽👨‍👩‍👧 ok"],
)
def test_non_latin_transcript_is_split_by_utf8_size_and_reassembles(word: str) -> None:
    # 60,000 characters of Cyrillic, CJK, Arabic or emoji are far over Zendesk's ~64 KB.
    settings = Settings()
    messages = [("" if i % 2 else "Op", f"{i} " + word * 40) for i in range(120)]
    messages.append(("", word * 4_000))  # one message over a whole comment's size
    case = make_case("abc", started=START, messages=messages)
    t = ticket_for(case, settings)
    sizes = [len(c.value.encode("utf-8")) for c in t.comments]
    assert len(t.comments) > 1 and max(sizes) <= settings.zendesk.comment_max_bytes
    # The parts, headers taken off, give back the whole transcript exactly.
    parsed = parse_case(case)
    lines = [line for _, line in transcript_lines(parsed, REDACT, {})]
    bodies = [c.value.split("\n\n", 1)[1] for c in t.comments]
    rebuilt = bodies[0]
    for previous, body in itertools.pairwise(bodies):
        # A part that ends inside a line (the long message) goes on without a line break.
        rebuilt += ("" if not _ends_a_line(previous, lines) else "\n") + body
    assert rebuilt == "\n".join(lines)


def _ends_a_line(body: str, lines: list[str]) -> bool:
    last = body.rsplit("\n", 1)[-1]
    return any(line == last or line.endswith("\n" + last) for line in lines)


def join_parts(parts: list[CommentPart]) -> str:
    """The transcript text the parts were made from: a line break between parts unless the
    part before ``continues`` a line cut inside."""
    pieces: list[str] = []
    for index, part in enumerate(parts):
        if index and not parts[index - 1].continues:
            pieces.append("\n")
        pieces.append(part.text)
    return "".join(pieces)


def test_split_never_cuts_inside_a_character_and_prefers_line_ends() -> None:
    lines = [(START, "ab"), (None, "é" * 10), (None, "😀" * 5), (None, "z")]
    parts = split_by_bytes(lines, 12, START)
    for part in parts:
        assert len(part.text.encode("utf-8")) <= 12
        part.text.encode("utf-8").decode("utf-8")  # whole characters only
    assert join_parts(parts) == "\n".join(line for _, line in lines)
    assert parts[0].text == "ab"  # "ab" + "\n" + 20 bytes would not fit: cut at the line end
    assert [p.continues for p in parts].count(True) >= 2  # the long lines were cut inside


def test_anonymous_requester_id_replaces_a_name_only_requester() -> None:
    settings = Settings()
    settings.zendesk.anonymous_requester_id = 4242
    t = ticket_for(make_case("abc", started=START, email="not-an-email", name="Ann"), settings)
    assert t.requester is None and t.requester_id == 4242
    assert "Ann" in t.subject  # the visitor's name stays in the subject
    body = t.model_dump(mode="json", exclude_none=True)
    assert "requester" not in body and body["requester_id"] == 4242
    # A valid email still makes (or finds) the visitor's own profile.
    t = ticket_for(make_case("abc", started=START, email="ann@example.org"), settings)
    assert t.requester is not None and t.requester.email == "ann@example.org"
    assert t.requester_id is None


def test_hostile_text_is_made_safe_but_kept() -> None:
    messages = [("", "<script>alert(1)</script> مرحبا 😀\x00\x07 \ud800 end")]
    t = ticket_for(make_case("abc", started=START, messages=messages))
    body = t.comments[0].value
    assert "<script>alert(1)</script> مرحبا 😀" in body
    assert "\x00" not in body and "\x07" not in body and "\ud800" not in body
    body.encode("utf-8")  # would raise on a lone surrogate


def test_clean_text() -> None:
    assert clean_text("a\tb\nc\x1bd") == "a\tb\ncd"
    assert clean_text(None) == ""


def test_card_numbers_are_redacted_in_comments() -> None:
    settings = Settings()
    raw = make_case("abc", started=START, messages=[("", "my card is 4111 1111 1111 1111 ok")])
    case = parse_case(raw)
    draft = build_ticket(case, decide(case, settings.consent, settings.transfer), settings, REDACT)
    assert "4111" not in draft.ticket.comments[0].value
    assert "[REDACTED:card]" in draft.ticket.comments[0].value
    assert draft.redactions == {"card": 1}


def test_offline_message_uses_description() -> None:
    raw = make_case("abc", started=START, kind="offline")
    raw["transcripts"] = []
    raw["description"] = "Please call me back"
    t = ticket_for(raw)
    assert "Visitor: Please call me back" in t.comments[0].value


def test_import_payload_is_strict() -> None:
    good = ticket_for(make_case("abc", started=START)).model_dump()
    with pytest.raises(ValidationError):
        ImportTicket.model_validate({**good, "extra_field": 1})
    with pytest.raises(ValidationError):
        ImportTicket.model_validate({**good, "tags": ["two words"]})
