"""Plain YAML data ↔ frozen dataclasses, with errors that name the file and the key path.

:func:`build_dataclass` converts a parsed mapping into a (nested) frozen dataclass, checking
every value against the field's type hint; :func:`to_plain` turns a dataclass back into lists,
dicts and scalars that ``yaml.safe_dump`` can write. The supported hints are those the
configuration uses: ``bool``, ``int``, ``float``, ``str``, ``X | None``, ``tuple[X, ...]``,
``tuple[X, Y]``, ``Mapping[str, Any]`` (frozen recursively) and nested dataclasses.

Errors read ``"<file>: <key path>: <problem>"``, e.g.
``"run.yaml: train.batch_sise: unknown key; did you mean batch_size?"``.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from medrestore.core.errors import ConfigError

D = TypeVar("D")


def freeze(value: Any) -> Any:
    """Read-only copy: mappings → ``MappingProxyType``, lists → tuples, recursively."""
    if isinstance(value, Mapping):
        return types.MappingProxyType({str(k): freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value


def to_plain(value: Any) -> Any:
    """Dataclasses, mappings and tuples → dicts and lists (the inverse of :func:`build_dataclass`)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: to_plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    return value


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _convert_scalar(hint: type, value: Any, where: str) -> Any:
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {_describe(value)}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected an integer, got {_describe(value)}")
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)  # YAML 1.1 reads "1e-3" as a string
            except ValueError:
                pass
        raise ConfigError(f"{where}: expected a number, got {_describe(value)}")
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a string, got {_describe(value)}")
    raise TypeError(f"unsupported configuration type {hint!r} at {where}")


def convert(hint: Any, value: Any, where: str) -> Any:
    """Check/convert one parsed YAML ``value`` against the type ``hint``; ``where`` names it in errors."""
    origin = typing.get_origin(hint)
    arguments = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in arguments:
            return None
        options = [a for a in arguments if a is not type(None)]
        if len(options) != 1:
            raise TypeError(f"unsupported union {hint!r} at {where}")
        return convert(options[0], value, where)
    if hint is Any:
        return freeze(value)
    if dataclasses.is_dataclass(hint):
        return build_dataclass(hint, value, where)
    if origin is tuple:
        return _convert_tuple(arguments, value, where)
    if origin in (Mapping, collections.abc.Mapping, dict):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {_describe(value)}")
        return freeze(value)
    if value is None:
        raise ConfigError(f"{where}: a value is required")
    return _convert_scalar(hint, value, where)


def _convert_tuple(arguments: tuple[Any, ...], value: Any, where: str) -> tuple[Any, ...]:
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{where}: expected a list, got {_describe(value)}")
    if len(arguments) == 2 and arguments[1] is Ellipsis:
        return tuple(convert(arguments[0], item, f"{where}[{i}]") for i, item in enumerate(value))
    if len(value) != len(arguments):
        raise ConfigError(f"{where}: expected a list of {len(arguments)} items, got {len(value)}")
    return tuple(convert(a, item, f"{where}[{i}]") for i, (a, item) in enumerate(zip(arguments, value, strict=True)))


def build_dataclass(cls: type[D], value: Any, where: str) -> D:
    """Build dataclass ``cls`` from a mapping, checking keys and types.

    Unknown keys are refused with the closest known key suggested; missing keys take the field
    default (or are reported when there is none). A :class:`ConfigError` raised by the class's
    own validation (``"field: problem"``) is prefixed with ``where``.
    """
    prefix = f"{where}." if where else ""
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where or 'the configuration'}: expected a mapping, got {_describe(value)}")
    fields = {field.name: field for field in dataclasses.fields(cls) if field.init}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    for key in value:
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else f"; known keys: {', '.join(fields)}"
            raise ConfigError(f"{prefix}{key}: unknown key{hint}")
    arguments = {}
    for name, field in fields.items():
        if name in value:
            arguments[name] = convert(hints[name], value[name], f"{prefix}{name}")
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{prefix}{name}: missing required key")
    try:
        return cls(**arguments)
    except ConfigError as error:
        raise ConfigError(f"{prefix}{error}") from None
