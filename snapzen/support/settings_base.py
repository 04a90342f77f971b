"""What every settings section shares: extra keys refused, defaults validated, list values
given as TOML lists, JSON lists or comma-separated strings (environment variables)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict
from pydantic_settings import NoDecode


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


CommaList = Annotated[list[str], NoDecode]


def split_list(value: Any) -> Any:
    """Accept a JSON list (already decoded), a TOML list, or a comma-separated string."""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("["):
            import json

            try:
                return json.loads(stripped)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not a valid JSON list: {exc.msg}") from None
        return [item.strip() for item in stripped.split(",") if item.strip()]
    return value
