"""The auditor web UI: metadata coverage (always) and headless Chromium over Datasette.

The browser tests start `datasette serve -i` on a sanitized snapshot exactly as
`snapzen ledger serve` does, then drive Debian's chromium through selenium.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import socket
import sqlite3
import subprocess
import time
import tomllib
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from snapzen.ledger.evidence import web
from snapzen.ledger.evidence.chain import subject_ref
from snapzen.ledger.store.db import open_db, transaction
from tests.ledger_fixtures import ALICE, KEY, append, transfer_fields

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)  # fmt: skip
ALICE_REF = subject_ref(KEY, ALICE) or ""
RAW_SECRET = "carol.private@example.com"


# --- no browser needed ----------------------------------------------------------------------


def test_metadata_describes_every_column(tmp_path: Path) -> None:
    source = tmp_path / "fresh.db"
    open_db(source, create=True).conn.close()
    snapshot, _, _ = web.prepare(source, tmp_path / "web")
    metadata = web.build_metadata(snapshot)
    tables = metadata["databases"][web.DB_NAME]["tables"]
    conn = sqlite3.connect(snapshot)
    names = [
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
            "AND name NOT LIKE 'sqlite_%'"
        )
    ]
    assert {"events", "transfers", "cases", "runs", "state"} <= set(names)
    for table in names:
        assert tables[table]["description"] != "(undocumented table)", table
        columns = {row[1] for row in conn.execute(f"PRAGMA table_xinfo({table})")}
        described = tables[table]["columns"]
        assert set(described) == columns, table
        undocumented = [c for c, text in described.items() if text == "(undocumented column)"]
        assert not undocumented, f"{table}: describe {undocumented} in web.COLUMN_DESCRIPTIONS"
    assert "raw" not in tables["cases"]["columns"]
    assert set(metadata["databases"][web.DB_NAME]["queries"]) == {
        "by_subject", "by_month", "by_basis", "expiring_soon", "withheld",
    }  # fmt: skip


def test_titles_and_descriptions_say_what_tables_and_queries_hold(tmp_path: Path) -> None:
    # issue 24: the table with every event was "the record of every restricted transfer",
    # and a query title showed its raw parameter (":days").
    from snapzen.ledger.evidence.events import Event

    for name, query in web.CANNED_QUERIES.items():
        assert ":" not in query["title"].split("(")[0], name  # no raw :parameter
    described = web.TABLE_DESCRIPTIONS["events"]
    assert "every restricted" not in described and "every other" in described
    # issue 25: the table is named for what it holds; `transfers` is the view of transfers
    assert "view" in web.TABLE_DESCRIPTIONS["transfers"]
    assert "every other" not in web.TABLE_DESCRIPTIONS["transfers"]
    assert "transfer" in web.COLUMN_DESCRIPTIONS["transfers"]["transferred_at"]
    event_text = web.COLUMN_DESCRIPTIONS["events"]["event"]
    assert all(f"{event.value} = " in event_text for event in Event)
    # what each event records is told once, in the metadata file, for every event and no other
    assert set(web._FILE["event_meanings"]) == {event.value for event in Event}
    assert web.CANNED_QUERIES["by_subject"]["title"].startswith("Every ledger row")


def test_canned_queries_are_valid_read_only_sql(tmp_path: Path) -> None:
    source = tmp_path / "fresh.db"
    open_db(source, create=True).conn.close()
    conn = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    for name, query in web.CANNED_QUERIES.items():
        assert "write" not in query, name
        conn.execute(query["sql"], {"subject_ref": "x", "days": "90"}).fetchall()


def test_metadata_file_ships_with_the_package() -> None:
    # `pip install .` (the container image, an auditor's venv) carries a file that is not
    # Python only if pyproject.toml lists it as package data: else `ledger serve` fails there.
    root = Path(__file__).resolve().parents[3]
    listed = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "setuptools"
    ]["package-data"]
    data = [
        path
        for path in (root / "snapzen").rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc")
    ]
    assert root / "snapzen/ledger/evidence" / web.METADATA_FILE in data
    for path in data:
        # A pattern of the package's own folder or of a package above it ("said/*.txt").
        owners = [folder for folder in path.parents if folder.is_relative_to(root / "snapzen")]
        listed_here = [  # a glob, as setuptools reads it: "*" never crosses a "/"
            fnmatch.fnmatch(rel, pattern) and rel.count("/") == pattern.count("/")
            for folder in owners
            for rel in [path.relative_to(folder).as_posix()]
            for pattern in listed.get(".".join(folder.relative_to(root).parts), [])
        ]
        assert any(listed_here), f"list {path.relative_to(root)} in pyproject"


# --- headless Chromium ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _build_source(path: Path) -> None:
    soon = (datetime.now(UTC).date() + timedelta(days=30)).isoformat()
    db = open_db(path, create=True)  # a test ledger built row by row, as `init` would start it
    append(db, (transfer_fields(i) for i in range(1, 13)))
    append(db, [transfer_fields(13, retention_until=soon, ticket_id=5013)])
    with transaction(db) as conn:
        conn.execute(
            """INSERT INTO cases (case_id, widget_id, day, status, reason, raw,
                                  first_seen_at, updated_at)
               VALUES ('c-withheld', 'w1', '2024-03-01', 'withheld', 'no_consent', ?, 'x', 'x')""",
            (f'{{"visitor_email": "{RAW_SECRET}"}}',),
        )
    db.conn.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    _require_browser()  # no server started for tests that will skip
    base = tmp_path_factory.mktemp("serve")
    source = base / "snapzen.db"
    _build_source(source)
    snapshot, metadata, sha = web.prepare(source, base / "web")
    port = _free_port()
    command = web.serve_command(snapshot, metadata, port=port)
    log = (base / "datasette.log").open("w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/-/versions.json", timeout=1).read()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((base / "datasette.log").read_text()) from None
                time.sleep(0.2)
        yield {"url": url, "snapshot": snapshot, "sha": sha, "source": source, "base": base}
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def missing_browser_parts(chromium: Path = CHROMIUM, chromedriver: Path = CHROMEDRIVER) -> str:
    """What the browser tests lack on this machine ("" when nothing): each of chromium and
    chromedriver is a separate Debian package, so either can be installed without the other."""
    missing = [str(path) for path in (chromium, chromedriver) if not path.exists()]
    return " and ".join(missing)


def _require_browser() -> None:
    missing = missing_browser_parts()
    if missing:
        pytest.skip(f"{missing} absent (apt-get install -y chromium chromium-driver)")
    pytest.importorskip("selenium")


def test_browser_tests_name_what_is_missing(tmp_path: Path) -> None:
    present = tmp_path / "chromium"
    present.touch()
    absent = tmp_path / "chromedriver"
    assert missing_browser_parts(present, absent) == str(absent)
    assert missing_browser_parts(absent, absent) == f"{absent} and {absent}"
    absent.touch()
    assert missing_browser_parts(present, absent) == ""


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    _require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    driver.set_page_load_timeout(30)
    driver.downloads = downloads  # type: ignore[attr-defined]
    try:
        yield driver
    finally:
        driver.quit()


def _text(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.TAG_NAME, "body").text)


@pytest.mark.browser
def test_page_loads_with_metadata(served: dict[str, Any], browser: Any) -> None:
    browser.get(served["url"] + "/")
    assert "snapzen ledger" in browser.title
    browser.get(served["url"] + "/ledger")
    assert "Sanitized snapshot of the snapzen ledger" in _text(browser)
    for query in ("by_subject", "by_month", "by_basis", "expiring_soon", "withheld"):
        assert browser.find_elements("css selector", f'a[href$="/ledger/{query}"]'), query
    # The table page is the heaviest (every column's description): under a loaded machine
    # Chromium has handed back an empty document once; load it again, a bounded few times.
    assert _loaded(browser, served["url"] + "/ledger/events", "Position in the hash chain")


def _loaded(browser: Any, url: str, expected: str, attempts: int = 3) -> bool:
    """Whether ``expected`` appears on ``url`` within ``attempts`` loads of 10 s each."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    for _ in range(attempts):
        browser.get(url)
        try:
            WebDriverWait(browser, 10).until(lambda d: expected in d.page_source)
            return True
        except TimeoutException:
            continue
    return False


@pytest.mark.browser
def test_canned_query_runs_and_csv_downloads(served: dict[str, Any], browser: Any) -> None:
    from selenium.webdriver.common.by import By

    browser.get(served["url"] + "/ledger/by_subject")
    field = browser.find_element(By.NAME, "subject_ref")
    field.clear()
    field.send_keys(ALICE_REF)
    browser.find_element(By.CSS_SELECTOR, "form.sql input[type=submit]").click()
    # The click starts a navigation: wait (bounded) for the result page's rows, or the check
    # could read the old page while the new one loads.
    from selenium.webdriver.support.ui import WebDriverWait

    selector = "table.rows-and-columns tbody tr"
    rows = WebDriverWait(browser, 20).until(
        lambda driver: driver.find_elements(By.CSS_SELECTOR, selector)
    )
    assert len(rows) == 4  # transfers 3, 6, 9, 12 belong to Alice
    assert "1006" in _text(browser)

    link = browser.find_element(By.CSS_SELECTOR, 'a[href*=".csv"]').get_attribute("href")
    browser.get(link + ("&" if "?" in link else "?") + "_dl=1")
    deadline = time.monotonic() + 20
    files: list[Path] = []
    while time.monotonic() < deadline:
        files = [p for p in browser.downloads.iterdir() if p.suffix == ".csv"]
        if files:
            break
        time.sleep(0.2)
    assert files, "the CSV export did not download"
    parsed = list(csv.DictReader(io.StringIO(files[0].read_text())))
    assert sorted(int(r["ticket_id"]) for r in parsed) == [1003, 1006, 1009, 1012]


@pytest.mark.browser
def test_expiring_soon_query(served: dict[str, Any], browser: Any) -> None:
    browser.get(served["url"] + "/ledger/expiring_soon?days=90")
    assert "5013" in _text(browser)


@pytest.mark.browser
def test_writes_are_refused(served: dict[str, Any], browser: Any) -> None:
    url = served["url"]
    insert = "INSERT INTO state (widget_id, cursor_day, updated_at) VALUES ('evil', 'x', 'x')"
    browser.get(f"{url}/ledger?sql={urllib.parse.quote(insert)}")
    assert "Statement must be a SELECT" in _text(browser)
    statuses = browser.execute_async_script(
        """const [base, sql, done] = arguments;
           const form = (s) => ({method: 'POST', body: new URLSearchParams({sql: s})});
           Promise.all([
             fetch(base + '/ledger', form(sql)).then(r => r.status),
             fetch(base + '/ledger/by_month', form(sql)).then(r => r.status),
           ]).then(done, e => done(String(e)));""",
        url,
        insert,
    )
    assert all(isinstance(s, int) and s >= 400 for s in statuses), statuses
    browser.get(f"{url}/ledger/state.json?_shape=array")
    assert "evil" not in browser.page_source
    assert web.file_sha256(served["snapshot"]) == served["sha"]  # the file was not touched


@pytest.mark.browser
def test_raw_payload_is_not_browsable(served: dict[str, Any], browser: Any) -> None:
    url = served["url"]
    # A table page: loaded again if Chromium hands back an empty document (see above).
    assert _loaded(browser, f"{url}/ledger/cases", "c-withheld")
    assert RAW_SECRET not in browser.page_source
    browser.get(f"{url}/ledger?sql=" + urllib.parse.quote("select raw from cases"))
    assert "no such column: raw" in _text(browser)
    assert RAW_SECRET.encode() not in served["snapshot"].read_bytes()
