"""Where each setting came from, so a problem is named as the user gave it.

A value can come from the environment (``SNAPZEN_ZENDESK__SUBDOMAIN``), from a file in the
secrets directory (``/run/secrets/snapzen_zendesk__api_token``), or from the config file
(``zendesk.subdomain in prod.toml``); the environment wins over a secrets file, which wins
over the file, so the first of those that holds the setting is where its value came from. A
setting given nowhere is named by how to give it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_PREFIX = "SNAPZEN_"


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
