"""Transport behaviour: rate-limit headers and 429s, fault injection, latency, inspection."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests

from snapzen.sandbox import FAULT_KINDS, Sandbox, SandboxConfig

TIMEOUT = 10


def _auth(sb: Sandbox) -> tuple[str, str]:
    return (f"{sb.config.zendesk_email}/token", sb.config.zendesk_token)


def _logs(sb: Sandbox) -> str:
    return (
        f"{sb.snapengage_base_url}/api/v2/{sb.config.org_id}/logs"
        f"?widgetId={sb.widget_ids[0]}&start=2020-01-01&end=2040-01-01"
    )


def test_rate_limit_headers_and_429() -> None:
    cfg = SandboxConfig(chats=0, rate_limit_per_minute=3, rate_window_seconds=1.0)
    with Sandbox(cfg) as sb:
        url = f"{sb.zendesk_base_url}/api/v2/tickets"
        first = requests.get(url, auth=_auth(sb), timeout=TIMEOUT)
        assert first.headers["X-Rate-Limit"] == "3"
        assert first.headers["X-Rate-Limit-Remaining"] == "2"
        assert first.headers["ratelimit-reset"] == "1"
        assert "zendesk-ratelimit-inflight-jobs" in first.headers
        statuses = [requests.get(url, auth=_auth(sb), timeout=TIMEOUT) for _ in range(4)]
        assert [r.status_code for r in statuses] == [200, 200, 429, 429]
        limited = statuses[2:]
        for response in limited:
            assert int(response.headers["Retry-After"]) >= 1
            assert response.headers["X-Rate-Limit-Remaining"] == "0"
        kinds = {r.headers["Content-Type"].split(";")[0] for r in limited}
        assert kinds == {"application/json", "text/plain"}  # clients must not assume JSON
        # Unauthenticated calls and job polls count too; SnapEngage and /_sandbox do not.
        assert requests.get(url, timeout=TIMEOUT).status_code == 429
        assert (
            "X-Rate-Limit"
            not in requests.get(f"{sb.base_url}/_sandbox/state", timeout=TIMEOUT).headers
        )
        time.sleep(float(limited[-1].headers["Retry-After"]) + 0.05)
        assert requests.get(url, auth=_auth(sb), timeout=TIMEOUT).status_code == 200
        assert sb.state()["responses_429"] == 3


def _fault_box(kind: str, **extra: Any) -> Sandbox:
    return Sandbox(
        SandboxConfig(
            chats=5,
            fault_rate=1.0,
            fault_kinds=(kind,),
            fault_timeout_seconds=0.6,
            long_transcripts=0,
            **extra,
        )
    )


@pytest.mark.parametrize("kind", [k for k in FAULT_KINDS if k != "timeout"])
def test_each_fault_kind(kind: str) -> None:
    with _fault_box(kind) as sb:
        zendesk = requests.get(
            f"{sb.zendesk_base_url}/api/v2/tickets", auth=_auth(sb), timeout=TIMEOUT
        )
        snapengage = requests.get(
            _logs(sb), timeout=TIMEOUT, headers={"Authorization": sb.config.snapengage_token}
        )
        for response in (zendesk, snapengage):
            if kind == "malformed_json":
                assert response.status_code == 200
                with pytest.raises(ValueError):
                    json.loads(response.text)
            else:
                expected = {"http_500": 500, "http_502": 502}.get(kind, 503)
                assert response.status_code == expected
                has_retry = "Retry-After" in response.headers
                assert has_retry is (kind == "http_503_retry_after")
        assert "X-Rate-Limit" in zendesk.headers  # headers survive faults
        assert sb.state()["faults_injected"] == {kind: 2}


def test_timeout_fault() -> None:
    with _fault_box("timeout") as sb:
        with pytest.raises(requests.Timeout):
            requests.get(f"{sb.zendesk_base_url}/api/v2/tickets", auth=_auth(sb), timeout=0.2)
        assert sb.state()["faults_injected"] == {"timeout": 1}


def test_create_many_fault_after_write_still_creates_job() -> None:
    """A 500 on create_many is ambiguous: for some requests the job exists anyway."""
    with _fault_box("http_500", job_seconds=0.05) as sb:
        url = f"{sb.zendesk_base_url}/api/v2/imports/tickets/create_many"
        body = {"tickets": [{"external_id": "amb", "comments": [{"body": "x"}]}]}
        responses = [
            requests.post(url, json=body, auth=_auth(sb), timeout=TIMEOUT) for _ in range(12)
        ]
        assert all(r.status_code == 500 for r in responses)
        time.sleep(0.1)
        jobs = sb.state()["jobs"]["total"]
        assert 0 < jobs < 12  # roughly half were accepted before the 500
        assert len([t for t in sb.tickets() if t["external_id"] == "amb"]) == jobs
        assert sb.state()["duplicate_external_ids"] == (["amb"] if jobs > 1 else [])


def test_inspection_and_oauth_are_never_faulted() -> None:
    with _fault_box("http_500") as sb:
        for what in ("state", "tickets", "truth"):
            assert requests.get(f"{sb.base_url}/_sandbox/{what}", timeout=TIMEOUT).ok
        cfg = sb.config
        token = requests.post(
            f"{sb.zendesk_base_url}/oauth/tokens",
            timeout=TIMEOUT,
            json={
                "grant_type": "client_credentials",
                "client_id": cfg.oauth_client_id,
                "client_secret": cfg.oauth_client_secret,
            },
        )
        assert token.status_code == 200
        truth = requests.get(f"{sb.base_url}/_sandbox/truth", timeout=TIMEOUT).json()
        assert truth == sb.truth() and len(truth) == 5


def test_faults_are_deterministic_for_a_seed() -> None:
    runs = []
    for _ in range(2):
        with Sandbox(
            SandboxConfig(
                chats=3,
                fault_rate=0.5,
                seed=9,
                long_transcripts=0,
                fault_kinds=("http_500", "http_502", "http_503"),
            )
        ) as sb:
            runs.append(
                [
                    requests.get(
                        _logs(sb),
                        timeout=TIMEOUT,
                        headers={"Authorization": sb.config.snapengage_token},
                    ).status_code
                    for _ in range(20)
                ]
            )
    assert runs[0] == runs[1]
    assert 200 in runs[0] and set(runs[0]) - {200}


def test_latency_is_added() -> None:
    with Sandbox(SandboxConfig(chats=0, latency_ms=150)) as sb:
        started = time.monotonic()
        requests.get(f"{sb.zendesk_base_url}/api/v2/tickets", auth=_auth(sb), timeout=TIMEOUT)
        assert time.monotonic() - started >= 0.15


def test_state_counts_requests_and_stop_is_idempotent() -> None:
    sb = Sandbox(SandboxConfig(chats=4, long_transcripts=0))
    try:
        requests.get(
            _logs(sb), headers={"Authorization": sb.config.snapengage_token}, timeout=TIMEOUT
        )
        requests.get(f"{sb.zendesk_base_url}/api/v2/tickets.json", auth=_auth(sb), timeout=TIMEOUT)
        state = requests.get(f"{sb.base_url}/_sandbox/state", timeout=TIMEOUT).json()
        assert state["requests"]["snapengage.logs"] == 1
        assert state["requests"]["zendesk.tickets_list"] == 1
        assert state["cases_generated"] == 4
        assert set(sb.env()) == {
            "SNAPZEN_SNAPENGAGE__BASE_URL",
            "SNAPZEN_SNAPENGAGE__ORG_ID",
            "SNAPZEN_SNAPENGAGE__API_TOKEN",
            "SNAPZEN_SNAPENGAGE__WIDGETS",
            "SNAPZEN_ZENDESK__BASE_URL",
            "SNAPZEN_ZENDESK__EMAIL",
            "SNAPZEN_ZENDESK__API_TOKEN",
            "SNAPZEN_TRANSFER__CONTROLLER_COUNTRY",
            "SNAPZEN_CONSENT__NOTICES",
        }
        assert sb.env()["SNAPZEN_TRANSFER__CONTROLLER_COUNTRY"] == "GB"  # the UK demo company
        assert sb.base_url.startswith("http://127.0.0.1:")
    finally:
        sb.stop()
        sb.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{sb.base_url}/_sandbox/state", timeout=2)


def test_every_answer_carries_the_real_time_in_date(monkeypatch: pytest.MonkeyPatch) -> None:
    """As Zendesk does: a `Date` header on every answer (errors and 429s too), from the real
    clock, which SNAPZEN_CLOCK_OFFSET_SECONDS (the CLI's wrong-clock hook) does not move. The
    clock guard (snapzen.commands.clock_guard) takes it as the evidence against a wrong clock."""
    from datetime import UTC, datetime, timedelta
    from email.utils import parsedate_to_datetime

    from snapzen.support.clock import OFFSET_VARIABLE

    monkeypatch.setenv(OFFSET_VARIABLE, str(3 * 366 * 86400))
    with Sandbox(SandboxConfig(chats=1, rate_limit_per_minute=3)) as sb:
        zd = sb.zendesk_base_url
        before = datetime.now(UTC).replace(microsecond=0)
        answers = [
            requests.get(f"{zd}/api/v2/users/me", auth=_auth(sb), timeout=TIMEOUT),
            requests.get(f"{zd}/api/v2/users/me", timeout=TIMEOUT),  # 401
            requests.get(f"{zd}/api/v2/tickets/987654", auth=_auth(sb), timeout=TIMEOUT),
            requests.get(f"{zd}/api/v2/users/me", auth=_auth(sb), timeout=TIMEOUT),  # 429
            requests.get(
                _logs(sb), headers={"Authorization": sb.config.snapengage_token}, timeout=TIMEOUT
            ),
        ]
        after = datetime.now(UTC) + timedelta(seconds=1)
    assert {r.status_code for r in answers} >= {200, 401, 404, 429}
    for response in answers:
        moment = parsedate_to_datetime(response.headers["Date"])
        assert before <= moment <= after, (response.status_code, response.headers["Date"])


@pytest.mark.parametrize("kind", ["timeout", "malformed_json"])
def test_a_fault_planned_before_the_work_answers_a_gateway_timeout(kind: str) -> None:
    """``timeout`` and ``malformed_json`` drawn at random always follow the work; planned
    *before* it, the request never reaches Zendesk: a 504, and nothing was imported."""
    box = Sandbox(SandboxConfig(chats=0), serve=False)
    box.app.faults.plan("zendesk.import_ticket", kind, after=False)
    session = requests.Session()
    session.mount(box.base_url, box.adapter)
    body = {"ticket": {"external_id": "early", "comments": [{"body": "x"}]}}
    answer = session.post(
        f"{box.zendesk_base_url}/api/v2/imports/tickets", json=body, auth=_auth(box)
    )
    assert answer.status_code == 504
    assert box.tickets() == [] and box.state()["faults_injected"] == {kind: 1}


def test_the_in_flight_header_reads_the_jobs_under_the_accounts_lock() -> None:
    """The loopback server is threaded: counting the jobs for
    ``zendesk-ratelimit-inflight-jobs`` while another request adds one would break the
    iteration ("dictionary changed size"), so it happens under the account's lock."""
    box = Sandbox(SandboxConfig(chats=0), serve=False)
    store, held = box.app.store, []
    counting = store.in_flight

    def checked() -> list[Any]:
        held.append(store.lock._is_owned())  # type: ignore[attr-defined]
        return counting()

    store.in_flight = checked  # type: ignore[method-assign]
    session = requests.Session()
    session.mount(box.base_url, box.adapter)
    answer = session.get(f"{box.zendesk_base_url}/api/v2/users/me", auth=_auth(box))
    assert answer.headers["zendesk-ratelimit-inflight-jobs"].startswith("total=30;")
    assert held and all(held)
