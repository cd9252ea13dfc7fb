"""What can restore an image: registered architectures, classical methods and zoo models.

:func:`list_models` gathers the three, filtered by task and modality; :func:`catalogue_text`
renders them as the table printed by ``medrestore models``, and :meth:`Catalogue.as_dict`
as the ``--json`` record.
"""

from __future__ import annotations

import dataclasses

from medrestore.core.image import MODALITIES
from medrestore.models import METHODS, MODELS
from medrestore.zoo import list_zoo

MODALITY_CHOICES = (*MODALITIES, "any")


@dataclasses.dataclass(frozen=True)
class CatalogueEntry:
    """An architecture (``kind="architecture"``) or classical method (``kind="method"``)."""

    name: str
    kind: str
    task: str
    modality: str
    description: str


@dataclasses.dataclass(frozen=True)
class ZooListing:
    """A pretrained model of the zoo, summarised from its card."""

    name: str
    task: str
    modality: str
    architecture: str
    metrics: str
    metric_values: dict[str, float]
    metric_convention: str
    description: str
    card_path: str


@dataclasses.dataclass(frozen=True)
class Catalogue:
    """The result of :func:`list_models`."""

    entries: tuple[CatalogueEntry, ...]
    zoo: tuple[ZooListing, ...]

    def as_dict(self) -> dict[str, list[dict[str, object]]]:
        """Plain JSON-ready record: ``{"entries": [...], "zoo": [...]}``."""
        return {
            "entries": [dataclasses.asdict(entry) for entry in self.entries],
            "zoo": [dataclasses.asdict(listing) for listing in self.zoo],
        }


def _matches(value: str, wanted: str | None) -> bool:
    return wanted is None or value in (wanted, "any") or wanted == "any"


def list_models(task: str | None = None, modality: str | None = None) -> Catalogue:
    """Architectures, classical methods and zoo models serving ``task`` on ``modality``.

    Entries declared for ``"any"`` task or modality always match; ``None`` means no filter.

    Raises:
        InputError: a zoo card is invalid (the message names the file).
    """
    entries = [
        CatalogueEntry(entry.name, kind, entry.task, entry.modality, entry.description)
        for kind, registry in (("architecture", MODELS), ("method", METHODS))
        for entry in registry
        if entry.matches(task, modality)
    ]
    listings = [
        ZooListing(
            name=item.card.name,
            task=item.card.task,
            modality=item.card.modality,
            architecture=item.card.architecture,
            metrics=item.card.metrics_summary(),
            metric_values=item.card.metric_values,
            metric_convention=item.card.metric_convention,
            description=item.card.description,
            card_path=str(item.card_path),
        )
        for item in list_zoo()
        if _matches(item.card.task, task) and _matches(item.card.modality, modality)
    ]
    return Catalogue(tuple(entries), tuple(listings))


def _table(headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows)]
    lines = []
    for row in (headers, *rows):
        lines.append("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return lines


def catalogue_text(catalogue: Catalogue) -> str:
    """The catalogue as two aligned tables (architectures and methods; pretrained zoo models)."""
    lines = ["Architectures and classical methods:"]
    if catalogue.entries:
        rows = [(e.name, e.kind, e.task, e.modality, e.description) for e in catalogue.entries]
        lines += _table(("NAME", "KIND", "TASK", "MODALITY", "DESCRIPTION"), rows)
    else:
        lines.append("  (none match)")
    lines += ["", "Pretrained models (zoo):"]
    if catalogue.zoo:
        rows = [(z.name, z.task, z.modality, z.architecture, z.metrics) for z in catalogue.zoo]
        lines += _table(("NAME", "TASK", "MODALITY", "ARCHITECTURE", "METRICS"), rows)
    else:
        lines.append("  (none found; add zoo folders with MEDRESTORE_ZOO)")
    return "\n".join(lines) + "\n"
