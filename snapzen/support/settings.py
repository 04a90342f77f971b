"""Configuration: a TOML file overridden by ``SNAPZEN_<SECTION>__<FIELD>`` environment variables.

Secrets (``SecretStr`` fields) come only from the environment or from files in the secrets
directory (``/run/secrets`` by default, or ``SNAPZEN_SECRETS_DIR``), one file per secret, named
after its environment variable in lower case (``snapzen_zendesk__api_token``). A secret found in
the TOML file is refused: config files end up in git and in backups (the file and the
secrets directory are read by snapzen.support.settings_sources).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from contextlib import suppress
from contextvars import ContextVar
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from snapzen.support import setting_checks as checks
from snapzen.support import settings_sources as sources
from snapzen.support.errors import ConfigError
from snapzen.support.setting_checks import is_loopback, parse_interval
from snapzen.support.settings_gdpr import (
    Client,
    ConsentSettings,
    ControllerTransfers,
    RecordSettings,
    TransferSettings,
    check_clients,
    client_of,
)
from snapzen.support.settings_sources import SECRET_FIELDS, Failed, Found, Origins, has_failed

__all__ = ["SECRET_FIELDS", "ConsentSettings", "TransferSettings", "is_loopback", "parse_interval"]


class SnapEngageSettings(checks.Section):
    base_url: checks.BaseUrl = "https://www.snapengage.com"
    org_id: str = ""
    api_token: checks.HeaderSecret = Field(
        None,
        description="SnapEngage API token (Admin Dashboard → My Account → API Token). Required "
        "for sync.",
    )
    widgets: checks.WidgetIds = Field(default_factory=list)
    include_offline: bool = False
    settle_minutes: int = Field(default=30, ge=5)
    overlap_days: int = Field(default=2, ge=0, le=30)
    retention_days: int = Field(default=60, ge=1)
    timezone: str = "Etc/UTC"
    page_pause_ms: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _overlap_covers_timezone(self) -> SnapEngageSettings:
        # Cursors are UTC days; SnapEngage reads start/end in `timezone`. Without a day of
        # overlap a zone west of UTC could leave hours between two runs' windows unread.
        if self.timezone not in ("Etc/UTC", "UTC") and self.overlap_days < 1:
            raise checks.FieldsProblem(
                ("overlap_days", "timezone"),
                "overlap_days must be at least 1 when timezone is not UTC",
            )
        return self


def _not_archived(value: bool) -> bool:
    if value:
        raise ValueError(
            "is not supported: archived tickets are invisible to the external_id lookup "
            "that crash recovery relies on, so duplicates could follow"
        )
    return value


class ZendeskSettings(checks.Section):
    subdomain: checks.Subdomain = ""
    base_url: checks.OptionalBaseUrl = ""
    email: checks.Email = ""
    api_token: checks.HeaderSecret = Field(
        None,
        description="Zendesk API token, with zendesk.email. Zendesk deactivates all API tokens "
        "on 2027-04-30: prefer OAuth.",
    )
    oauth_access_token: checks.HeaderSecret = Field(
        None, description="A static Zendesk OAuth access token."
    )
    oauth_client_id: str = ""
    oauth_client_secret: checks.HeaderSecret = Field(
        None,
        description="OAuth client secret, with zendesk.oauth_client_id (tokens renewed "
        "automatically).",
    )
    # Erasure searches and deletes users (users:*); imports, job statuses, lookups and ticket
    # deletion need tickets:*. A token without a scope an endpoint needs gets 403 Forbidden.
    oauth_scope: str = "tickets:read tickets:write users:read users:write"
    batch_size: int = Field(default=100, ge=1, le=100)
    # 25 of Zendesk's 30-job account cap (10 before): with 1 s jobs, 10 in flight could not
    # keep up with a 700 rpm budget; 5 stay free for other integrations on the account.
    max_jobs_in_flight: int = Field(default=25, ge=1, le=30)
    # What `snapzen backfill` uses instead: all 30 by default. A backfill is run by hand, once,
    # and with 25 it cannot finish within 1.3x of the rate/job bound (bench/RESULTS.md, v7).
    # Another integration importing at the same moment then gets TooManyJobs (snapzen itself
    # waits for a slot when that happens): lower this for such an account.
    backfill_max_jobs_in_flight: int = Field(default=30, ge=1, le=30)
    ticket_status: Literal["new", "open", "pending", "hold", "solved", "closed"] = "solved"
    # Refused: crash recovery finds tickets with GET /tickets?external_id=, which excludes
    # archived tickets (docs/data-subject-rights.md, Archived tickets): with archiving on, a lost
    # job answer would be taken for "not created" and the chat sent twice.
    archive_immediately: Annotated[bool, AfterValidator(_not_archived)] = False
    # Zendesk limits a comment by size (~64 KB), not by characters: parts are cut by UTF-8 bytes.
    comment_max_bytes: int = Field(default=60_000, ge=1_000, le=1_000_000)
    # Deprecated and ignored (a character count says nothing about size); kept so an older
    # config file still loads.
    comment_max_chars: int | None = Field(default=None, ge=1_000, le=1_000_000)
    # None: Zendesk makes the authenticated user (the API account) the comments' author.
    comment_author_id: int | None = None
    # An existing Zendesk user that chats without a valid visitor email are imported under.
    # None: a name-only requester is sent, which some accounts refuse.
    anonymous_requester_id: int | None = Field(default=None, ge=1)
    job_poll_seconds: float = Field(default=1.0, gt=0)
    job_timeout_seconds: float = Field(default=1800.0, gt=0)
    recovery_grace_seconds: float = Field(default=3600.0, ge=0)
    requests_per_minute: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _derive_base_url(self) -> ZendeskSettings:
        if not self.base_url and self.subdomain:
            self.base_url = f"https://{self.subdomain}.zendesk.com"
        return self

    @property
    def has_credentials(self) -> bool:
        """One of the three ways to authenticate given in full (snapzen.clients.zendesk_auth
        takes the first: an OAuth token, OAuth client credentials, an API token)."""
        return (
            self.oauth_access_token is not None
            or (bool(self.oauth_client_id) and self.oauth_client_secret is not None)
            or (bool(self.email) and self.api_token is not None)
        )


def default_ledger_path() -> Path:
    """$XDG_DATA_HOME/snapzen/snapzen.db (~/.local/share/... without it): absolute, so the
    ledger a command opens does not depend on the directory it was started from. The image
    sets /data/snapzen.db."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "snapzen" / "snapzen.db"


class LedgerSettings(checks.Section):
    path: Path = Field(
        default_factory=default_ledger_path,
        # How docs show it: the value itself depends on who runs the doc generator.
        json_schema_extra={"shown_default": "$XDG_DATA_HOME/snapzen/snapzen.db"},
    )
    key: SecretStr | None = Field(
        None,
        description="HMAC key of the ledger (subject references, checkpoints): at least 16 "
        "characters, kept safe; losing it makes subject lookups impossible.",
    )
    # Erasure journal: one line per Art. 17 erasure, kept OUTSIDE the database so that a
    # restored backup can be brought back up to date (`snapzen ledger reapply-erasures`).
    # None: next to the database, `<path>.erasures.jsonl`.
    erasure_journal: Path | None = None

    @property
    def erasure_journal_path(self) -> Path:
        return self.erasure_journal or self.path.with_name(self.path.name + ".erasures.jsonl")


class PipelineSettings(checks.Section):
    deadline_days: int = Field(default=50, ge=1)
    max_attempts: int = Field(default=5, ge=1)
    actor: str = "cron"


class RedactionSettings(checks.Section):
    # Checked at load, not when the pipeline starts, so a typo fails before the lock and any
    # network call with exit 2 and one line naming the rule.
    enabled: checks.RuleNames = Field(default_factory=lambda: ["card"])
    extra_patterns: checks.Patterns = Field(default_factory=dict)


class HttpSettings(checks.Section):
    timeout_seconds: float = Field(default=60.0, gt=0)
    connect_timeout_seconds: float = Field(default=10.0, gt=0)
    max_attempts: int = Field(default=6, ge=1, le=20)
    max_wait_seconds: float = Field(default=120.0, gt=0)
    backoff_base_seconds: float = Field(default=0.5, gt=0)
    # One attempt, connect to last body byte: a server dripping a byte per read timeout would
    # otherwise hold the run (and its lock) for as long as it likes.
    total_timeout_seconds: float = Field(default=300.0, gt=0)
    # A larger body is refused as it streams in, never read whole into memory (a SnapEngage
    # page is ~2 MB; Zendesk pages are smaller).
    max_response_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)


class LogSettings(checks.Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "console"] = "json"


class ScheduleSettings(checks.Section):
    every: checks.Interval = "15m"
    retention_sweep_at: str = "03:30"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=sources.ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        case_sensitive=False,
    )

    snapengage: SnapEngageSettings = Field(default_factory=SnapEngageSettings)
    zendesk: ZendeskSettings = Field(default_factory=ZendeskSettings)
    consent: ConsentSettings = Field(default_factory=ConsentSettings)
    # default {} rather than a factory: validated like a file's section, so a missing
    # controller_country is reported as transfer.controller_country.
    transfer: TransferSettings = Field(default_factory=dict)  # type: ignore[assignment]
    record: RecordSettings = Field(default_factory=RecordSettings)
    ledger: LedgerSettings = Field(default_factory=LedgerSettings)
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
    redaction: RedactionSettings = Field(default_factory=RedactionSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    # Processor mode (issue 26): each client the controller of its widgets' chats.
    clients: Annotated[
        list[Client], NoDecode, checks.jsonish("list of clients"), AfterValidator(check_clients)
    ] = Field(default_factory=list)

    def transfer_for(self, widget: str) -> tuple[str | None, ControllerTransfers]:
        """(client name or None, the transfer settings deciding ``widget``'s chats)."""
        client = client_of(self.clients, widget)
        return (None, self.transfer) if client is None else (client.name, client)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # init (the TOML file, passed in by load_settings) < secrets dir < environment.
        return (env_settings, sources.SecretsDirSource(settings_cls), init_settings)

    @field_validator("*", mode="wrap")
    @classmethod
    def _look_past(cls, value: Any, handler: Any, info: Any) -> Any:
        """While load_settings collects problems (_COLLECTED), a section that fails is
        reported there and rebuilt from the rest of what was given, each value checked on its
        own; the failed ones keep their (unchecked) defaults. So checks across sections and
        each command's requirements are reported in the same run, and a command that does not
        need a section still gets its settings."""
        given, section, failed = value, str(info.field_name), frozenset[str]()
        model = cls.model_fields[section].annotation
        # The rebuilt section is checked again: a check across its fields (a model validator)
        # runs only once its fields pass, and is reported in the same run. Bounded: each pass
        # sets aside at least one more setting, "" (the whole section) last.
        for _ in range(len(getattr(model, "model_fields", ())) + 2):
            try:
                return handler(value)
            except ValidationError as exc:
                if (collected := _COLLECTED.get(None)) is None:
                    raise
                errors = exc.errors()
                collected[0].extend({**e, "loc": (section, *e["loc"])} for e in errors)
                more = failed | frozenset(str((*e["loc"], "")[0]) for e in errors)
                if more == failed:
                    break
                failed = collected[1][section] = more
                value = _rebuilt(model, given, failed)
        return value


def _rebuilt(model: Any, given: Any, failed: frozenset[str]) -> Any:
    if not hasattr(model, "model_construct"):
        return []  # a list section ([[clients]]) that failed: nothing of it is trusted
    section = model.model_construct()
    if "" in failed or not isinstance(given, Mapping):
        return section  # the section as a whole failed (a check across its fields)
    for name, value in given.items():
        if name in model.model_fields and name not in failed:
            # A value that fails alone was reported already, with the section's others.
            with suppress(ValidationError):
                model.__pydantic_validator__.validate_assignment(section, name, value)
    return section


# What load_settings found while building Settings: pydantic's errors (located from the top),
# and the settings that failed, by section ("" for a section as a whole).
_COLLECTED: ContextVar[tuple[list[Any], dict[str, frozenset[str]]]] = ContextVar("collected")


class Needs(StrEnum):
    """What a command needs of the settings: every problem in a needed section, and every
    requirement of the command, is reported together (one line each), then exit 2."""

    EVIDENCE = "evidence"  # read-only evidence commands: the ledger file (and its key)
    ALL = "all"  # every section valid
    SYNC = "sync"  # every section valid, and what a pass needs to reach both APIs


# What a read-only evidence command reads: problems elsewhere do not stop it (an auditor
# holds the ledger file, perhaps a public key and the ledger key, and no sync settings).
EVIDENCE_SECTIONS = frozenset({"ledger", "log"})


def load_settings(
    config_path: Path | str | None = None,
    *,
    needs: Needs = Needs.ALL,
) -> Settings:
    """Build Settings or raise ConfigError listing every problem, one line each, each naming
    the setting as it was given. ``config_path``: the file named with --config, which wins
    over SNAPZEN_CONFIG; ``needs``: what the command needs (see Needs)."""
    given = "--config"
    if not config_path and os.environ.get(sources.CONFIG_ENV):
        config_path, given = os.environ[sources.CONFIG_ENV], sources.CONFIG_ENV
    file_values = sources.read_toml(Path(config_path), given) if config_path else {}
    origins = Origins(str(config_path) if config_path else None, file_values)
    problems = sources.secrets_in_file(file_values, str(config_path))
    problems += sources.unknown_env_sections(Settings, os.environ)
    settings, found, failed = _build(file_values, origins)
    needed = EVIDENCE_SECTIONS if needs is Needs.EVIDENCE else frozenset(Settings.model_fields)
    for sections, line in found:
        # An unknown section in the file is reported whatever the command needs.
        if sections & needed or not sections & set(Settings.model_fields):
            problems.append(line)
    if needs is not Needs.EVIDENCE:
        problems += _cross_problems(settings, failed, origins)
    if needs is Needs.SYNC:
        problems += _sync_requirements(settings, failed, origins)
    if problems:
        raise ConfigError(_one_message(list(dict.fromkeys(problems))))
    return settings


def _build(
    file_values: Mapping[str, Any], origins: Origins
) -> tuple[Settings, list[Found], Failed]:
    """Settings, with every problem found on the way (each with the sections it is about),
    and the settings that failed (Settings._look_past): in the Settings returned they hold
    their unchecked defaults. An unknown section of the file is reported and left out."""
    known = {k: v for k, v in file_values.items() if k in Settings.model_fields}
    errors = [{"loc": (k,), "type": "extra_forbidden"} for k in file_values if k not in known]
    failed: dict[str, frozenset[str]] = {}
    token = _COLLECTED.set((errors, failed))
    try:
        settings = Settings(**known)
    except SettingsError as exc:
        # A variable pydantic-settings reads as JSON (a whole section, SNAPZEN_ZENDESK='{...}',
        # or a list in one, SNAPZEN_REDACTION__EXTRA_PATTERNS='[...]') that is not JSON: the
        # section's variables named, the value never shown (it may hold a secret).
        section = str(exc).split('"')[1] if str(exc).count('"') >= 2 else "?"
        whole = sources.env_name((section,))
        named = sorted(k for k in os.environ if _read_as_json(k, whole) and not _json(k))
        named = named or [whole]
        raise ConfigError(
            f"{' or '.join(named)} (the [{section}] section, or a list in it, as JSON) is not "
            "valid JSON"
        ) from None
    finally:
        _COLLECTED.reset(token)
    return settings, sources.describe_errors(errors, Settings, origins), failed


def _read_as_json(name: str, whole: str) -> bool:
    """Whether pydantic-settings reads variable ``name`` as JSON for the section whose own
    variable is ``whole``: that variable, or one of its list or table fields."""
    head, _, field = name.upper().partition("__")
    if head != whole:
        return False
    if not field:
        return True
    section = Settings.model_fields.get(whole.removeprefix(sources.ENV_PREFIX).lower())
    model = getattr(section, "annotation", None) if section is not None else None
    found = getattr(model, "model_fields", {}).get(field.lower())
    # The library's own rule, and its opt-out: a NoDecode field (a comma list) is never JSON.
    return (
        found is not None
        and NoDecode not in found.metadata
        and EnvSettingsSource(Settings).field_is_complex(found)
    )


def _json(name: str) -> bool:
    try:
        json.loads(os.environ[name])
    except ValueError:
        return False
    return True


def _one_message(problems: list[str]) -> str:
    """One line for one problem; all of them, one per line, when there are several."""
    if len(problems) == 1:
        return problems[0]
    return f"{len(problems)} problems in the settings:\n  " + "\n  ".join(problems)


def require_sync_settings(settings: Settings) -> None:
    """Everything `sync` needs before the first network call; ConfigError naming all that is
    missing (the CLI checks this at load, with load_settings(needs=Needs.SYNC))."""
    if found := _sync_requirements(settings, {}, Origins()):
        raise ConfigError(_one_message(found))


def require_ledger_key(settings: Settings) -> bytes:
    key = settings.ledger.key
    if key is None or not key.get_secret_value():
        raise ConfigError(Origins().describe(("ledger", "key"), "is required"))
    return key.get_secret_value().encode("utf-8")


def _cross_problems(settings: Settings, failed: Failed, origins: Origins) -> list[str]:
    """Checks across sections (not made when a setting they read failed on its own)."""
    deadline, retention = settings.pipeline.deadline_days, settings.snapengage.retention_days
    if (
        has_failed(failed, "pipeline", "deadline_days")
        or has_failed(failed, "snapengage", "retention_days")
        or deadline < retention
    ):
        return []
    return [
        f"{origins.name(('pipeline', 'deadline_days'))}: {deadline} must be below "
        f"snapengage.retention_days ({retention}): a chat unsynced for that long is already "
        "deleted by SnapEngage, so the warning would come too late"
    ]


ZENDESK_CREDENTIALS = (
    "SNAPZEN_ZENDESK__EMAIL with SNAPZEN_ZENDESK__API_TOKEN, or "
    "SNAPZEN_ZENDESK__OAUTH_ACCESS_TOKEN, or SNAPZEN_ZENDESK__OAUTH_CLIENT_ID with "
    "SNAPZEN_ZENDESK__OAUTH_CLIENT_SECRET"
)
_CREDENTIALS = (
    "email",
    "api_token",
    "oauth_access_token",
    "oauth_client_id",
    "oauth_client_secret",
)


def _sync_requirements(settings: Settings, failed: Failed, origins: Origins) -> list[str]:
    """What a pass needs before its first network call, every missing piece at once (the
    settings that failed on their own are not looked at again)."""
    se, zd, key = settings.snapengage, settings.zendesk, settings.ledger.key
    missing: list[tuple[bool, tuple[str, str], str]] = [
        (not se.org_id, ("snapengage", "org_id"), "is required"),
        (se.api_token is None, ("snapengage", "api_token"), "is required"),
        (not se.widgets, ("snapengage", "widgets"), "is required (at least one widget id)"),
        (
            not zd.base_url and not has_failed(failed, "zendesk", "base_url"),
            ("zendesk", "subdomain"),
            "is required (or zendesk.base_url, for a host of your own)",
        ),
        (key is None, ("ledger", "key"), "is required"),
        (
            key is not None and len(key.get_secret_value()) < 16,
            ("ledger", "key"),
            "must be at least 16 characters",
        ),
    ]
    found = [
        origins.describe(location, problem)
        for is_missing, location, problem in missing
        if is_missing and not has_failed(failed, *location)
    ]
    if not zd.has_credentials and not any(has_failed(failed, "zendesk", n) for n in _CREDENTIALS):
        where = sources.secrets_dir()
        secrets = "" if where.is_dir() else ", which does not exist"
        found.append(
            f"zendesk credentials are required: set {ZENDESK_CREDENTIALS} (secrets as "
            f"variables, or as files in the secrets directory {where}{secrets})"
        )
    return found
