"""What every settings section shares: extra keys refused, defaults validated, list values
given as TOML lists, JSON lists or comma-separated strings (environment variables)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_settings import NoDecode


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


CommaList = Annotated[list[str], NoDecode]


def json_text(value: Any, what: str) -> Any:
    """A setting given as text (an environment variable) holding JSON, decoded; anything else
    (TOML already parsed it) as it is. ValueError names ``what`` was expected."""
    if not isinstance(value, str):
        return value
    import json

    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not a valid JSON {what}: {exc.msg}") from None


def refuse_moved(moved: Mapping[str, str], template: str) -> Any:
    """A section's before-validator: a key that moved elsewhere fails naming where it went
    (``template`` formats ``name`` and ``target``), not as a bare "extra input"."""

    def check(cls: type, data: Any) -> Any:
        if isinstance(data, Mapping):
            for name, target in moved.items():
                if name in data:
                    raise ValueError(template.format(name=name, target=target))
        return data

    return model_validator(mode="before")(classmethod(check))  # type: ignore[arg-type]


def split_list(value: Any) -> Any:
    """Accept a JSON list (already decoded), a TOML list, or a comma-separated string."""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("["):
            return json_text(stripped, "list")
        return [item.strip() for item in stripped.split(",") if item.strip()]
    return value
