"""The base of every config section (frozen; unknown keys are errors) and the two steps every
TOML config file goes through — read, then validate — with one-line errors naming the field.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from lastwatt.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


class Section(BaseModel):
    """Base of every config section: frozen; an unknown key is an error, not a silent default."""
    # allow_inf_nan=False: inf/nan (TOML has both) is never a meaningful size, share or power
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def read_toml(path: Path, what: str = "config") -> dict[str, Any]:
    """The TOML file at ``path`` as a dict; a missing or bad file is a one-line ConfigError."""
    if not path.is_file():
        raise ConfigError(str(path), f"{what} file not found", "give the path of a TOML file")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(str(path), f"not valid TOML: {err}") from None
    except UnicodeDecodeError:
        raise ConfigError(str(path), "not UTF-8 text", "save the config as UTF-8 TOML") from None


def validate(model: type[M], data: dict[str, Any], source: str) -> M:
    """``model.model_validate(data)``; the first error as a :class:`ConfigError` line."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "(top level)"
        if first["type"] == "extra_forbidden":
            raise ConfigError(f"{source}: {loc}", "unknown key",
                              "remove it or fix its spelling") from None
        msg = first["msg"].removeprefix("Value error, ")
        bad = first.get("input")
        shown = "" if isinstance(bad, dict | list) else f" (got {bad!r})"
        raise ConfigError(f"{source}: {loc}", f"{msg}{shown}") from None
