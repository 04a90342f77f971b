"""Configuration: TOML + environment, secrets only from env or the secrets directory, and one
clear line (exit 2) naming the bad setting before any network call."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import responses
from typer.testing import CliRunner

from snapzen.cli import app
from snapzen.support.errors import ConfigError
from snapzen.support.settings import load_settings, parse_interval

runner = CliRunner()


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_toml_then_environment_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write(
        tmp_path / "c.toml",
        """
[snapengage]
org_id = "111"
widgets = ["a", "b"]
[zendesk]
subdomain = "acme"
[consent]
contract_variable = "order_ref"
""",
    )
    monkeypatch.setenv("SNAPZEN_SNAPENGAGE__ORG_ID", "222")
    settings = load_settings(config)
    assert settings.snapengage.org_id == "222"
    assert settings.snapengage.widgets == ["a", "b"]
    assert settings.zendesk.base_url == "https://acme.zendesk.com"
    assert settings.consent.contract_variable == "order_ref"


@pytest.mark.parametrize("value", ["w1,w2", " w1 , w2 ", '["w1","w2"]'])
def test_widgets_from_env_as_list_or_csv(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("SNAPZEN_SNAPENGAGE__WIDGETS", value)
    assert load_settings().snapengage.widgets == ["w1", "w2"]


def test_config_env_var_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write(tmp_path / "c.toml", '[ledger]\npath = "/data/x.db"\n')
    monkeypatch.setenv("SNAPZEN_CONFIG", str(config))
    assert str(load_settings().ledger.path) == "/data/x.db"


def test_secret_in_toml_is_refused(tmp_path: Path) -> None:
    config = write(tmp_path / "c.toml", '[zendesk]\napi_token = "abc"\n')
    with pytest.raises(ConfigError, match=r"zendesk\.api_token must not be in the config file"):
        load_settings(config)


def test_secrets_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "snapzen_zendesk__api_token").write_text("from-file\n")
    (secrets / "snapzen_ledger__key").write_text("k" * 32)
    monkeypatch.setenv("SNAPZEN_SECRETS_DIR", str(secrets))
    settings = load_settings()
    assert settings.zendesk.api_token is not None
    assert settings.zendesk.api_token.get_secret_value() == "from-file"
    assert "from-file" not in repr(settings)
    monkeypatch.setenv("SNAPZEN_ZENDESK__API_TOKEN", "from-env")
    assert load_settings().zendesk.api_token.get_secret_value() == "from-env"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://www.snapengage.com", True),
        ("http://127.0.0.1:8080", True),
        ("http://localhost:9", True),
        ("http://[::1]:9", True),
        ("http://snapengage.example.com", False),
        ("ftp://x", False),
        ("not a url", False),
        ("", False),  # SnapEngage's base URL cannot be left empty (Zendesk's can: the subdomain)
    ],
)
def test_base_url_https_unless_loopback(
    monkeypatch: pytest.MonkeyPatch, url: str, ok: bool
) -> None:
    monkeypatch.setenv("SNAPZEN_SNAPENGAGE__BASE_URL", url)
    if ok:
        load_settings()
    else:
        with pytest.raises(ConfigError, match=r"snapengage\.base_url"):
            load_settings()


def test_bad_values_name_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNAPZEN_ZENDESK__BATCH_SIZE", "500")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "zendesk.batch_size (SNAPZEN_ZENDESK__BATCH_SIZE)" in str(err.value)


def test_parse_interval() -> None:
    assert parse_interval("15m").total_seconds() == 900
    assert parse_interval("2h").total_seconds() == 7200
    with pytest.raises(ValueError):
        parse_interval("15 minutes")


SYNC_NEEDS = {
    "SNAPZEN_SNAPENGAGE__ORG_ID": "1",
    "SNAPZEN_SNAPENGAGE__API_TOKEN": "t",
    "SNAPZEN_SNAPENGAGE__WIDGETS": "w",
    "SNAPZEN_ZENDESK__SUBDOMAIN": "acme",
    "SNAPZEN_LEDGER__KEY": "k" * 20,
}


@responses.activate  # any HTTP call would raise ConnectionError: none may happen
@pytest.mark.parametrize(
    ("env", "named"),
    [
        (
            {},
            [
                "setting snapengage.org_id is required; set SNAPZEN_SNAPENGAGE__ORG_ID",
                "setting snapengage.api_token is required; set SNAPZEN_SNAPENGAGE__API_TOKEN",
                "setting snapengage.widgets is required",
                "setting zendesk.subdomain is required",
                "setting ledger.key is required; set SNAPZEN_LEDGER__KEY",
                "zendesk credentials are required",
            ],
        ),
        (SYNC_NEEDS, ["zendesk credentials are required"]),
        (
            {**SYNC_NEEDS, "SNAPZEN_HTTP__TIMEOUT_SECONDS": "-1", "SNAPZEN_LEDGER__KEY": "short"},
            [
                "setting http.timeout_seconds (SNAPZEN_HTTP__TIMEOUT_SECONDS): ",
                "setting ledger.key (SNAPZEN_LEDGER__KEY): must be at least 16 characters",
                "zendesk credentials are required",
            ],
        ),
    ],
)
def test_sync_with_bad_config_exits_2_listing_every_problem_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str], named: list[str]
) -> None:
    monkeypatch.setenv("SNAPZEN_LEDGER__PATH", str(tmp_path / "x.db"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = runner.invoke(app, ["sync"])
    assert result.exit_code == 2, result.output
    lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
    problems = lines[1:] if len(named) > 1 else [lines[0].removeprefix("snapzen: error: ")]
    assert len(problems) == len(named), lines
    for line, expected in zip(problems, named, strict=True):
        assert line.startswith(expected), (line, expected)
    if len(named) > 1:
        assert lines[0] == f"snapzen: error: {len(named)} problems in the settings:"
    assert "Traceback" not in result.output
    assert not (tmp_path / "x.db").exists()


def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["sync", "--config", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_non_utc_timezone_needs_overlap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNAPZEN_SNAPENGAGE__TIMEZONE", "America/New_York")
    monkeypatch.setenv("SNAPZEN_SNAPENGAGE__OVERLAP_DAYS", "0")
    with pytest.raises(ConfigError, match="overlap_days"):
        load_settings()


def test_archive_immediately_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNAPZEN_ZENDESK__ARCHIVE_IMMEDIATELY", "true")
    with pytest.raises(ConfigError, match=r"zendesk\.archive_immediately.*external_id lookup"):
        load_settings()


def test_missing_controller_country_fails_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Configs written before the setting existed fail at start, naming it."""
    monkeypatch.delenv("SNAPZEN_TRANSFER__CONTROLLER_COUNTRY")
    config = tmp_path / "old.toml"
    config.write_text('[consent]\nvariable = "gdpr_consent"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    message = str(caught.value)
    assert "transfer.controller_country" in message
    assert "SNAPZEN_TRANSFER__CONTROLLER_COUNTRY" in message
    monkeypatch.setenv("SNAPZEN_TRANSFER__CONTROLLER_COUNTRY", "uk")
    assert load_settings(config).transfer.controller_country == "GB"


def test_moved_transfer_settings_name_their_new_place(tmp_path: Path) -> None:
    config = tmp_path / "old.toml"
    config.write_text('[transfer]\ndestination_country = "US"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"transfer\.recipients"):
        load_settings(config)


@pytest.mark.parametrize(
    ("key", "value", "where"),
    [
        ("controller_country", '"GB"', "transfer.controller_country"),
        ("destination_country", '"US"', "transfer.recipients"),
        ("recipient", '"Zendesk"', "transfer.recipients"),
        ("mechanism", '"art45"', "transfer.recipients"),
        ("mechanism_ref", '"DPF"', "transfer.recipients"),
        ("safeguards", '{US = {mechanism = "art46", ref = "SCC"}}', "transfer.recipients"),
        ("restricted_countries", '["DE"]', "transfer.controller_country"),
        ("contract_widgets", '["w1"]', "consent.contract_variable"),
    ],
)
def test_old_consent_transfer_keys_fail_saying_where_they_went(
    tmp_path: Path, key: str, value: str, where: str
) -> None:
    config = tmp_path / "old.toml"
    config.write_text(f"[consent]\n{key} = {value}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert f"consent.{key} moved to {where}" in str(caught.value)


def test_old_controller_variable_in_the_environment_says_where_it_went(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SNAPZEN_CONSENT__CONTROLLER_COUNTRY", "GB")
    with pytest.raises(ConfigError, match=r"consent\.controller_country moved to transfer"):
        load_settings()


DPF_ZENDESK = (
    '{"name": "Zendesk, Inc.", "country": "US", "system": "zendesk", "basis": "adequacy", '
    '"certification": "DPF list, Zendesk, Inc.", "checked_on": "2026-11-30"}'
)


def test_recipients_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    snapengage = '{"name": "SnapEngage", "country": "US", "system": "snapengage"}'
    monkeypatch.setenv("SNAPZEN_TRANSFER__CONTROLLER_COUNTRY", "GB")
    monkeypatch.setenv("SNAPZEN_TRANSFER__RECIPIENTS", f"[{DPF_ZENDESK}, {snapengage}]")
    transfer = load_settings().transfer
    assert [r.name for r in transfer.recipients] == ["Zendesk, Inc.", "SnapEngage"]
    assert transfer.zendesk.basis.value == "adequacy"


@pytest.mark.parametrize(
    ("controller", "recipient", "refusal"),
    [
        (
            "GB",
            '{"name": "AU host", "country": "AU", "system": "zendesk", "basis": "adequacy"}',
            "AU is not on the UK GDPR adequacy list",
        ),
        (
            "US",  # either regime may apply: both lists must hold
            '{"name": "AU host", "country": "AU", "system": "zendesk", "basis": "adequacy"}',
            "AU is not on the UK GDPR adequacy list",
        ),
        (
            "GB",
            '{"name": "Z", "country": "US", "system": "zendesk", "basis": "adequacy"}',
            "set certification",
        ),
        (
            "IE",
            '{"name": "Z", "country": "US", "system": "zendesk", "basis": "adequacy", '
            '"instrument": "Privacy Shield", "certification": "x", "checked_on": "2026-01-01"}',
            "is not the EU GDPR adequacy instrument",
        ),
        (
            "IE",
            '{"name": "Z", "country": "AU", "system": "zendesk", "basis": "safeguards", '
            '"instrument": "idta", "reference": "x", "tra_date": "2026-01-01"}',
            "idta is not a EU GDPR safeguard; use eu_sccs or uk_addendum",
        ),
        (
            "GB",
            '{"name": "Z", "country": "AU", "system": "zendesk", "basis": "safeguards", '
            '"instrument": "idta"}',
            "needs reference",
        ),
        (
            "GB",
            '{"name": "S", "country": "US", "system": "snapengage"}',
            "exactly one recipient with system = 'zendesk'",
        ),
    ],
)
def test_a_basis_that_cannot_hold_is_refused_at_load_naming_the_fix(
    monkeypatch: pytest.MonkeyPatch, controller: str, recipient: str, refusal: str
) -> None:
    monkeypatch.setenv("SNAPZEN_TRANSFER__CONTROLLER_COUNTRY", controller)
    monkeypatch.setenv("SNAPZEN_TRANSFER__RECIPIENTS", f"[{recipient}]")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "transfer" in str(caught.value)
    assert refusal in str(caught.value)


@pytest.mark.parametrize(
    ("value", "problem"),
    [('{"v1": "abc"}', "is not a SHA-256"), ("{v1", "not a valid JSON object")],
)
def test_notices_need_sha256_digests(
    monkeypatch: pytest.MonkeyPatch, value: str, problem: str
) -> None:
    monkeypatch.setenv("SNAPZEN_CONSENT__NOTICES", value)
    with pytest.raises(ConfigError, match=r"consent\.notices"):
        load_settings()
    with pytest.raises(ConfigError, match=problem):
        load_settings()


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (
            "javascript_variables,notes",
            "must list some of javascript_variables, operator_variables, labels (got ['notes'])",
        ),
        ("", "must list some of javascript_variables, operator_variables, labels"),
    ],
)
def test_consent_sources_are_checked_against_the_registry(
    monkeypatch: pytest.MonkeyPatch, value: str, problem: str
) -> None:
    monkeypatch.setenv("SNAPZEN_CONSENT__SOURCES", value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "SNAPZEN_CONSENT__SOURCES" in str(caught.value)
    assert problem in str(caught.value)
    assert "\n" not in str(caught.value)
    monkeypatch.setenv("SNAPZEN_CONSENT__SOURCES", "labels,javascript_variables,labels")
    assert load_settings().consent.sources == ["labels", "javascript_variables"]


def test_an_unknown_consent_source_in_the_file_is_named_with_the_file_key(
    tmp_path: Path,
) -> None:
    # The setting as the user wrote it (consent.sources in the file), the source that is
    # wrong, and no variable that does not exist (SNAPZEN_CONSENT__SOURCES__0).
    config = write(tmp_path / "c.toml", '[consent]\nsources = ["labels", "notes"]\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    message = str(caught.value)
    assert f"setting consent.sources in {config}: must list some of" in message
    assert "(got ['notes'])" in message
    assert "SOURCES__" not in message and "consent.sources.1" not in message


def test_require_evidence_defaults_on_and_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings().consent.require_evidence is True
    monkeypatch.setenv("SNAPZEN_CONSENT__REQUIRE_EVIDENCE", "false")
    assert load_settings().consent.require_evidence is False


W1, W2 = "1a2b3c4d-0000-4000-8000-000000000001", "1a2b3c4d-0000-4000-8000-000000000002"


def test_clients_decide_their_widgets_and_the_rest_is_the_companys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clients = [{"name": "Laden GmbH", "controller_country": "de", "widgets": [W1]}]
    monkeypatch.setenv("SNAPZEN_CLIENTS", json.dumps(clients))
    settings = load_settings()
    client, transfer = settings.transfer_for(W1)
    assert (client, transfer.controller_country, transfer.regime) == ("Laden GmbH", "DE", "eu_gdpr")
    assert settings.transfer_for(W2) == (None, settings.transfer)


@pytest.mark.parametrize(
    ("clients", "problem"),
    [
        (
            [
                {"name": "A", "controller_country": "GB", "widgets": [W1]},
                {"name": "B", "controller_country": "GB", "widgets": [W1]},
            ],
            "belongs to both 'A' and 'B'",
        ),
        (
            [{"name": "A", "widgets": [W1]}],
            "clients.0.controller_country (SNAPZEN_CLIENTS): is required",
        ),
        (
            [
                {
                    "name": "A",
                    "controller_country": "GB",
                    "widgets": [W1],
                    "recipients": [
                        {"name": "Z", "country": "AU", "system": "zendesk", "basis": "adequacy"}
                    ],
                }
            ],
            "client 'A': recipients 'Z': AU is not on the UK GDPR",
        ),
        ([{"name": "A", "controller_country": "GB"}], "client 'A' needs its widgets"),
    ],
)
def test_clients_are_checked_at_load(
    monkeypatch: pytest.MonkeyPatch, clients: list[dict[str, object]], problem: str
) -> None:
    monkeypatch.setenv("SNAPZEN_CLIENTS", json.dumps(clients))
    with pytest.raises(ConfigError) as caught:
        load_settings()
    # "setting clients.0…", or "settings clients.0.recipients … and …" for a check across fields
    assert re.search(r"\bsettings? clients\b", str(caught.value))
    assert problem in str(caught.value)


def test_a_clients_widget_must_be_one_snapzen_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNAPZEN_SNAPENGAGE__WIDGETS", W2)
    clients = [{"name": "A", "controller_country": "GB", "widgets": [W1]}]
    monkeypatch.setenv("SNAPZEN_CLIENTS", json.dumps(clients))
    with pytest.raises(ConfigError, match=f"{W1} of a client are not in snapengage.widgets"):
        load_settings()
