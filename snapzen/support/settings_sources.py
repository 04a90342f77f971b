"""Where settings are read from, apart from the environment (pydantic-settings reads that):
the TOML file, and the secrets directory, one file per secret. Also where each setting came
from (``Origins``), so a problem is named as the user gave it: the environment
(``SNAPZEN_ZENDESK__SUBDOMAIN``), a file in the secrets directory
(``/run/secrets/snapzen_zendesk__api_token``) or the config file (``zendesk.subdomain in
prod.toml``); the environment wins over a secrets file, which wins over the file, so the first
of those that holds the setting is where its value came from. A setting given nowhere is named
by how to give it. ``describe_errors`` turns pydantic's ValidationError into one line per
problem that way: every unknown key at once, with a "did you mean" when one is close.

Secrets (the fields in SECRET_FIELDS) come only from the environment or from files in the
secrets directory (``/run/secrets`` by default, or ``SNAPZEN_SECRETS_DIR``), named after their
environment variable in lower case (``snapzen_zendesk__api_token``). A secret found in the
TOML file is refused: config files end up in git and in backups.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel
from pydantic_settings import PydanticBaseSettingsSource

from snapzen.support.errors import ConfigError
from snapzen.support.setting_checks import FieldsProblem

ENV_PREFIX = "SNAPZEN_"
CONFIG_ENV = "SNAPZEN_CONFIG"
SECRETS_DIR_ENV = "SNAPZEN_SECRETS_DIR"

SECRET_FIELDS = {
    ("snapengage", "api_token"),
    ("zendesk", "api_token"),
    ("zendesk", "oauth_access_token"),
    ("zendesk", "oauth_client_secret"),
    ("ledger", "key"),
}

# A problem found in the settings: the sections it is about, and its line, naming each
# setting as it was given.
Found = tuple[frozenset[str], str]
# Settings that failed their own checks, by section: field names, "" for the section as a
# whole. Checks that read one of them are not made (its problem is reported already).
Failed = Mapping[str, frozenset[str]]


def has_failed(failed: Failed, section: str, name: str) -> bool:
    return bool({"", name} & failed.get(section, frozenset()))


def env_name(location: tuple[str, ...] | list[str]) -> str:
    return ENV_PREFIX + "__".join(part.upper() for part in location)


def secrets_dir() -> Path:
    return Path(os.environ.get(SECRETS_DIR_ENV) or "/run/secrets")


def _secret_path(location: tuple[str, ...]) -> Path | None:
    """Where the secrets file of ``location`` would be; None for a setting that is no secret."""
    return secrets_dir() / env_name(location).lower() if location in SECRET_FIELDS else None


@dataclass(frozen=True)
class Origins:
    """What load_settings read: the config file as the user named it (None: no file) and its
    values, and the environment (the secrets directory is read where it is named)."""

    file: str | None = None
    file_values: Mapping[str, Any] = field(default_factory=dict)
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    def env_var(self, location: tuple[str, ...]) -> str | None:
        """The variable that set ``location`` (or a list or table holding it), if any."""
        upper = {name.upper(): name for name in self.environ}
        sizes = range(len(location), 0, -1)
        return next((upper[n] for s in sizes if (n := env_name(location[:s])) in upper), None)

    def in_file(self, location: tuple[str, ...]) -> bool:
        node: Any = self.file_values
        with suppress(LookupError, TypeError, ValueError):  # not there (or not a table there)
            for part in location:  # an item of a list ([[clients]]) by its position
                node = node[int(part)] if isinstance(node, list) else node[part]
            return self.file is not None
        return False

    def written(self, location: tuple[str, ...]) -> str | None:
        """How the user gave ``location``: the variable, the secrets file or the file key;
        None when it was given nowhere (a default, or missing)."""
        secret = _secret_path(location)
        if variable := self.env_var(location):
            return variable
        if secret is not None and secret.is_file():
            return f"secrets file {secret}"
        return f"{'.'.join(location)} in {self.file}" if self.in_file(location) else None

    def how_to_set(self, location: tuple[str, ...]) -> str:
        """Where a setting given nowhere can be given: the variable, the secrets file it was
        looked for (and a missing secrets directory, named), or the file key."""
        secret = _secret_path(location)
        if secret is None:  # inside a list ([[clients]]): its variable holds the whole list
            whole = location[: next((i for i, p in enumerate(location) if p.isdigit()), None)]
            return f"set {env_name(whole)} or {'.'.join(location)} in " + (
                self.file or "the config file"
            )
        missing = "" if secret.parent.is_dir() else f" ({secret.parent} does not exist)"
        return f"set {env_name(location)} or write the secrets file {secret}{missing}"

    def name(self, location: tuple[str, ...]) -> str:
        """``setting a.b (where)`` or ``setting a.b in FILE``: the dotted name, with where it
        was given (just ``setting a.b`` when it was given nowhere)."""
        dotted, written = ".".join(location), self.written(location)
        if written is None or written == f"{dotted} in {self.file}":
            return f"setting {written or dotted}"
        return f"setting {dotted} ({written})"

    def describe(self, location: tuple[str, ...], problem: str) -> str:
        """One line: the setting as given, and its problem; for a setting given nowhere
        (``problem`` then says what it needs: "is required …"), how to give it."""
        if self.written(location) is None:
            return f"setting {'.'.join(location)} {problem}; {self.how_to_set(location)}"
        return f"{self.name(location)}: {problem}"

    def describe_fields(self, section: tuple[str, ...], names: Sequence[str], problem: str) -> str:
        """One line for a check across fields of ``section``: each field as it was given (a
        default: how to give it), then the problem."""
        given = [
            self.name(where).removeprefix("setting ")
            if self.written(where) is not None
            else f"{'.'.join(where)} (the default; {self.how_to_set(where)})"
            for where in ((*section, name) for name in names)
        ]
        return f"setting{'s' if len(given) > 1 else ''} {' and '.join(given)}: {problem}"


class SecretsDirSource(PydanticBaseSettingsSource):
    """Reads ``<secrets dir>/snapzen_<section>__<field>`` files for the secret fields only.

    Written by hand because pydantic-settings' own secrets source does not map nested
    ``__`` names onto sub-models; this covers exactly the fields listed in SECRET_FIELDS.
    """

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for section, name in SECRET_FIELDS:
            path = _secret_path((section, name))
            if path is not None and path.is_file():
                # utf-8-sig and strip: editors add a BOM and a final newline to such files.
                text = path.read_text(encoding="utf-8-sig").strip().lstrip("\ufeff")
                found.setdefault(section, {})[name] = text
        return found


def read_toml(path: Path, given: str) -> dict[str, Any]:
    """The config file; ConfigError naming it, and how it was named (``--config`` or
    SNAPZEN_CONFIG), when it is missing, unreadable or not TOML."""
    where = f"config file {path} (from {given})"
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{where} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"{where} is a directory, not a TOML file") from None
    except OSError as exc:
        raise ConfigError(f"{where} cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{where} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where} is not valid TOML: {exc}") from None


def secrets_in_file(data: dict[str, Any], path: str) -> list[str]:
    """Secrets found in the config file, each refused (and dropped, so that the rest of the
    file is still checked)."""
    found = []
    for section, name in sorted(SECRET_FIELDS):
        if isinstance(data.get(section), Mapping) and name in data[section]:
            data[section] = {k: v for k, v in data[section].items() if k != name}
            found.append(
                f"{section}.{name} must not be in the config file {path}; set "
                f"{env_name((section, name))} or put it in the secrets directory"
            )
    return found


def _known(model: Any, location: tuple[str, ...]) -> list[str]:
    """The field names of the section at ``location`` (empty when it is none)."""
    for part in location:
        if part.isdigit() and get_origin(model) is list:
            model = get_args(model)[0]  # an item of a list ([[clients]], recipients)
            continue
        model = getattr(model, "model_fields", {}).get(part)
        model = getattr(model, "annotation", None)
    return list(getattr(model, "model_fields", []))


def describe_errors(errors: Sequence[Any], model: type[BaseModel], origins: Origins) -> list[Found]:
    """One line per problem (pydantic's errors), every unknown key included, each naming the
    setting as it was given (see Origins)."""
    lines: list[Found] = []
    for error in errors:
        location = tuple(str(part) for part in error["loc"])
        message = str(error.get("msg", "")).removeprefix("Value error, ")
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, FieldsProblem):
            line = origins.describe_fields(location, cause.fields, message)
            lines.append((frozenset(location[:1]), line))
        elif error["type"] == "extra_forbidden":
            variable = origins.env_var(location)
            written = variable or origins.written(location) or ".".join(location)
            # A variable holding the whole list or table (SNAPZEN_CLIENTS): the key inside.
            inside = variable is not None and variable.upper() != env_name(location)
            if inside:
                written = f"{'.'.join(location)} ({variable})"
            known = _known(model, location[:-1])
            close = difflib.get_close_matches(location[-1].lower(), known, n=1, cutoff=0.6)
            meant = (*location[:-1], *close[:1])
            by_variable = variable is not None and not inside
            hint = f"; did you mean {env_name(meant) if by_variable else '.'.join(meant)}?"
            line = f"unknown setting {written}{hint if close else ''}"
            lines.append((frozenset(location[:1]), line))
        else:
            lines.append((frozenset(location[:1]), origins.describe(location, message)))
    return lines


def unknown_env_sections(model: type[BaseModel], environ: Mapping[str, str]) -> list[str]:
    """``SNAPZEN_PIPLINE__X``: a section pydantic silently ignores in the environment."""
    sections = list(model.model_fields)
    lines = []
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or "__" not in upper:
            continue  # not a setting of a section (SNAPZEN_CONFIG, SNAPZEN_SECRETS_DIR)
        section = upper.removeprefix(ENV_PREFIX).split("__", 1)[0].lower()
        if section not in sections:
            close = difflib.get_close_matches(section, sections, n=1, cutoff=0.6)
            hint = f"; did you mean SNAPZEN_{close[0].upper()}__…?" if close else ""
            lines.append(f"unknown setting {name} (no section {section!r}){hint}")
    return lines
