"""Named TOML tables (``[profile.<name>]``, ``[endpoint.<name>]``), each
validated as a pydantic model, with errors that name the file, the table and
the field."""

from __future__ import annotations

import tomllib
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from voxfleet.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def named_tables(
    text: str, source: str, table: str, model: type[M], required: bool = True
) -> dict[str, M]:
    """Each ``[table.<name>]`` of ``text`` as ``model`` (its ``name`` field set)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source}: invalid TOML: {e}") from e
    unknown = sorted(set(data) - {table})
    if unknown:
        raise ConfigError(f"{source}: unknown table {unknown[0]!r}; expected [{table}.<name>]")
    raw = data.get(table, {})
    if not isinstance(raw, dict) or (required and not raw):
        raise ConfigError(f"{source}: expected one or more [{table}.<name>] tables")
    found: dict[str, M] = {}
    for name, body in raw.items():
        if not isinstance(body, dict):
            raise ConfigError(f"{source}: {table}.{name} must be a table")
        try:
            found[name] = model.model_validate({"name": name, **body})
        except ValidationError as e:
            first = e.errors()[0]
            where = "".join(f".{part}" for part in first["loc"])
            message = first["msg"].removeprefix("Value error, ")
            raise ConfigError(f"{source}: {table}.{name}{where}: {message}") from e
    return found
