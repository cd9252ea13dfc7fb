"""A typed registry: a name → a constructor, its typed config, its task/modality, and an optional weights spec.

Entries are added explicitly by the catalogue module that owns them (no registration by
import side effects). The same registry class serves models and classical methods.

Options arrive as plain mappings (from YAML, JSON or the command line) and are turned into
the entry's frozen config dataclass by :func:`config_from_options`, which refuses unknown
keys and wrong types with a :class:`ConfigError` that names the key.

Example:
    >>> @dataclasses.dataclass(frozen=True)
    ... class BoxConfig:
    ...     size: int = 3
    >>> config_from_options(BoxConfig, {"size": 5}, "box")
    BoxConfig(size=5)
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

from medrestore.core.errors import ConfigError, MedrestoreError

T = TypeVar("T")
ConfigT = TypeVar("ConfigT")


@dataclasses.dataclass(frozen=True)
class WeightsSpec:
    """Where a registered entry's trained weights live and what they must hash to.

    Attributes:
        file: file name inside the zoo folder (``<name>.pt``).
        card: model-card file name inside the zoo folder (``<name>.json``).
        sha256: expected SHA-256 of ``file``; loading refuses a mismatch.
    """

    file: str
    card: str
    sha256: str


@dataclasses.dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered item.

    Attributes:
        name: registry key, e.g. ``"unet"``.
        constructor: builds the item. Called as ``constructor(config)`` with an instance of
            ``config_type`` when that is set, else as ``constructor()``.
        task: the workflow it serves (``"denoise"``, ``"recon"``...) or ``"any"``.
        modality: the modality it is meant for (``"mri"``, ``"oct"``...) or ``"any"``.
        description: one line shown by ``medrestore models``.
        weights: trained weights shipped for this entry, if any.
        config_type: frozen dataclass holding the entry's options (``None``: no options).
    """

    name: str
    constructor: Callable[..., T]
    task: str
    modality: str
    description: str
    weights: WeightsSpec | None = None
    config_type: type | None = None

    def make_config(self, options: Mapping[str, object] | None = None) -> object | None:
        """The validated config for ``options`` (defaults for missing keys); ``None`` without a config type."""
        if self.config_type is None:
            if options:
                raise ConfigError(f"{self.name} takes no options; got {', '.join(sorted(options))}")
            return None
        return config_from_options(self.config_type, options, self.name)

    def create(self, options: Mapping[str, object] | None = None) -> T:
        """Build the item from validated ``options``."""
        config = self.make_config(options)
        return self.constructor() if config is None else self.constructor(config)

    def matches(self, task: str | None = None, modality: str | None = None) -> bool:
        """Whether this entry serves ``task`` and ``modality`` (``None`` or ``"any"`` on either side matches)."""
        task_ok = task is None or self.task in (task, "any") or task == "any"
        modality_ok = modality is None or self.modality in (modality, "any") or modality == "any"
        return task_ok and modality_ok


class Registry(Generic[T]):
    """Name → :class:`Entry`. Iteration is in registration order."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, entry: Entry[T]) -> Entry[T]:
        if entry.name in self._entries:
            raise MedrestoreError(f"{self.kind} {entry.name!r} is registered twice")
        if entry.config_type is not None and not dataclasses.is_dataclass(entry.config_type):
            raise MedrestoreError(f"{self.kind} {entry.name!r}: config_type must be a dataclass")
        self._entries[entry.name] = entry
        return entry

    def get(self, name: str) -> Entry[T]:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "none"
            raise MedrestoreError(f"unknown {self.kind} {name!r}; available: {known}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def names(self, task: str | None = None, modality: str | None = None) -> list[str]:
        """Registered names serving ``task``/``modality`` (entries marked ``"any"`` always match)."""
        return [entry.name for entry in self if entry.matches(task, modality)]


# -- options → typed config -------------------------------------------------------------------


def config_fields(config_type: type) -> dict[str, Any]:
    """Field name → resolved type annotation of a config dataclass (string annotations resolved)."""
    hints = typing.get_type_hints(config_type)
    return {field.name: hints[field.name] for field in dataclasses.fields(config_type) if field.init}


def config_from_options(config_type: type[ConfigT], options: Mapping[str, object] | None, owner: str) -> ConfigT:
    """Build ``config_type`` from a mapping of options, checking keys and types.

    Missing keys take the dataclass defaults. Lists are accepted where tuples are declared
    (YAML/JSON have no tuples); ints are accepted where floats are declared. The dataclass's
    own ``__post_init__`` then checks value ranges.

    Raises:
        ConfigError: an unknown key (the message lists the valid ones), a value of the wrong
            type, or a value the config itself rejects.
    """
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        raise ConfigError(f"options for {owner} must be a mapping, got {type(options).__name__}")
    fields = config_fields(config_type)
    unknown = sorted(str(key) for key in options if key not in fields)
    if unknown:
        raise ConfigError(
            f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} for {owner}; "
            f"valid options: {', '.join(fields)}"
        )
    values = {key: _coerce(value, fields[key], f"{owner} option {key}") for key, value in options.items()}
    try:
        return config_type(**values)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"invalid options for {owner}: {error}") from error


def config_to_options(config: object) -> dict[str, object]:
    """The plain option mapping of a config dataclass (inverse of :func:`config_from_options`)."""
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise MedrestoreError(f"expected a config dataclass instance, got {type(config).__name__}")
    return {field.name: getattr(config, field.name) for field in dataclasses.fields(config) if field.init}


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def _coerce(value: object, annotation: Any, where: str) -> object:
    """Check ``value`` against ``annotation`` and return it in the declared form (tuple, float)."""
    origin = typing.get_origin(annotation)
    arguments = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin is typing.Literal:
        for allowed in arguments:
            if type(value) is type(allowed) and value == allowed:
                return value
        raise ConfigError(f"{where} must be one of {', '.join(map(repr, arguments))}, got {value!r}")
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(value, arguments, where)
    if origin is tuple:
        return _coerce_tuple(value, arguments, where)
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} must be a mapping, got {type(value).__name__} {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(annotation) and isinstance(value, Mapping):
        return config_from_options(annotation, value, where)
    return _coerce_scalar(value, annotation, where)


def _coerce_union(value: object, arguments: tuple[Any, ...], where: str) -> object:
    if value is None and type(None) in arguments:
        return None
    for argument in arguments:
        if argument is type(None):
            continue
        try:
            return _coerce(value, argument, where)
        except ConfigError:
            continue
    names = " or ".join(_type_name(argument) for argument in arguments)
    raise ConfigError(f"{where} must be {names}, got {type(value).__name__} {value!r}")


def _coerce_tuple(value: object, arguments: tuple[Any, ...], where: str) -> tuple[object, ...]:
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{where} must be a list, got {type(value).__name__} {value!r}")
    if len(arguments) == 2 and arguments[1] is Ellipsis:
        return tuple(_coerce(item, arguments[0], f"{where}[{index}]") for index, item in enumerate(value))
    if arguments and len(value) != len(arguments):
        raise ConfigError(f"{where} must have {len(arguments)} items, got {len(value)}")
    if not arguments:
        return tuple(value)
    return tuple(_coerce(item, kind, f"{where}[{index}]") for index, (item, kind) in enumerate(zip(value, arguments)))


def _coerce_scalar(value: object, annotation: Any, where: str) -> object:
    if annotation is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif annotation is dict:
        if isinstance(value, Mapping):
            return dict(value)
    elif isinstance(annotation, type):
        if isinstance(value, annotation):
            return value
    else:
        return value
    raise ConfigError(f"{where} must be {_type_name(annotation)}, got {type(value).__name__} {value!r}")
