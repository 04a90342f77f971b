"""Where settings are read from, apart from the environment (pydantic-settings reads that):
the TOML file, and the secrets directory, one file per secret. Also where each setting came
from (``Origins``), so a problem is named as the user gave it: the environment
(``SNAPZEN_ZENDESK__SUBDOMAIN``), a file in the secrets directory
(``/run/secrets/snapzen_zendesk__api_token``) or the config file (``zendesk.subdomain in
prod.toml``); the environment wins over a secrets file, which wins over the file, so the first
of those that holds the setting is where its value came from. A setting given nowhere is named
by how to give it.

Secrets (the fields in SECRET_FIELDS) come only from the environment or from files in the
secrets directory (``/run/secrets`` by default, or ``SNAPZEN_SECRETS_DIR``), named after their
environment variable in lower case (``snapzen_zendesk__api_token``). A secret found in the
TOML file is refused: config files end up in git and in backups.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic_settings import PydanticBaseSettingsSource

from snapzen.support.errors import ConfigError

ENV_PREFIX = "SNAPZEN_"
CONFIG_ENV = "SNAPZEN_CONFIG"
SECRETS_DIR_ENV = "SNAPZEN_SECRETS_DIR"
DEFAULT_SECRETS_DIR = Path("/run/secrets")

SECRET_FIELDS = {
    ("snapengage", "api_token"),
    ("zendesk", "api_token"),
    ("zendesk", "oauth_access_token"),
    ("zendesk", "oauth_client_secret"),
    ("ledger", "key"),
}


def env_name(location: tuple[str, ...] | list[str]) -> str:
    return ENV_PREFIX + "__".join(part.upper() for part in location)


def secrets_file_name(section: str, name: str) -> str:
    return f"{ENV_PREFIX.lower()}{section}__{name}"


@dataclass(frozen=True)
class Origins:
    """What load_settings read: the config file as the user named it (None: no file) and its
    values, the environment, and the secrets directory with the secret fields."""

    file: str | None
    file_values: Mapping[str, Any]
    environ: Mapping[str, str]
    secrets_dir: Path
    secret_fields: frozenset[tuple[str, str]] = frozenset()

    def env_var(self, location: tuple[str, ...]) -> str | None:
        """The variable that set ``location`` (or a list or table holding it), if any."""
        upper = {name.upper(): name for name in self.environ}
        for size in range(len(location), 1, -1):
            name = env_name(location[:size])
            if name in upper:
                return upper[name]
        return None

    def secrets_file(self, location: tuple[str, ...]) -> Path | None:
        """The secrets file that set ``location``, if any."""
        if len(location) != 2 or (location[0], location[1]) not in self.secret_fields:
            return None
        path = self.secrets_dir / secrets_file_name(location[0], location[1])
        return path if path.is_file() else None

    def in_file(self, location: tuple[str, ...]) -> bool:
        node: Any = self.file_values
        for part in location:
            if not isinstance(node, Mapping) or part not in node:
                return False
            node = node[part]
        return True

    def written(self, location: tuple[str, ...]) -> str | None:
        """How the user gave ``location``: the variable, the secrets file or the file key;
        None when it was given nowhere (a default, or missing)."""
        variable = self.env_var(location)
        if variable is not None:
            return variable
        secret = self.secrets_file(location)
        if secret is not None:
            return f"secrets file {secret}"
        if self.file is not None and self.in_file(location):
            return f"{'.'.join(location)} in {self.file}"
        return None

    def how_to_set(self, location: tuple[str, ...]) -> str:
        """Where a setting given nowhere can be given: the variable, the secrets file it was
        looked for (and a missing secrets directory, named), or the file key."""
        ways = [env_name(location)]
        if len(location) == 2 and (location[0], location[1]) in self.secret_fields:
            path = self.secrets_dir / secrets_file_name(location[0], location[1])
            missing = "" if self.secrets_dir.is_dir() else f" ({self.secrets_dir} does not exist)"
            ways.append(f"write the secrets file {path}{missing}")
        else:
            ways.append(f"{'.'.join(location)} in {self.file or 'the config file'}")
        return "set " + " or ".join(ways)

    def name(self, location: tuple[str, ...]) -> str:
        """``setting a.b (where)`` or ``setting a.b in FILE``: the dotted name, with where it
        was given (just ``setting a.b`` when it was given nowhere)."""
        dotted = ".".join(location)
        written = self.written(location)
        if written is None:
            return f"setting {dotted}"
        if written == f"{dotted} in {self.file}":
            return f"setting {written}"
        return f"setting {dotted} ({written})"

    def describe(self, location: tuple[str, ...], problem: str) -> str:
        """One line: the setting as given, and its problem; for a setting given nowhere
        (``problem`` then says what it needs: "is required …"), how to give it."""
        if self.written(location) is None:
            return f"setting {'.'.join(location)} {problem}; {self.how_to_set(location)}"
        return f"{self.name(location)}: {problem}"


def secrets_dir() -> Path:
    return Path(os.environ.get(SECRETS_DIR_ENV) or DEFAULT_SECRETS_DIR)


class SecretsDirSource(PydanticBaseSettingsSource):
    """Reads ``<secrets dir>/snapzen_<section>__<field>`` files for the secret fields only.

    Written by hand because pydantic-settings' own secrets source does not map nested
    ``__`` names onto sub-models; this covers exactly the fields listed in SECRET_FIELDS.
    """

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        directory = secrets_dir()
        found: dict[str, Any] = {}
        if not directory.is_dir():
            return found
        for section, name in SECRET_FIELDS:
            path = directory / secrets_file_name(section, name)
            if path.is_file():
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


def origins_of(config: str | None, file_values: Mapping[str, Any]) -> Origins:
    """Where each setting came from: ``config`` as the user named it (None: no file)."""
    return Origins(
        file=config,
        file_values=file_values,
        environ=dict(os.environ),
        secrets_dir=secrets_dir(),
        secret_fields=frozenset(SECRET_FIELDS),
    )
