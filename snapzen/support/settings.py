"""Configuration: a TOML file overridden by ``SNAPZEN_<SECTION>__<FIELD>`` environment variables.

Secrets (``SecretStr`` fields) come only from the environment or from files in the secrets
directory (``/run/secrets`` by default, or ``SNAPZEN_SECRETS_DIR``), one file per secret, named
after its environment variable in lower case (``snapzen_zendesk__api_token``). A secret found in
the TOML file is refused: config files end up in git and in backups.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from snapzen.support import setting_checks
from snapzen.support.errors import ConfigError
from snapzen.support.settings_base import CommaList, Section, split_list
from snapzen.support.settings_clients import Client as Client
from snapzen.support.settings_clients import check_clients, client_of, parse_clients
from snapzen.support.settings_gdpr import ConsentSettings as ConsentSettings
from snapzen.support.settings_gdpr import RecordSettings
from snapzen.support.settings_transfer import Recipient as Recipient
from snapzen.support.settings_transfer import TransferSettings as TransferSettings

# A check of one setting's value that needs the code using it (the redaction rules live in the
# policy layer, above this one): raises ValueError with the reason. The caller of load_settings
# passes them, keyed by the setting's dotted name (the CLI passes snapzen.policy.setting_checks);
# they run inside pydantic's validation, so a problem is reported with the others, naming the
# setting and where it was written.
ValueCheck = Callable[[Any], object]
_VALUE_CHECKS: ContextVar[Mapping[str, ValueCheck]] = ContextVar("snapzen_value_checks")


def _checked(setting: str, value: Any) -> Any:
    check = _VALUE_CHECKS.get({}).get(setting)
    if check is not None:
        check(value)
    return value


ENV_PREFIX = "SNAPZEN_"
CONFIG_ENV = "SNAPZEN_CONFIG"
SECRETS_DIR_ENV = "SNAPZEN_SECRETS_DIR"
DEFAULT_SECRETS_DIR = Path("/run/secrets")


def _check_base_url(url: str) -> str:
    """https only, except loopback hosts (the sandbox, tests)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http(s) URL")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ValueError("must use https (plain http is allowed only for loopback hosts)")
    return url.rstrip("/")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SnapEngageSettings(Section):
    base_url: str = "https://www.snapengage.com"
    org_id: str = ""
    api_token: SecretStr | None = None
    widgets: CommaList = Field(default_factory=list)
    include_offline: bool = False
    settle_minutes: int = Field(default=30, ge=5)
    overlap_days: int = Field(default=2, ge=0, le=30)
    retention_days: int = Field(default=60, ge=1)
    timezone: str = "Etc/UTC"
    page_pause_ms: int = Field(default=0, ge=0)

    _split_widgets = field_validator("widgets", mode="before")(split_list)
    _widget_ids = field_validator("widgets")(setting_checks.check_widgets)

    @model_validator(mode="after")
    def _overlap_covers_timezone(self) -> SnapEngageSettings:
        # Cursors are UTC days; SnapEngage reads start/end in `timezone`. Without a day of
        # overlap a zone west of UTC could leave hours between two runs' windows unread.
        if self.timezone not in ("Etc/UTC", "UTC") and self.overlap_days < 1:
            raise ValueError("overlap_days must be at least 1 when timezone is not UTC")
        return self

    @field_validator("base_url")
    @classmethod
    def _https(cls, value: str) -> str:
        return _check_base_url(value)


class ZendeskAuth(StrEnum):
    API_TOKEN = "api_token"
    OAUTH_TOKEN = "oauth_token"
    OAUTH_CLIENT_CREDENTIALS = "oauth_client_credentials"


class ZendeskSettings(Section):
    subdomain: str = ""
    base_url: str = ""
    email: str = ""
    api_token: SecretStr | None = None
    oauth_access_token: SecretStr | None = None
    oauth_client_id: str = ""
    oauth_client_secret: SecretStr | None = None
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
    # create_many POSTs outstanding at once (each on its own submit worker connection); every
    # one of them counts against max_jobs_in_flight. 4 (2 before): refilling freed job slots
    # was bound by POST latency at 2 (bench/RESULTS.md, v6).
    max_concurrent_posts: int = Field(default=4, ge=1, le=4)
    ticket_status: Literal["new", "open", "pending", "hold", "solved", "closed"] = "solved"
    archive_immediately: bool = False
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

    @field_validator("base_url")
    @classmethod
    def _https(cls, value: str) -> str:
        return _check_base_url(value) if value else value

    _subdomain = field_validator("subdomain")(setting_checks.check_subdomain)
    _email = field_validator("email")(setting_checks.check_email)

    @field_validator("archive_immediately")
    @classmethod
    def _not_archived(cls, value: bool) -> bool:
        # Crash recovery finds tickets with GET /tickets?external_id=, which excludes archived
        # tickets (docs/data-subject-rights.md, Archived tickets): with archiving on, a lost job
        # answer would be taken for "not created" and the chat sent twice.
        if value:
            raise ValueError(
                "is not supported: archived tickets are invisible to the external_id lookup "
                "that crash recovery relies on, so duplicates could follow"
            )
        return value

    @model_validator(mode="after")
    def _derive_base_url(self) -> ZendeskSettings:
        if not self.base_url and self.subdomain:
            self.base_url = f"https://{self.subdomain}.zendesk.com"
        return self

    @property
    def auth_mode(self) -> ZendeskAuth | None:
        if self.oauth_access_token is not None:
            return ZendeskAuth.OAUTH_TOKEN
        if self.oauth_client_id and self.oauth_client_secret is not None:
            return ZendeskAuth.OAUTH_CLIENT_CREDENTIALS
        if self.email and self.api_token is not None:
            return ZendeskAuth.API_TOKEN
        return None


def default_ledger_path() -> Path:
    """$XDG_DATA_HOME/snapzen/snapzen.db (~/.local/share/... without it): absolute, so the
    ledger a command opens does not depend on the directory it was started from. The image
    sets /data/snapzen.db."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "snapzen" / "snapzen.db"


class LedgerSettings(Section):
    path: Path = Field(
        default_factory=default_ledger_path,
        # How docs show it: the value itself depends on who runs the doc generator.
        json_schema_extra={"shown_default": "$XDG_DATA_HOME/snapzen/snapzen.db"},
    )
    key: SecretStr | None = None
    # Erasure journal: one line per Art. 17 erasure, kept OUTSIDE the database so that a
    # restored backup can be brought back up to date (`snapzen ledger reapply-erasures`).
    # None: next to the database, `<path>.erasures.jsonl`.
    erasure_journal: Path | None = None

    @property
    def erasure_journal_path(self) -> Path:
        return self.erasure_journal or self.path.with_name(self.path.name + ".erasures.jsonl")


class PipelineSettings(Section):
    deadline_days: int = Field(default=50, ge=1)
    max_attempts: int = Field(default=5, ge=1)
    actor: str = "cron"


class RedactionSettings(Section):
    enabled: CommaList = Field(default_factory=lambda: ["card"])
    extra_patterns: dict[str, str] = Field(default_factory=dict)

    _split = field_validator("enabled", mode="before")(split_list)

    # Checked at load, not when the pipeline starts, so a typo fails before the lock and any
    # network call with exit 2 and one line naming the rule: by the redaction code itself, which
    # the caller of load_settings hands in (see ValueCheck).
    @field_validator("enabled")
    @classmethod
    def _known_rules(cls, values: list[str]) -> list[str]:
        return list(_checked("redaction.enabled", values))

    @field_validator("extra_patterns")
    @classmethod
    def _valid_patterns(cls, patterns: dict[str, str]) -> dict[str, str]:
        return dict(_checked("redaction.extra_patterns", patterns))


class HttpSettings(Section):
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


class LogSettings(Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "console"] = "json"


class ScheduleSettings(Section):
    every: str = "15m"
    retention_sweep_at: str = "03:30"

    @field_validator("every")
    @classmethod
    def _interval(cls, value: str) -> str:
        parse_interval(value)
        return value


def parse_interval(text: str) -> timedelta:
    """'90s', '15m', '2h', '1d' → timedelta."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = text.strip().lower()
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit() or int(text[:-1]) <= 0:
        raise ValueError(f"{text!r} is not an interval like 30s, 15m, 2h or 1d")
    seconds = int(text[:-1]) * units[text[-1]]
    if seconds > _LONGEST_INTERVAL:  # timedelta and the scheduler overflow long before 99999999d
        raise ValueError(f"{text!r} is longer than the longest interval, 366d")
    return timedelta(seconds=seconds)


_LONGEST_INTERVAL = 366 * 86400


# Secrets that travel in an HTTP header (Authorization) or request body as text.
HEADER_SECRETS = {
    ("snapengage", "api_token"),
    ("zendesk", "api_token"),
    ("zendesk", "oauth_access_token"),
    ("zendesk", "oauth_client_secret"),
}

SECRET_FIELDS = {
    ("snapengage", "api_token"),
    ("zendesk", "api_token"),
    ("zendesk", "oauth_access_token"),
    ("zendesk", "oauth_client_secret"),
    ("ledger", "key"),
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
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
    clients: Annotated[list[Client], NoDecode] = Field(default_factory=list)

    _clients_json = field_validator("clients", mode="before")(parse_clients)
    _clients_ok = field_validator("clients")(check_clients)

    def transfer_for(self, widget: str) -> tuple[str | None, TransferSettings]:
        """(client name or None, the transfer settings deciding ``widget``'s chats)."""
        client = client_of(self.clients, widget)
        return (None, self.transfer) if client is None else (client.name, client.transfer)

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
        return (env_settings, _SecretsDirSource(settings_cls), init_settings)

    @model_validator(mode="after")
    def _can_work(self) -> Settings:
        """Checks across sections, and secrets that could never be sent: refused at load
        (exit 2, the setting named, the value never shown) rather than as a traceback from
        the HTTP library on the first request."""
        for section, name in sorted(HEADER_SECRETS):
            secret = getattr(getattr(self, section), name)
            problem = secret and setting_checks.header_problem(secret.get_secret_value())
            if problem:
                where = setting_checks.env_name((section, name))
                raise ValueError(f"setting {section}.{name} ({where}): {problem}")
        deadline, retention = self.pipeline.deadline_days, self.snapengage.retention_days
        if deadline >= retention:
            raise ValueError(
                f"setting pipeline.deadline_days ({deadline}) must be below "
                f"snapengage.retention_days ({retention}): a chat unsynced for that long is "
                "already deleted by SnapEngage, so the warning would come too late"
            )
        return self


class _SecretsDirSource(PydanticBaseSettingsSource):
    """Reads ``<secrets dir>/snapzen_<section>__<field>`` files for the secret fields only.

    Written by hand because pydantic-settings' own secrets source does not map nested
    ``__`` names onto sub-models; this covers exactly the fields listed in SECRET_FIELDS.
    """

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        directory = Path(os.environ.get(SECRETS_DIR_ENV, DEFAULT_SECRETS_DIR))
        found: dict[str, Any] = {}
        if not directory.is_dir():
            return found
        for section, name in SECRET_FIELDS:
            path = directory / f"{ENV_PREFIX.lower()}{section}__{name}"
            if path.is_file():
                # utf-8-sig and strip: editors add a BOM and a final newline to such files.
                text = path.read_text(encoding="utf-8-sig").strip().lstrip("\ufeff")
                found.setdefault(section, {})[name] = text
        return found


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    for section, name in SECRET_FIELDS:
        if isinstance(data.get(section), Mapping) and name in data[section]:
            env_name = f"{ENV_PREFIX}{section.upper()}__{name.upper()}"
            raise ConfigError(
                f"{section}.{name} must not be in the config file {path}; "
                f"set {env_name} or put it in the secrets directory"
            )
    return data


def load_settings(
    config_path: Path | str | None = None, checks: Mapping[str, ValueCheck] | None = None
) -> Settings:
    """Build Settings or raise ConfigError with one line naming the bad setting. ``checks``:
    value checks by the code that uses a setting (see ValueCheck), run with pydantic's own."""
    if config_path is None and os.environ.get(CONFIG_ENV):
        config_path = os.environ[CONFIG_ENV]
    file_values = _read_toml(Path(config_path)) if config_path else {}
    problems = setting_checks.unknown_env_sections(Settings, os.environ)
    token = _VALUE_CHECKS.set(checks or {})
    try:
        settings = Settings(**file_values)
    except ValidationError as exc:
        problems += setting_checks.describe_errors(exc, Settings, file_values)
    finally:
        _VALUE_CHECKS.reset(token)
    if problems:
        raise ConfigError(_one_message(problems))
    return settings


def _one_message(problems: list[str]) -> str:
    """One line for one problem; all of them, one per line, when there are several."""
    if len(problems) == 1:
        return problems[0]
    return f"{len(problems)} problems in the settings:\n  " + "\n  ".join(problems)


def describe_validation_error(exc: ValidationError) -> str:
    """Every problem, each naming its setting (kept for callers validating a dict)."""
    return _one_message(setting_checks.describe_errors(exc, Settings, {}))


def require_sync_settings(settings: Settings) -> None:
    """Everything `sync` needs before the first network call; ConfigError names what is missing."""
    se, zd = settings.snapengage, settings.zendesk
    missing = [
        (not se.org_id, "snapengage.org_id", "SNAPZEN_SNAPENGAGE__ORG_ID"),
        (se.api_token is None, "snapengage.api_token", "SNAPZEN_SNAPENGAGE__API_TOKEN"),
        (not se.widgets, "snapengage.widgets", "SNAPZEN_SNAPENGAGE__WIDGETS"),
        (not zd.base_url, "zendesk.subdomain or zendesk.base_url", "SNAPZEN_ZENDESK__SUBDOMAIN"),
        (settings.ledger.key is None, "ledger.key", "SNAPZEN_LEDGER__KEY"),
    ]
    for is_missing, name, env_name in missing:
        if is_missing:
            raise ConfigError(f"setting {name} is required (set {env_name})")
    if zd.auth_mode is None:
        raise ConfigError(
            "setting zendesk credentials are required: set SNAPZEN_ZENDESK__EMAIL with "
            "SNAPZEN_ZENDESK__API_TOKEN, or SNAPZEN_ZENDESK__OAUTH_ACCESS_TOKEN, or "
            "SNAPZEN_ZENDESK__OAUTH_CLIENT_ID with SNAPZEN_ZENDESK__OAUTH_CLIENT_SECRET"
        )
    key = settings.ledger.key
    if key is not None and len(key.get_secret_value()) < 16:
        raise ConfigError("setting ledger.key (SNAPZEN_LEDGER__KEY) must be at least 16 characters")


def require_ledger_key(settings: Settings) -> bytes:
    key = settings.ledger.key
    if key is None or not key.get_secret_value():
        raise ConfigError("setting ledger.key is required (set SNAPZEN_LEDGER__KEY)")
    return key.get_secret_value().encode("utf-8")
