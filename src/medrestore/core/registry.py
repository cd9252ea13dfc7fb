"""A typed registry: a name → a constructor, its task/modality, and an optional weights spec.

Entries are added explicitly by the catalogue module that owns them (no registration by
import side effects). The same registry class serves models and classical methods.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from medrestore.core.errors import MedrestoreError

T = TypeVar("T")


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
    """One registered item."""

    name: str
    constructor: Callable[[], T]
    task: str
    modality: str
    description: str
    weights: WeightsSpec | None = None


class Registry(Generic[T]):
    """Name → :class:`Entry`. Iteration is in registration order."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, entry: Entry[T]) -> Entry[T]:
        if entry.name in self._entries:
            raise MedrestoreError(f"{self.kind} {entry.name!r} is registered twice")
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
        return [
            e.name
            for e in self
            if (task is None or e.task == task) and (modality is None or e.modality in (modality, "any"))
        ]
