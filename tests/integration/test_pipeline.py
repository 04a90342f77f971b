"""The sync pass against the in-process sandbox: outcomes, exactly-once at each crash, cursors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlite_utils

from snapzen.commands import service
from snapzen.ledger.evidence import verify
from snapzen.ledger.store.db import open_db
from snapzen.support.settings import Settings
from tests.fakes import SandboxApis, make_case, recent


class SimulatedCrash(BaseException):
    """Stands in for SIGKILL: not an Exception, so nothing in snapzen may catch it."""


def crash_at(point: str):
    def hook(reached: str) -> None:
        if reached == point:
            raise SimulatedCrash(point)

    return hook


def mixed_cases() -> dict[str, list[dict]]:
    t = recent(180)
    return {
        "w1": [
            make_case("eu-consent", started=t, country="DE", consent="yes"),
            make_case(
                # In the visitor's page: consent in labels (set by agents) no longer counts
                # by default (tests/integration/ledger/test_regulator.py).
                "eu-consent-upper",
                started=t,
                country="fr",
                consent="TRUE",
            ),
            make_case("eu-refused", started=t, country="DE", consent="no"),
            make_case("eu-none", started=t, country="IT", consent=None),
            make_case("us-visitor", started=t, country="US", consent=None),
            make_case("unknown-country", started=t, country=None, consent=None),
            make_case("bad-email", started=t, country="GB", consent="1", email="not-an-email"),
            make_case("offline-1", started=t, country="DE", consent="yes", kind="offline"),
            make_case("in-progress", started=recent(1), country="DE", consent="yes"),
        ],
        "w2": [
            make_case(f"w2-{i}", started=t - timedelta(minutes=i), widget="w2") for i in range(150)
        ],
    }


def load(apis: SandboxApis) -> None:
    for widget, cases in mixed_cases().items():
        apis.add_cases(widget, cases)


def statuses(db: sqlite_utils.Database) -> dict[str, str]:
    return dict(db.execute("SELECT case_id, status FROM cases").fetchall())


def chain_ok(db: sqlite_utils.Database) -> bool:
    return verify.verify_ledger(db.conn).ok


ELIGIBLE = {"eu-consent", "eu-consent-upper", "us-visitor", "bad-email"} | {
    f"w2-{i}" for i in range(150)
}
RESTRICTED_ELIGIBLE = ELIGIBLE - {"us-visitor"}


def test_full_sync_outcomes(settings: Settings, apis: SandboxApis) -> None:
    load(apis)
    result = service.sync(settings)
    db = open_db(settings.ledger.path)
    st = statuses(db)

    assert {c for c, s in st.items() if s == "synced"} == ELIGIBLE
    assert st["eu-refused"] == st["eu-none"] == st["unknown-country"] == "withheld"
    assert st["offline-1"] == "ignored"
    assert st["in-progress"] == "pending"  # not finished yet: waits for settle_minutes
    reasons = dict(db.execute("SELECT case_id, reason FROM cases WHERE status='withheld'"))
    assert reasons == {
        "eu-refused": "consent_refused",
        "eu-none": "no_consent_recorded",
        "unknown-country": "no_consent_recorded",
    }

    counts = apis.tickets_by_external_id()
    assert set(counts) == {f"snapengage:{c}" for c in ELIGIBLE}
    assert set(counts.values()) == {1}
    by_ext = {t["external_id"]: t for t in apis.tickets}
    assert "gdpr_not_restricted" in by_ext["snapengage:us-visitor"]["tags"]
    assert "gdpr_art49_1a" in by_ext["snapengage:eu-consent"]["tags"]
    assert by_ext["snapengage:bad-email"]["requester"] == {"name": "Visitor Name"}

    ledger = db.execute(
        "SELECT case_id, legal_basis, subject_ref FROM events WHERE event = 'transfer'"
    ).fetchall()
    assert {r[0] for r in ledger} == RESTRICTED_ELIGIBLE
    assert all(r[1] == "art49_1a" for r in ledger)
    dumped = "\n".join(str(r) for r in db.execute("SELECT * FROM events"))
    assert "visitor@example.org" not in dumped
    assert chain_ok(db)

    # Terminal cases no longer hold their raw payload; the running chat still does.
    held = {r[0] for r in db.execute("SELECT case_id FROM cases WHERE raw IS NOT NULL")}
    assert held == {"in-progress"}
    assert result.exit_code == 0
    assert result.counts.created == len(ELIGIBLE)


def test_second_sync_creates_nothing(settings: Settings, apis: SandboxApis) -> None:
    load(apis)
    service.sync(settings)
    posts = apis.requests["create_many"]
    result = service.sync(settings)
    assert result.counts.created == 0
    assert apis.requests["create_many"] == posts
    assert set(apis.tickets_by_external_id().values()) == {1}


@pytest.mark.parametrize("point", ["before_post", "after_post", "after_job_id", "after_job"])
def test_crash_at_each_point_then_rerun_is_exactly_once(
    settings: Settings, apis: SandboxApis, point: str
) -> None:
    load(apis)
    with pytest.raises(SimulatedCrash):
        service.sync(settings, crash_hook=crash_at(point))
    # Whatever Zendesk accepted before the crash finishes in the meantime.
    apis.complete_all_jobs()
    result = service.sync(settings)

    counts = apis.tickets_by_external_id()
    assert set(counts) == {f"snapengage:{c}" for c in ELIGIBLE}, "a chat was lost"
    assert set(counts.values()) == {1}, "a ticket was created twice"
    db = open_db(settings.ledger.path)
    transfers = "SELECT case_id FROM events WHERE event = 'transfer'"
    assert {r[0] for r in db.execute(transfers)} == RESTRICTED_ELIGIBLE
    assert len(db.execute(transfers).fetchall()) == len(RESTRICTED_ELIGIBLE)
    assert chain_ok(db)
    assert result.unresolved == 0
    run_outcomes = [r[0] for r in db.execute("SELECT outcome FROM runs ORDER BY started_at")]
    assert run_outcomes[0] == "aborted"


def test_ambiguous_post_waits_while_a_job_is_queued_then_recovers_before_the_grace(
    settings: Settings, apis: SandboxApis
) -> None:
    apis.add_cases("w1", [make_case(f"c{i}", started=recent(200)) for i in range(5)])
    apis.fail_post_after_accept = 1  # Zendesk created the job but we saw a 500
    settings.zendesk.recovery_grace_seconds = 3600
    first = service.sync(settings)
    # Inside the grace the cases are work in progress: reported, not an alert.
    assert (first.in_progress, first.unresolved, first.exit_code) == (5, 0, 0)

    # While Zendesk lists a queued import job nothing is re-sent (it may be ours).
    posts = apis.requests["create_many"]
    waiting = service.sync(settings)
    assert apis.requests["create_many"] == posts
    assert waiting.in_progress == 5 and waiting.exit_code == 0

    # Once no import job is queued or working, the lookup is conclusive: no hour's wait.
    apis.complete_all_jobs()
    second = service.sync(settings)
    assert second.counts.recovered == 5
    assert (second.in_progress, second.unresolved, second.exit_code) == (0, 0, 0)
    assert set(apis.tickets_by_external_id().values()) == {1}
    assert len(apis.tickets) == 5


def test_case_still_unresolved_after_the_grace_is_an_alert(
    settings: Settings, apis: SandboxApis
) -> None:
    apis.add_cases("w1", [make_case(f"c{i}", started=recent(200)) for i in range(2)])
    apis.fail_post_after_accept = 1
    settings.zendesk.recovery_grace_seconds = 0
    result = service.sync(settings)
    assert (result.in_progress, result.unresolved, result.exit_code) == (0, 2, 3)


def test_post_failure_before_accept_is_resent_once(settings: Settings, apis: SandboxApis) -> None:
    apis.add_cases("w1", [make_case(f"c{i}", started=recent(200)) for i in range(3)])
    apis.fail_post_before_accept = 1
    service.sync(settings)  # ambiguous: nothing created, cases stay pushing
    service.sync(settings)  # lookup finds nothing → pending → pushed again
    assert len(apis.tickets) == 3
    assert set(apis.tickets_by_external_id().values()) == {1}


def test_item_error_fails_one_case_rest_proceed_and_retries_are_bounded(
    settings: Settings, apis: SandboxApis
) -> None:
    apis.add_cases("w1", [make_case(f"c{i}", started=recent(200)) for i in range(4)])
    apis.item_errors["snapengage:c2"] = "Requester: Email is invalid"
    result = service.sync(settings)
    db = open_db(settings.ledger.path)
    row = db.execute("SELECT status, attempts, error FROM cases WHERE case_id='c2'").fetchone()
    assert row[0] == "failed" and row[1] == 1
    assert "Requester: Email is invalid" in row[2]
    assert result.exit_code == 3
    assert len(apis.tickets) == 3

    for _ in range(settings.pipeline.max_attempts + 2):
        service.sync(settings)
    attempts = db.execute("SELECT attempts FROM cases WHERE case_id='c2'").fetchone()[0]
    assert attempts == settings.pipeline.max_attempts  # then it waits for `snapzen retry`
    assert len(apis.tickets) == 3


def test_cursor_stops_at_first_unfinished_day(settings: Settings, apis: SandboxApis) -> None:
    now = datetime.now(UTC)
    old = now - timedelta(days=3)
    apis.add_cases(
        "w1", [make_case("old-fail", started=old), make_case("new", started=recent(200))]
    )
    apis.item_errors["snapengage:old-fail"] = "Description: cannot be blank"
    service.sync(settings)
    db = open_db(settings.ledger.path)
    cursor = db.execute("SELECT cursor_day FROM state WHERE widget_id='w1'").fetchone()[0]
    assert cursor == old.date().isoformat()
    # No chat was ever read for w2: no evidence to move a cursor on (a clock running ahead
    # would otherwise carry it past real days); its window keeps starting at what is held.
    assert db.execute("SELECT cursor_day FROM state WHERE widget_id='w2'").fetchone() is None


def test_deadline_at_risk_exits_3(settings: Settings, apis: SandboxApis) -> None:
    apis.add_cases("w1", [make_case("ancient", started=datetime.now(UTC) - timedelta(days=55))])
    apis.item_errors["snapengage:ancient"] = "Requester: Email is invalid"
    result = service.sync(settings)
    assert [c["case_id"] for c in result.at_risk] == ["ancient"]
    assert result.exit_code == 3


def test_malformed_cases_are_recorded_not_fatal(settings: Settings, apis: SandboxApis) -> None:
    apis.add_cases(
        "w1",
        [
            "not an object",
            {"id": None, "type": "chat"},
            {"id": "no-start", "type": "chat", "transcripts": None},
            {
                "id": "bad-types",
                "type": "chat",
                "created_at_milliseconds": "soon",
                "transcripts": [{"message": 5}],
                "labels": "x",
            },
            make_case("good", started=recent(200)),
        ],
    )
    result = service.sync(settings)
    db = open_db(settings.ledger.path)
    st = statuses(db)
    assert st["good"] == "synced"
    failed = dict(db.execute("SELECT case_id, error FROM cases WHERE status='failed'").fetchall())
    assert len(failed) == 4
    assert all(err and err.startswith("invalid SnapEngage case") for err in failed.values())
    assert result.exit_code == 3


def test_case_without_start_stays_failed_and_reported(
    settings: Settings, apis: SandboxApis
) -> None:
    """A payload with an id but no usable start must not slip into 'pending' where no
    check sees it (it would be lost silently at SnapEngage's deletion)."""
    apis.add_cases("w1", [{"id": "no-start", "type": "chat", "transcripts": []}])
    for _ in range(3):
        result = service.sync(settings)
        assert result.exit_code == 3
    db = open_db(settings.ledger.path)
    assert statuses(db)["no-start"] == "failed"


def test_broken_refetch_keeps_the_known_start(settings: Settings, apis: SandboxApis) -> None:
    case = make_case("later-broken", started=recent(5))  # not settled yet: stays pending
    apis.add_cases("w1", [case])
    service.sync(settings)
    broken = {
        **case,
        "created_at_milliseconds": "junk",
        "created_at_seconds": None,
        "created_at_date": None,
        "labels": "not a list",
    }
    apis.add_cases("w1", [broken], replace=True)
    service.sync(settings)
    db = open_db(settings.ledger.path)
    row = db.execute("SELECT started_at, day FROM cases WHERE case_id='later-broken'").fetchone()
    assert row[0] is not None and row[1] is not None


def test_whole_batch_refusal_fails_the_batch_then_isolates_the_bad_ticket(
    settings: Settings, apis: SandboxApis
) -> None:
    apis.add_cases("w1", [make_case(f"c{i}", started=recent(200)) for i in range(5)])
    apis.reject_batches_with = {"snapengage:c3"}
    first = service.sync(settings)  # 422 for the whole batch: recorded, not an abort
    assert first.exit_code == 3 and apis.tickets == []
    db = open_db(settings.ledger.path)
    assert set(statuses(db).values()) == {"failed"}
    assert db.execute("SELECT cursor_day FROM state WHERE widget_id='w1'").fetchone()

    service.sync(settings)  # retried one by one: only the bad one fails again
    assert sorted(t["external_id"] for t in apis.tickets) == [
        f"snapengage:c{i}" for i in (0, 1, 2, 4)
    ]
    assert {c: s for c, s in statuses(db).items() if s != "synced"} == {"c3": "failed"}


def test_job_cap_pauses_submitting_instead_of_aborting(
    settings: Settings, apis: SandboxApis, monkeypatch: pytest.MonkeyPatch
) -> None:
    capped = settings.model_copy(deep=True)
    capped.zendesk.batch_size = 5
    apis.add_cases("w1", [make_case(f"c{i}", started=recent(200)) for i in range(30)])
    apis.job_cap = 2  # another integration holds the other 28 slots
    result = service.sync(capped)
    assert result.exit_code == 0
    assert len(apis.tickets) == 30
    assert set(apis.tickets_by_external_id().values()) == {1}


def test_job_id_zendesk_no_longer_shows_waits_for_grace_before_lookup(
    settings: Settings, apis: SandboxApis
) -> None:
    apis.add_cases("w1", [make_case(f"c{i}", started=recent(200)) for i in range(3)])
    apis.polls_until_done = 10**6  # the job stays queued
    with pytest.raises(SimulatedCrash):
        service.sync(settings, crash_hook=crash_at("after_job_id"))
    apis.hide_jobs = True  # show_many omits the stored job id

    graced = settings.model_copy(deep=True)
    graced.zendesk.recovery_grace_seconds = 3600
    posts = apis.requests["create_many"]
    service.sync(graced)  # must not take "not shown" for "gone" and resend
    assert apis.requests["create_many"] == posts

    apis.complete_all_jobs()  # the queued job ran after all
    service.sync(settings)
    assert len(apis.tickets) == 3
    assert set(apis.tickets_by_external_id().values()) == {1}


def test_erasure_withholds_chats_not_sent_yet(settings: Settings, apis: SandboxApis) -> None:
    from snapzen.commands import erase
    from snapzen.ledger.evidence.chain import subject_ref

    apis.add_cases("w1", [make_case("mine", started=recent(200), email="erase.me@example.org")])
    apis.item_errors["snapengage:mine"] = "Requester: Email is invalid"
    service.sync(settings)  # failed once: not in Zendesk, attempts left
    db = open_db(settings.ledger.path)
    ref = subject_ref(settings.ledger.key.get_secret_value().encode(), "Erase.Me@example.org")
    result = erase.erase_subject(db, ref or "", None)
    assert result.plan.unsent == ["mine"]
    apis.item_errors.clear()
    service.sync(settings)
    assert apis.tickets == []
    row = db.execute("SELECT status, reason, raw FROM cases WHERE case_id='mine'").fetchone()
    assert row == ("withheld", "erased_art17", None)


def test_job_cap_held_by_others_is_waited_out_in_the_same_pass(
    settings: Settings, apis: SandboxApis
) -> None:
    apis.add_cases("w1", [make_case(f"c{i}", started=recent(200)) for i in range(3)])
    # More refusals than one POST's retry budget: the pass must wait, not give up.
    apis.too_many_jobs_next = settings.http.max_attempts + 2
    result = service.sync(settings)
    assert result.exit_code == 0
    assert len(apis.tickets) == 3


# ---------------------------------------------------------------- meeting the real Zendesk


def _recorded_and_truth(settings: Settings, apis: SandboxApis) -> tuple[dict, dict]:
    db = open_db(settings.ledger.path)
    recorded = dict(db.execute("SELECT case_id, ticket_id FROM cases").fetchall())
    truth = {t["external_id"].removeprefix("snapengage:"): t["id"] for t in apis.tickets}
    return recorded, truth


def test_a_clean_job_answer_is_recorded_by_index_without_reading_tickets_back(
    settings: Settings, apis: SandboxApis
) -> None:
    apis.add_cases("w1", [make_case(f"c{i}", started=recent(200)) for i in range(6)])
    result = service.sync(settings)
    assert result.counts.created == 6 and result.exit_code == 0
    recorded, truth = _recorded_and_truth(settings, apis)
    assert recorded == truth
    assert apis.requests.get("tickets_show_many", 0) == 0  # no read-back
    assert apis.requests.get("lookup", 0) == 0  # and no lookup by external_id
    assert apis.requests["create_many"] == 1


@pytest.mark.parametrize("fault", ["shifted", "duplicate_id", "missing_index"])
def test_a_job_answer_in_doubt_is_checked_by_external_id(
    settings: Settings, apis: SandboxApis, fault: str
) -> None:
    apis.add_cases("w1", [make_case(f"c{i}", started=recent(200)) for i in range(6)])
    apis.results_fault = fault
    result = service.sync(settings)
    assert result.counts.created == 6 and result.exit_code == 0
    recorded, truth = _recorded_and_truth(settings, apis)
    assert recorded == truth  # no case holds another case's ticket
    assert len(apis.tickets) == 6  # and nothing was sent twice
    assert apis.requests["tickets_show_many"] == 1  # the named tickets read back
    # The case whose own ticket the answer does not name is looked up by its external_id.
    assert apis.requests["lookup"] == 1
    assert chain_ok(open_db(settings.ledger.path))


def test_a_job_answer_with_an_error_reads_back_the_tickets_it_names(
    settings: Settings, apis: SandboxApis
) -> None:
    apis.add_cases("w1", [make_case(f"c{i}", started=recent(200)) for i in range(4)])
    apis.item_errors["snapengage:c2"] = "Requester is invalid"
    result = service.sync(settings)
    assert result.counts.created == 3 and result.counts.failed == 1
    recorded, truth = _recorded_and_truth(settings, apis)
    assert {c: t for c, t in recorded.items() if t is not None} == truth
    assert recorded["c2"] is None
    assert apis.requests["tickets_show_many"] == 1


def test_wrong_token_aborts_the_pass_even_when_nothing_is_due(
    settings: Settings, apis: SandboxApis
) -> None:
    from snapzen.commands.status import check_health
    from snapzen.support.errors import AuthError

    assert service.sync(settings).exit_code == 0  # healthy, nothing due
    apis.reject_credentials = True
    with pytest.raises(AuthError, match="Couldn't authenticate you"):
        service.sync(settings)
    assert apis.requests.get("create_many", 0) == 0
    db = open_db(settings.ledger.path)
    outcome, error = db.execute(
        "SELECT outcome, error FROM runs ORDER BY started_at DESC, rowid DESC LIMIT 1"
    ).fetchone()
    assert outcome == "aborted" and "AuthError" in error
    health = check_health(settings.ledger.path, settings, datetime.now(UTC))
    assert not health.ok and "AuthError" in health.message


def test_refused_name_only_requester_names_the_setting_in_the_reason_and_status(
    settings: Settings, apis: SandboxApis
) -> None:
    from snapzen.commands.status import collect_status

    apis.add_cases("w1", [make_case("anon", started=recent(200), email="not-an-email")])
    apis.item_errors["snapengage:anon"] = "Requester: Email cannot be blank"
    service.sync(settings)
    db = open_db(settings.ledger.path)
    (error,) = db.execute("SELECT error FROM cases WHERE case_id='anon'").fetchone()
    assert "Requester: Email cannot be blank" in error
    assert "zendesk.anonymous_requester_id" in error
    report = collect_status(db, settings, datetime.now(UTC))
    assert "zendesk.anonymous_requester_id" in report["failed"][0]["error"]


def test_anonymous_requester_id_imports_chats_without_email_under_that_user(
    settings: Settings, apis: SandboxApis
) -> None:
    # A user of the account (Zendesk refuses an import naming one it does not have).
    anonymous = apis.store.add_user(None, name="Anonymous visitor")
    settings.zendesk.anonymous_requester_id = anonymous
    apis.add_cases("w1", [make_case("anon", started=recent(200), email="", name="Ann")])
    assert service.sync(settings).counts.created == 1
    (sent,) = apis.tickets
    assert sent["requester_id"] == anonymous and "requester" not in sent
    assert "Ann" in sent["subject"]
