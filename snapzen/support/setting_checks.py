"""What every settings section shares, and the checks of single values, as annotated types.

A section refuses extra keys and validates its defaults; a list is given as a TOML list, a JSON
list or a comma-separated string (an environment variable). Each check raises ValueError with
the problem only: the loader (snapzen.support.settings) names the setting as it was given.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, SecretStr
from pydantic import model_validator as _model_validator
from pydantic_settings import NoDecode


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class FieldsProblem(ValueError):
    """A check across fields of one section failed: raised by the section's model validator
    with the fields it read, so that the loader names each of them as it was given (a section
    as a whole was given by no one: naming it would send the user to a variable, say
    SNAPZEN_SNAPENGAGE, that nobody sets)."""

    def __init__(self, fields: tuple[str, ...], problem: str) -> None:
        super().__init__(problem)
        self.fields = fields


def json_text(value: Any, what: str) -> Any:
    """A setting given as text (an environment variable) holding JSON, decoded; anything else
    (TOML already parsed it) as it is. ValueError names ``what`` was expected."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not a valid JSON {what}: {exc.msg}") from None


def split_list(value: Any) -> Any:
    """Accept a JSON list (already decoded), a TOML list, or a comma-separated string."""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("["):
            return json_text(stripped, "list")
        return [item.strip() for item in stripped.split(",") if item.strip()]
    return value


def refuse_moved(moved: Mapping[str, str], template: str) -> Any:
    """A section's before-validator: a key that moved elsewhere fails naming where it went
    (``template`` formats ``name`` and ``target``), not as a bare "extra input"; the key is
    named as it was given (a FieldsProblem), not by its section."""

    def check(cls: type, data: Any) -> Any:
        for name, target in moved.items() if isinstance(data, Mapping) else ():
            if name in data:
                raise FieldsProblem((name,), template.format(name=name, target=target))
        return data

    return _model_validator(mode="before")(classmethod(check))  # type: ignore[arg-type]


def jsonish(what: str) -> BeforeValidator:
    """A value an environment variable gives as JSON text (``what`` names the shape)."""
    return BeforeValidator(lambda value: json_text(value, what))


CommaList = Annotated[list[str], NoDecode, BeforeValidator(split_list)]
LowerList = Annotated[CommaList, AfterValidator(lambda values: [v.strip().lower() for v in values])]

# SnapEngage widget ids are UUIDs; ids are also used in URLs and file names, so any other
# shape is limited to letters, digits, '-' and '_'.
_WIDGET = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _widgets(values: list[str]) -> list[str]:
    for index, value in enumerate(values):
        if not _WIDGET.match(value):
            raise ValueError(
                f"{value!r} is not a widget id (a UUID such as "
                "'1a2b3c4d-0000-4000-8000-123456789abc', from the Get the Code tab)"
            )
        if value in values[:index]:
            raise ValueError(f"{value!r} is listed twice")
    return values


WidgetIds = Annotated[CommaList, AfterValidator(_widgets)]


def is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _base_url(url: str) -> str:
    """https only, except loopback hosts (the sandbox, tests)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http(s) URL")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ValueError("must use https (plain http is allowed only for loopback hosts)")
    return url.rstrip("/")


BaseUrl = Annotated[str, AfterValidator(_base_url)]
# Empty: not set (zendesk.base_url, derived from the subdomain then).
OptionalBaseUrl = Annotated[str, AfterValidator(lambda url: _base_url(url) if url else url)]


def _sendable(value: SecretStr | None) -> SecretStr | None:
    """A secret sent in an HTTP header (requests encodes headers as Latin-1; a BOM or a newline
    would fail there, or split the header): refused at load, the value never shown, rather
    than as a traceback from the HTTP library on the first request."""
    text = value.get_secret_value() if value is not None else ""
    if "\ufeff" in text:
        raise ValueError("starts with or contains a byte-order mark (saved as 'UTF-8 with BOM'?)")
    if any(ch in text for ch in "\r\n"):
        raise ValueError("contains a line break")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise ValueError("contains a control character")
    if any(ord(ch) > 255 for ch in text):
        raise ValueError("contains characters that cannot be sent in an HTTP header (not Latin-1)")
    return value


HeaderSecret = Annotated[SecretStr | None, AfterValidator(_sendable)]

_SUBDOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def _subdomain(value: str) -> str:
    """``acme``, not ``acme.zendesk.com`` (which became ``acme.zendesk.com.zendesk.com``)."""
    value = value.strip()
    lowered = value.lower().removeprefix("https://").removeprefix("http://").rstrip("/")
    bare = lowered.removesuffix(".zendesk.com")
    if bare != lowered and _SUBDOMAIN.match(bare):
        raise ValueError(f"must be just the subdomain: write {bare!r}, not {value!r}")
    if "." in lowered or "/" in lowered:
        raise ValueError(
            f"{value!r} is not a Zendesk subdomain (the 'acme' of acme.zendesk.com); for a "
            "host of your own set zendesk.base_url = 'https://…' instead"
        )
    if value and not _SUBDOMAIN.match(lowered):
        raise ValueError(f"{value!r} is not a subdomain: letters, digits and '-' only")
    return lowered


Subdomain = Annotated[str, AfterValidator(_subdomain)]


def _email(value: str) -> str:
    if not value.strip():
        return ""
    from email_validator import EmailNotValidError, validate_email  # lazy: start-up time

    try:
        # The shape only: no DNS lookup at load, and reserved domains (example.com, .test)
        # are fine for the sandbox and for tests.
        return validate_email(
            value.strip(),
            check_deliverability=False,
            globally_deliverable=False,
            test_environment=True,
        ).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"is not an email address: {exc}") from None


Email = Annotated[str, AfterValidator(_email)]


def parse_interval(text: str) -> timedelta:
    """'90s', '15m', '2h', '1d' → timedelta (at most 366 days: timedelta and the scheduler
    overflow long before 99999999d)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = text.strip().lower()
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit() or int(text[:-1]) <= 0:
        raise ValueError(f"{text!r} is not an interval like 30s, 15m, 2h or 1d")
    seconds = int(text[:-1]) * units[text[-1]]
    if seconds > 366 * 86400:
        raise ValueError(f"{text!r} is longer than the longest interval, 366d")
    return timedelta(seconds=seconds)


Interval = Annotated[str, AfterValidator(lambda text: parse_interval(text) and text)]

# The redaction rules snapzen ships, by name (snapzen.policy.redaction.BUILTIN_RULES holds one
# rule each): the one list that `redaction.enabled` and the Redactor check names against.
REDACTION_RULES = ("card", "iban", "email", "uk_nino", "us_ssn")
_RULE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


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
        if _RULE_NAME.fullmatch(name) is None:
            raise ValueError(
                f"invalid redaction rule name {name!r}: "
                "use 1-64 characters from A-Z, a-z, 0-9, '_', '.', '-'"
            )
    return compiled


# `redaction.enabled` and `redaction.extra_patterns`.
RuleNames = Annotated[CommaList, AfterValidator(check_redaction_rules)]
Patterns = Annotated[
    dict[str, str], AfterValidator(lambda found: compile_patterns(found) and found)
]
