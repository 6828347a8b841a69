"""Options of a config dataclass checked against their declared types, before anything runs.

Options arrive as parsed text (`--set lr=true` parses as a bool, `--set capacity=1.5` as a
float), from YAML suites or from Python. `check_types` makes a config's fields agree with their
annotations (`float`, `int`, `bool`, `str`, each optionally `None`) or raises `ConfigError`, so a
wrong type fails with one line at the start instead of a crash deep in training.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from plasticity.errors import ConfigError, brief

# How a type is named in an error message.
TYPE_WORDS = {float: "a number", int: "a whole number", bool: "true or false", str: "text", type(None): "null"}


def check_types(config: Any) -> None:
    """Check every field of the dataclass instance `config` against its annotation, in place.

    A whole number for a float field becomes a float (tensors built from it get a float dtype),
    a float with no fractional part for an int field becomes an int; anything else of the wrong
    type (text for a number, `true` for a rate, 1.5 for a count) raises `ConfigError`. A bool is
    never taken for a number, though Python's bool is an int."""
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        value, hint = getattr(config, field.name), hints[field.name]
        allowed = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
        if any(type(value) is kind for kind in allowed):
            continue
        if float in allowed and type(value) is int:
            setattr(config, field.name, float(value))
        elif int in allowed and type(value) is float and value.is_integer():
            setattr(config, field.name, int(value))
        else:
            expected = " or ".join(TYPE_WORDS.get(kind, getattr(kind, "__name__", str(kind))) for kind in allowed)
            raise ConfigError(f"option {field.name} must be {expected}; got {brief(value)}")
