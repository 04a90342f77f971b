"""Checks that settings can work, and messages that say which setting, as it was written.

The settings model (snapzen.support.settings) attaches the value checks below; the loader
turns pydantic's ValidationError into one line per problem with ``describe_errors``: the name
as the user gave it (``zendesk.subdomian in prod.toml``, ``SNAPZEN_ZENDESK__SUBDOMIAN``, or
the secrets file), every unknown key at once, and a "did you mean" when one is close.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from snapzen.support.settings_sources import ENV_PREFIX, Origins, env_name

# Variables that are not settings but share the prefix.
NOT_SETTINGS = {"SNAPZEN_CONFIG", "SNAPZEN_SECRETS_DIR"}

_SUBDOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
# SnapEngage widget ids are UUIDs; ids are also used in URLs and file names, so any other
# shape is limited to letters, digits, '-' and '_'.
_WIDGET = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def check_subdomain(value: str) -> str:
    """``acme``, not ``acme.zendesk.com`` (which became ``acme.zendesk.com.zendesk.com``)."""
    value = value.strip()
    if not value:
        return value
    lowered = value.lower()
    for prefix in ("https://", "http://"):
        lowered = lowered.removeprefix(prefix)
    lowered = lowered.rstrip("/")
    bare = lowered.removesuffix(".zendesk.com")
    if bare != lowered and _SUBDOMAIN.match(bare):
        raise ValueError(f"must be just the subdomain: write {bare!r}, not {value!r}")
    if "." in lowered or "/" in lowered:
        raise ValueError(
            f"{value!r} is not a Zendesk subdomain (the 'acme' of acme.zendesk.com); for a "
            "host of your own set zendesk.base_url = 'https://…' instead"
        )
    if not _SUBDOMAIN.match(lowered):
        raise ValueError(f"{value!r} is not a subdomain: letters, digits and '-' only")
    return lowered


def check_email(value: str) -> str:
    if not value.strip():
        return ""
    from email_validator import EmailNotValidError, validate_email

    try:
        # The shape only: no DNS lookup at load, and reserved domains (example.com, .test)
        # are fine for the sandbox and for tests.
        checked = validate_email(
            value.strip(),
            check_deliverability=False,
            globally_deliverable=False,
            test_environment=True,
        )
        return checked.normalized
    except EmailNotValidError as exc:
        raise ValueError(f"is not an email address: {exc}") from None


def check_widgets(values: list[str]) -> list[str]:
    seen: set[str] = set()
    for value in values:
        if not _WIDGET.match(value):
            raise ValueError(
                f"{value!r} is not a widget id (a UUID such as "
                "'1a2b3c4d-0000-4000-8000-123456789abc', from the Get the Code tab)"
            )
        if value in seen:
            raise ValueError(f"{value!r} is listed twice")
        seen.add(value)
    return values


# The redaction rules snapzen ships, by name (snapzen.policy.redaction.BUILTIN_RULES holds one
# rule each): the one list that `redaction.enabled` and the Redactor check names against.
REDACTION_RULES = ("card", "iban", "email", "uk_nino", "us_ssn")
_RULE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def check_rule_name(name: str) -> str:
    if _RULE_NAME.fullmatch(name) is None:
        raise ValueError(
            f"invalid redaction rule name {name!r}: "
            "use 1-64 characters from A-Z, a-z, 0-9, '_', '.', '-'"
        )
    return name


def check_redaction_rules(names: Sequence[str]) -> list[str]:
    """``redaction.enabled``: built-in rule names only (ValueError names the unknown one)."""
    if isinstance(names, str):
        raise TypeError("enabled must be a sequence of rule names, not a single string")
    for name in names:
        if name not in REDACTION_RULES:
            known = ", ".join(sorted(REDACTION_RULES))
            raise ValueError(f"unknown redaction rule {name!r} (known rules: {known})")
    return list(names)


def compile_patterns(patterns: Mapping[str, str]) -> dict[str, re.Pattern[str]]:
    """``redaction.extra_patterns``, compiled; ValueError names a pattern that cannot be a rule."""
    compiled: dict[str, re.Pattern[str]] = {}
    for name, source in patterns.items():
        if name in REDACTION_RULES:
            raise ValueError(
                f"redaction pattern {name!r} clashes with the built-in rule of that name"
            )
        try:
            compiled[name] = re.compile(source)
        except re.error as exc:
            raise ValueError(f"invalid regex for redaction pattern {name!r}: {exc}") from None
        if compiled[name].fullmatch("") is not None:
            raise ValueError(f"redaction pattern {name!r} matches the empty string")
        check_rule_name(name)
    return compiled


def header_problem(value: str) -> str | None:
    """Why ``value`` cannot be sent in an HTTP header (requests encodes headers as Latin-1;
    a BOM or a newline would fail there, or split the header), or None."""
    if "\ufeff" in value:
        return "starts with or contains a byte-order mark (saved as 'UTF-8 with BOM'?)"
    if any(ch in value for ch in "\r\n"):
        return "contains a line break"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return "contains a control character"
    if any(ord(ch) > 255 for ch in value):
        return "contains characters that cannot be sent in an HTTP header (not Latin-1)"
    return None


def _fields(model: type[BaseModel], location: tuple[str, ...]) -> list[str]:
    current: Any = model
    for part in location:
        field = current.model_fields.get(part) if hasattr(current, "model_fields") else None
        if field is None:
            return []
        current = field.annotation
    return list(current.model_fields) if hasattr(current, "model_fields") else []


def _suggest(name: str, known: list[str], section: tuple[str, ...], env: bool) -> str:
    close = difflib.get_close_matches(name.lower(), known, n=1, cutoff=0.6)
    if not close:
        return ""
    if env:
        return f"; did you mean {env_name((*section, close[0]))}?"
    return f"; did you mean {'.'.join((*section, close[0]))}?"


# A problem found in the settings: the sections it is about (empty: about none in
# particular), and its line, naming each setting as it was given.
Found = tuple[frozenset[str], str]
# Settings that failed their own checks, by section: field names, "" for the section as a
# whole. Checks that read one of them are not made (its problem is reported already).
Failed = Mapping[str, frozenset[str]]


def _has_failed(failed: Failed, section: str, name: str) -> bool:
    fields = failed.get(section, frozenset())
    return "" in fields or name in fields


def describe_errors(exc: ValidationError, model: type[BaseModel], origins: Origins) -> list[Found]:
    """One line per problem, every unknown key included, each naming the setting as it was
    given (see snapzen.support.settings_sources.Origins)."""
    lines: list[Found] = []
    for error in exc.errors():
        location = tuple(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        if not location:
            lines.append((frozenset(), message))  # a check across settings names them itself
            continue
        if error["type"] == "extra_forbidden":
            variable = origins.env_var(location)
            written = variable or origins.written(location) or ".".join(location)
            known = _fields(model, location[:-1])
            hint = _suggest(location[-1], known, location[:-1], variable is not None)
            lines.append((frozenset(location[:1]), f"unknown setting {written}{hint}"))
        else:
            lines.append((frozenset(location[:1]), origins.describe(location, message)))
    return lines


def cross_problems(settings: Any, failed: Failed, origins: Origins) -> list[Found]:
    """Checks across sections (not made when a setting they read failed on its own)."""
    if _has_failed(failed, "pipeline", "deadline_days") or _has_failed(
        failed, "snapengage", "retention_days"
    ):
        return []
    deadline, retention = settings.pipeline.deadline_days, settings.snapengage.retention_days
    if deadline < retention:
        return []
    return [
        (
            frozenset({"pipeline", "snapengage"}),
            f"{origins.name(('pipeline', 'deadline_days'))}: {deadline} must be below "
            f"snapengage.retention_days ({retention}): a chat unsynced for that long is "
            "already deleted by SnapEngage, so the warning would come too late",
        )
    ]


ZENDESK_CREDENTIALS = (
    "SNAPZEN_ZENDESK__EMAIL with SNAPZEN_ZENDESK__API_TOKEN, or "
    "SNAPZEN_ZENDESK__OAUTH_ACCESS_TOKEN, or SNAPZEN_ZENDESK__OAUTH_CLIENT_ID with "
    "SNAPZEN_ZENDESK__OAUTH_CLIENT_SECRET"
)


def sync_requirements(settings: Any, failed: Failed, origins: Origins) -> list[Found]:
    """What a pass needs before its first network call, every missing piece at once (the
    settings that failed on their own are not looked at again)."""
    se, zd, ledger = settings.snapengage, settings.zendesk, settings.ledger
    missing: list[tuple[bool, tuple[str, str], str]] = [
        (not se.org_id, ("snapengage", "org_id"), "is required"),
        (se.api_token is None, ("snapengage", "api_token"), "is required"),
        (not se.widgets, ("snapengage", "widgets"), "is required (at least one widget id)"),
        (
            not zd.base_url and not _has_failed(failed, "zendesk", "base_url"),
            ("zendesk", "subdomain"),
            "is required (or zendesk.base_url, for a host of your own)",
        ),
        (ledger.key is None, ("ledger", "key"), "is required"),
        (
            ledger.key is not None and len(ledger.key.get_secret_value()) < 16,
            ("ledger", "key"),
            "must be at least 16 characters",
        ),
    ]
    found = [
        (frozenset(location[:1]), origins.describe(location, problem))
        for is_missing, location, problem in missing
        if is_missing and not _has_failed(failed, *location)
    ]
    credentials = (
        "email",
        "api_token",
        "oauth_access_token",
        "oauth_client_id",
        "oauth_client_secret",
    )
    if zd.auth_mode is None and not any(_has_failed(failed, "zendesk", n) for n in credentials):
        where = origins.secrets_dir
        secrets = "" if where.is_dir() else ", which does not exist"
        found.append(
            (
                frozenset({"zendesk"}),
                f"zendesk credentials are required: set {ZENDESK_CREDENTIALS} (secrets as "
                f"variables, or as files in the secrets directory {where}{secrets})",
            )
        )
    return found


def unknown_env_sections(model: type[BaseModel], environ: Mapping[str, str]) -> list[str]:
    """``SNAPZEN_PIPLINE__X``: a section pydantic silently ignores in the environment."""
    sections = list(model.model_fields)
    lines = []
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper in NOT_SETTINGS or "__" not in upper:
            continue
        section = upper.removeprefix(ENV_PREFIX).split("__", 1)[0].lower()
        if section in sections:
            continue
        close = difflib.get_close_matches(section, sections, n=1, cutoff=0.6)
        hint = f"; did you mean SNAPZEN_{close[0].upper()}__…?" if close else ""
        lines.append(f"unknown setting {name} (no section {section!r}){hint}")
    return lines
