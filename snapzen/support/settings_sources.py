"""Where settings are read from, apart from the environment (pydantic-settings reads that):
the TOML file, and the secrets directory, one file per secret. Also what they are called, so
a problem can be named as the user gave it (snapzen.support.setting_origin).

Secrets (the fields in SECRET_FIELDS) come only from the environment or from files in the
secrets directory (``/run/secrets`` by default, or ``SNAPZEN_SECRETS_DIR``), named after their
environment variable in lower case (``snapzen_zendesk__api_token``). A secret found in the
TOML file is refused: config files end up in git and in backups.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic_settings import PydanticBaseSettingsSource

from snapzen.support.errors import ConfigError
from snapzen.support.setting_origin import Origins, env_name, secrets_file_name

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
