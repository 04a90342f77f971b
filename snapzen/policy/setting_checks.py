"""Checks of settings made by the policy code that uses them, for load_settings (``checks``).

The settings live in the support layer, below the policy, so they cannot ask the redaction
rules whether a name or pattern is good; the CLI hands these checks to load_settings, which
runs them with pydantic's validation: a typo fails at load (exit 2, one line naming the
setting and where it was written), before the writer lock and any network call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from snapzen.policy.redaction import Redactor


def _rules(names: Any) -> None:
    Redactor.from_config(names, None)  # ValueError names the unknown rule


def _patterns(patterns: Any) -> None:
    Redactor.from_config((), patterns)  # ValueError names the bad pattern


CHECKS: Mapping[str, Callable[[Any], object]] = MappingProxyType(
    {"redaction.enabled": _rules, "redaction.extra_patterns": _patterns}
)
