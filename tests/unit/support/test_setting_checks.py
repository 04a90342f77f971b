"""Settings that cannot work are refused at load, with exit 2 and the setting named as the
user wrote it (file key or environment variable); every unknown key is reported at once."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from snapzen.cli import app
from snapzen.support.errors import ConfigError
from snapzen.support.settings import load_settings

runner = CliRunner()
UUID = "1a2b3c4d-0000-4000-8000-123456789abc"


def refused(config: Path | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    return str(caught.value)


def test_every_unknown_key_at_once_named_as_written_with_did_you_mean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[zendesk]\nsubdomian = "acme"\nemial = "a@b.test"\n[pipline]\nx = 1\n')
    monkeypatch.setenv("SNAPZEN_ZENDESK__SUBDOMAN", "acme")
    monkeypatch.setenv("SNAPZEN_SNAPENGAGE__ORGID", "1")
    message = refused(config)
    lines = message.splitlines()
    assert lines[0] == "5 problems in the settings:"
    assert f"unknown setting zendesk.subdomian in {config}; did you mean zendesk.subdomain?" in (
        message
    )
    assert f"unknown setting zendesk.emial in {config}; did you mean zendesk.email?" in message
    assert f"unknown setting pipline in {config}; did you mean pipeline?" in message
    assert (
        "unknown setting SNAPZEN_ZENDESK__SUBDOMAN; did you mean SNAPZEN_ZENDESK__SUBDOMAIN?"
        in message
    )
    assert "SNAPZEN_SNAPENGAGE__ORGID; did you mean SNAPZEN_SNAPENGAGE__ORG_ID?" in message
    assert "and 3 more" not in message and "Extra inputs" not in message


def test_an_unknown_section_in_the_environment_is_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SNAPZEN_PIPLINE__DEADLINE_DAYS", "10")
    assert "SNAPZEN_PIPLINE__DEADLINE_DAYS" in refused() and "SNAPZEN_PIPELINE__" in refused()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("acme.zendesk.com", "write 'acme', not 'acme.zendesk.com'"),
        ("https://acme.zendesk.com/", "write 'acme'"),
        ("help.acme.com", "zendesk.base_url"),
        ("acme_corp", "letters, digits and '-' only"),
    ],
)
def test_a_subdomain_with_dots_is_refused_with_the_fix(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: str
) -> None:
    monkeypatch.setenv("SNAPZEN_ZENDESK__SUBDOMAIN", value)
    message = refused()
    assert message.startswith("setting zendesk.subdomain (SNAPZEN_ZENDESK__SUBDOMAIN): ")
    assert expected in message


def test_a_plain_subdomain_gives_the_zendesk_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNAPZEN_ZENDESK__SUBDOMAIN", "Acme-EU")
    assert load_settings().zendesk.base_url == "https://acme-eu.zendesk.com"


def test_deadline_must_come_before_snapengage_deletes(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[pipeline]\ndeadline_days = 70\n")
    message = refused(config)
    assert message.startswith(f"setting pipeline.deadline_days in {config}: 70 must be below ")
    assert "snapengage.retention_days (60)" in message
    config.write_text("[pipeline]\ndeadline_days = 70\n[snapengage]\nretention_days = 90\n")
    assert load_settings(config).pipeline.deadline_days == 70


def test_emails_and_widget_ids_are_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNAPZEN_ZENDESK__EMAIL", "not-an-email")
    assert "setting zendesk.email (SNAPZEN_ZENDESK__EMAIL): is not an email" in refused()
    monkeypatch.setenv("SNAPZEN_ZENDESK__EMAIL", "Agent@Example.COM")
    assert load_settings().zendesk.email == "Agent@example.com"
    for bad in ("a b", "<script>", f"{UUID},{UUID}"):
        monkeypatch.setenv("SNAPZEN_SNAPENGAGE__WIDGETS", bad)
        assert "setting snapengage.widgets (SNAPZEN_SNAPENGAGE__WIDGETS)" in refused()
    monkeypatch.setenv("SNAPZEN_SNAPENGAGE__WIDGETS", f"{UUID},w2")
    assert load_settings().snapengage.widgets == [UUID, "w2"]


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        ("\ufefftoken-value", "byte-order mark"),
        ("token-välue-€", "not Latin-1"),
        ("token\nvalue", "line break"),
    ],
)
def test_a_secret_that_cannot_go_in_a_header_is_refused_in_one_line_exit_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, secret: str, why: str
) -> None:
    monkeypatch.setenv("SNAPZEN_ZENDESK__API_TOKEN", secret)
    monkeypatch.setenv("SNAPZEN_LEDGER__PATH", str(tmp_path / "none.db"))
    for args in (["status", "--check"], ["sync"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        named = [line for line in result.stderr.splitlines() if "zendesk.api_token" in line]
        assert len(named) == 1 and "(SNAPZEN_ZENDESK__API_TOKEN): " in named[0]
        assert why in named[0] and "Traceback" not in result.output
        assert secret.strip() not in result.stderr and "value" not in result.stderr
    # status needs no sync settings: that line is all it says (sync lists what it lacks too).
    assert runner.invoke(app, ["status", "--check"]).stderr.count("\n") == 1


def test_a_secrets_file_loses_its_bom_and_trailing_newline(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "snapzen_zendesk__api_token").write_bytes("\ufefftok-123\r\n".encode())
    monkeypatch.setenv("SNAPZEN_SECRETS_DIR", str(secrets))
    token = load_settings().zendesk.api_token
    assert token is not None and token.get_secret_value() == "tok-123"
