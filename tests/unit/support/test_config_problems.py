"""Every configuration problem in one run, each on its own line, named as the user gave it:
the environment variable, the key in the named file, or the secrets file (issue 24, 6)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import responses
from typer.testing import CliRunner

from snapzen.cli.main import app
from snapzen.support.errors import ConfigError
from snapzen.support.settings import load_settings

runner = CliRunner()
EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "snapzen.example.toml"


def problems(args: list[str]) -> list[str]:
    """The lines of an exit-2 refusal, without the heading."""
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    if len(lines) == 1:
        return [lines[0].removeprefix("snapzen: error: ")]
    assert lines[0] == f"snapzen: error: {len(lines) - 1} problems in the settings:", lines
    assert all(line.startswith("  ") for line in lines[1:])
    return [line.strip() for line in lines[1:]]


@responses.activate  # any HTTP call would raise ConnectionError: none may happen
def test_the_copied_example_lists_everything_sync_lacks_in_one_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SNAPZEN_TRANSFER__CONTROLLER_COUNTRY")
    secrets = tmp_path / "no-such-secrets"
    monkeypatch.setenv("SNAPZEN_SECRETS_DIR", str(secrets))
    prod = tmp_path / "prod.toml"
    shutil.copy(EXAMPLE, prod)
    monkeypatch.setenv("SNAPZEN_LEDGER__PATH", str(tmp_path / "x.db"))
    lines = problems(["--config", str(prod), "sync"])
    expected = [
        f"setting transfer.controller_country in {prod}: is required",
        f"setting snapengage.org_id in {prod}: is required",
        "setting snapengage.api_token is required; set SNAPZEN_SNAPENGAGE__API_TOKEN or write "
        f"the secrets file {secrets}/snapzen_snapengage__api_token ({secrets} does not exist)",
        f"setting snapengage.widgets in {prod}: is required",
        f"setting zendesk.subdomain in {prod}: is required",
        "setting ledger.key is required; set SNAPZEN_LEDGER__KEY or write the secrets file "
        f"{secrets}/snapzen_ledger__key ({secrets} does not exist)",
        "zendesk credentials are required: set SNAPZEN_ZENDESK__EMAIL with",
    ]
    assert len(lines) == len(expected), lines
    for line, start in zip(lines, expected, strict=True):
        assert line.startswith(start), (line, start)
    assert f"secrets directory {secrets}, which does not exist" in lines[-1]
    assert not (tmp_path / "x.db").exists()


def test_a_value_from_the_environment_is_named_by_its_variable_not_the_file_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prod = tmp_path / "prod.toml"
    prod.write_text('[zendesk]\nsubdomain = "acme"\nemail = "ops@acme.test"\n', encoding="utf-8")
    monkeypatch.setenv("SNAPZEN_ZENDESK__SUBDOMAIN", "acme.zendesk.com")
    monkeypatch.setenv("SNAPZEN_SNAPENGAGE__WIDGETS", "b@d")
    prod.write_text(prod.read_text() + "[pipeline]\nmax_attempts = 0\n", encoding="utf-8")
    lines = problems(["--config", str(prod), "status"])
    assert lines == [
        "setting snapengage.widgets (SNAPZEN_SNAPENGAGE__WIDGETS): 'b@d' is not a widget id "
        "(a UUID such as '1a2b3c4d-0000-4000-8000-123456789abc', from the Get the Code tab)",
        "setting zendesk.subdomain (SNAPZEN_ZENDESK__SUBDOMAIN): must be just the subdomain: "
        "write 'acme', not 'acme.zendesk.com'",
        f"setting pipeline.max_attempts in {prod}: Input should be greater than or equal to 1",
    ]


def test_a_bad_secret_file_is_named_by_its_path_and_never_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "snapzen_zendesk__api_token").write_text("tok\x07en-XYZZY\n", encoding="utf-8")
    (secrets / "snapzen_snapengage__api_token").write_text("se\ntoken-PLUGH", encoding="utf-8")
    monkeypatch.setenv("SNAPZEN_SECRETS_DIR", str(secrets))
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.splitlines()[1:] == [
        f"  setting snapengage.api_token (secrets file {secrets}/snapzen_snapengage__api_token)"
        ": contains a line break",
        f"  setting zendesk.api_token (secrets file {secrets}/snapzen_zendesk__api_token): "
        "contains a control character",
    ]
    assert "XYZZY" not in message and "PLUGH" not in message


def test_problems_across_sections_come_with_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A check across sections is not held back until the rest is fixed."""
    monkeypatch.setenv("SNAPZEN_PIPELINE__DEADLINE_DAYS", "70")
    monkeypatch.setenv("SNAPZEN_ZENDESK__BATCH_SIZE", "500")
    lines = problems(["status"])
    assert lines[0].startswith("setting zendesk.batch_size (SNAPZEN_ZENDESK__BATCH_SIZE): ")
    assert lines[1].startswith(
        "setting pipeline.deadline_days (SNAPZEN_PIPELINE__DEADLINE_DAYS): 70 must be below "
        "snapengage.retention_days (60)"
    )
    assert len(lines) == 2


def test_status_asks_only_for_what_it_needs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Sync settings are required by the commands that sync, not by every command."""
    monkeypatch.delenv("SNAPZEN_TRANSFER__CONTROLLER_COUNTRY")
    monkeypatch.setenv("SNAPZEN_LEDGER__PATH", str(tmp_path / "x.db"))
    assert problems(["status"]) == [
        "setting transfer.controller_country is required: the ISO 3166-1 alpha-2 country where "
        "the controller is established (e.g. GB, IE, US); it decides the regime (UK GDPR, EU "
        "GDPR) and which chats are "
        "restricted transfers; set SNAPZEN_TRANSFER__CONTROLLER_COUNTRY or "
        "transfer.controller_country in the config file"
    ]


def test_secrets_in_the_file_are_refused_with_the_file_s_other_problems(tmp_path: Path) -> None:
    prod = tmp_path / "prod.toml"
    prod.write_text(
        '[zendesk]\napi_token = "XYZZY"\nbatch_size = 500\n[ledger]\nkey = "PLUGH"\n',
        encoding="utf-8",
    )
    lines = problems(["--config", str(prod), "status"])
    assert lines == [
        f"ledger.key must not be in the config file {prod}; set SNAPZEN_LEDGER__KEY or put it "
        "in the secrets directory",
        f"zendesk.api_token must not be in the config file {prod}; set "
        "SNAPZEN_ZENDESK__API_TOKEN or put it in the secrets directory",
        f"setting zendesk.batch_size in {prod}: Input should be less than or equal to 100",
    ]


@responses.activate
def test_a_bad_value_does_not_hide_what_else_its_section_lacks(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SNAPZEN_LEDGER__PATH", str(tmp_path / "x.db"))
    monkeypatch.setenv("SNAPZEN_SNAPENGAGE__WIDGETS", "b@d")
    monkeypatch.setenv("SNAPZEN_ZENDESK__SUBDOMAIN", "acme")
    monkeypatch.setenv("SNAPZEN_ZENDESK__EMAIL", "not-an-email")
    lines = problems(["sync"])
    assert lines[0].startswith("setting snapengage.widgets (SNAPZEN_SNAPENGAGE__WIDGETS): ")
    assert lines[1].startswith("setting zendesk.email (SNAPZEN_ZENDESK__EMAIL): is not an email")
    # The rest of both sections is still checked: what is missing there is listed too, and
    # neither the failed widgets nor the subdomain given is reported as missing.
    assert any(line.startswith("setting snapengage.org_id is required") for line in lines)
    assert any(line.startswith("setting snapengage.api_token is required") for line in lines)
    assert not any("widgets is required" in line or "subdomain" in line for line in lines)
    assert not any("credentials" in line for line in lines)  # the email given was bad


def test_a_bad_value_does_not_hide_a_check_across_its_section_s_other_fields(
    tmp_path: Path,
) -> None:
    """A section's own cross-field check runs only once its fields pass: with one field set
    aside, the check is made on the rest in the same run, not after the first fix."""
    prod = tmp_path / "prod.toml"
    prod.write_text(
        '[snapengage]\ntimezone = "Europe/London"\noverlap_days = 0\nsettle_minutes = 1\n'
        '[consent]\naccepted_values = ["yes"]\nrefused_values = ["yes"]\nsources = ["nowhere"]\n',
        encoding="utf-8",
    )
    lines = problems(["--config", str(prod), "status"])
    assert lines[0].startswith(f"setting snapengage.settle_minutes in {prod}: ")
    assert lines[1] == (
        f"settings snapengage.overlap_days in {prod} and snapengage.timezone in {prod}: "
        "overlap_days must be at least 1 when timezone is not UTC"
    )
    assert lines[2].startswith(f"setting consent.sources in {prod}: must list some of ")
    assert lines[3] == (
        f"settings consent.accepted_values in {prod} and consent.refused_values in {prod}: "
        "consent values ['yes'] are both accepted and refused"
    )
    assert len(lines) == 4


def test_a_problem_in_a_clients_entry_of_the_file_is_named_by_the_entry(tmp_path: Path) -> None:
    """[[clients]] is a list: its entries are named by position, and a missing key is given in
    the file's entry or in SNAPZEN_CLIENTS (the whole list), never a per-entry variable."""
    prod = tmp_path / "prod.toml"
    prod.write_text(
        '[[clients]]\nname = "A"\nwidgets = ["w1"]\n'
        '[[clients]]\nname = "B"\ncontroller_country = "GB"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(prod)
    first, second = str(caught.value).splitlines()[1:]
    assert first.startswith("  setting clients.0.controller_country is required: ")
    assert first.endswith(f"; set SNAPZEN_CLIENTS or clients.0.controller_country in {prod}")
    assert second == f"  setting clients.1 in {prod}: client 'B' needs its widgets (widget ids)"


def test_a_check_across_a_section_s_fields_names_each_field_as_it_was_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not "set SNAPZEN_SNAPENGAGE or snapengage in the config file": no one sets a section as
    a whole; the fields the check read are named, each by where its value came from."""
    prod = tmp_path / "prod.toml"
    prod.write_text('[snapengage]\ntimezone = "America/New_York"\n', encoding="utf-8")
    monkeypatch.setenv("SNAPZEN_SNAPENGAGE__OVERLAP_DAYS", "0")
    assert problems(["--config", str(prod), "status"]) == [
        "settings snapengage.overlap_days (SNAPZEN_SNAPENGAGE__OVERLAP_DAYS) and "
        f"snapengage.timezone in {prod}: overlap_days must be at least 1 when timezone is not UTC"
    ]


def test_a_field_of_a_failed_check_left_at_its_default_is_named_with_how_to_set_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SNAPZEN_CONSENT__REFUSED_VALUES", "yes,no")
    lines = problems(["status"])
    assert lines == [
        "settings consent.accepted_values (the default; set SNAPZEN_CONSENT__ACCEPTED_VALUES "
        "or consent.accepted_values in the config file) and consent.refused_values "
        "(SNAPZEN_CONSENT__REFUSED_VALUES): consent values ['yes'] are both accepted and refused"
    ]


def test_a_moved_key_is_named_as_it_was_given_not_by_its_section(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prod = tmp_path / "prod.toml"
    prod.write_text('[transfer]\nrecipient = "Zendesk"\n', encoding="utf-8")
    monkeypatch.setenv("SNAPZEN_CONSENT__CONTROLLER_COUNTRY", "GB")
    assert problems(["--config", str(prod), "status"]) == [
        "setting consent.controller_country (SNAPZEN_CONSENT__CONTROLLER_COUNTRY): "
        "consent.controller_country moved to transfer.controller_country",
        f"setting transfer.recipient in {prod}: transfer.recipient was replaced by "
        "transfer.recipients (the name of the zendesk recipient)",
    ]


def test_an_unknown_key_inside_a_variable_holding_a_list_is_named_by_the_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SNAPZEN_CLIENTS holds the whole list: a misspelt key in one entry is named by where it
    is in the list (and the variable that gave it), and the hint is the key meant, not a
    per-entry variable that does not exist."""
    monkeypatch.setenv("SNAPZEN_SNAPENGAGE__WIDGETS", "w1")
    entry = {"name": "A", "controller_country": "GB", "widgets": ["w1"], "widget": ["w2"]}
    monkeypatch.setenv("SNAPZEN_CLIENTS", json.dumps([entry]))
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value).splitlines()[-1].strip() == (
        "unknown setting clients.0.widget (SNAPZEN_CLIENTS); did you mean clients.0.widgets?"
    )


def test_an_unknown_key_given_by_its_own_variable_is_named_by_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SNAPZEN_ZENDESK__JOB_POLL_SECOND", "2")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value).splitlines()[-1].strip() == (
        "unknown setting SNAPZEN_ZENDESK__JOB_POLL_SECOND; did you mean "
        "SNAPZEN_ZENDESK__JOB_POLL_SECONDS?"
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SNAPZEN_REDACTION__EXTRA_PATTERNS", "[1,"),  # a table written as JSON, cut short
        ("SNAPZEN_REDACTION__EXTRA_PATTERNS", "nan"),
        ("SNAPZEN_REDACTION", '{"extra_patterns":'),  # the whole section
    ],
)
def test_a_variable_read_as_json_that_is_not_json_is_named_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, value: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SNAPZEN_ZENDESK__EMAIL", "ops@example.com")  # a plain value: not named
    monkeypatch.setenv("SNAPZEN_REDACTION__ENABLED", "card")  # a comma list, never JSON
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith(f"{name} (the [redaction] section") and "\n" not in message
    assert value not in message and "ops@example.com" not in message
