"""What can restore an image: registered architectures, classical methods and zoo models.

:func:`list_models` gathers the three, filtered by task and modality; :func:`catalogue_text`
renders them as the table printed by ``medrestore models``, and :meth:`Catalogue.as_dict`
as the ``--json`` record. :func:`publish_checkpoint` turns a trained checkpoint into a zoo
model with its card, :func:`publish_harmonizer` a fitted harmoniser's run folder.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from medrestore.core.errors import ConfigError, InputError
from medrestore.core.image import MODALITIES
from medrestore.inference import Predictor
from medrestore.models import METHODS, MODELS
from medrestore.models.ensemble import mean_ensemble
from medrestore.training import load_checkpoint
from medrestore.training.harmonize import load_harmonization_config, load_harmonizer
from medrestore.zoo import ModelCard, list_zoo, save_to_zoo

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


def training_record(checkpoint: Mapping[str, Any]) -> dict[str, object]:
    """The ``training`` fields a model card takes from a trainer checkpoint.

    Returns:
        ``seed``, ``epochs`` (finished epochs in its history), ``steps`` (optimiser steps) and
        ``duration_s`` (sum of the epochs' wall times).
    """
    history = checkpoint.get("history", [])
    return {
        "seed": int(checkpoint["seed"]),
        "epochs": len(history),
        "steps": int(checkpoint["progress"]["global_step"]),
        "duration_s": round(sum(float(row["seconds"]) for row in history), 1),
    }


def publish_checkpoint(
    checkpoint_path: str | Path | Sequence[str | Path],
    *,
    name: str,
    task: str,
    modality: str,
    training: Mapping[str, object],
    metrics: Mapping[str, object],
    description: str,
    zoo_dir: Path,
    licence: str = "Apache-2.0",
) -> ModelCard:
    """Write a trained checkpoint's model into ``zoo_dir`` (replacing a card of the same name).

    The card's ``training`` section is :func:`training_record` of the checkpoint updated with
    ``training`` (data, split, command…); its normalisation is the checkpoint's.

    Several checkpoints (networks of one architecture and configuration, one normalisation) are
    published as one model, the mean of their outputs
    (:func:`~medrestore.models.ensemble.mean_ensemble`); the card's ``seed`` is the first
    member's, ``epochs``, ``steps`` and ``duration_s`` are the members' totals, and ``members``
    lists each member's own record.

    Raises:
        ConfigError: ensemble members of different architectures, configurations or normalisations.
    """
    paths = [checkpoint_path] if isinstance(checkpoint_path, str | Path) else list(checkpoint_path)
    if not paths:
        raise ConfigError("publish needs at least one checkpoint")
    checkpoints = [load_checkpoint(path, map_location="cpu") for path in paths]
    networks = [Predictor.from_record(checkpoint, "cpu", str(path)).model for path, checkpoint in zip(paths, checkpoints)]
    normalisation = checkpoints[0]["normalisation"]
    if any(checkpoint["normalisation"] != normalisation for checkpoint in checkpoints[1:]):
        raise ConfigError(f"ensemble members normalise their inputs differently: {', '.join(map(str, paths))}")
    records = [training_record(checkpoint) for checkpoint in checkpoints]
    record = records[0] if len(records) == 1 else {
        "seed": records[0]["seed"],
        **{key: _total(records, key) for key in ("epochs", "steps", "duration_s")},
        "members": [{"checkpoint": str(path), **member} for path, member in zip(paths, records)],
    }  # fmt: skip
    return save_to_zoo(
        networks[0] if len(networks) == 1 else mean_ensemble(networks),
        name=name,
        task=task,
        modality=modality,
        normalisation=normalisation,
        training={**record, **training},
        metrics=metrics,
        licence=licence,
        description=description,
        zoo_dir=zoo_dir,
        overwrite=True,
    )


def _total(records: Sequence[Mapping[str, object]], key: str) -> int | float:
    """The sum of ``key`` over training records (rounded to 0.1 for durations)."""
    total = sum(float(record[key]) for record in records)  # type: ignore[arg-type]
    return round(total, 1) if key == "duration_s" else int(total)


def publish_harmonizer(
    run_dir: str | Path,
    *,
    name: str,
    modality: str,
    training: Mapping[str, object],
    metrics: Mapping[str, object],
    description: str,
    zoo_dir: Path,
    licence: str = "Apache-2.0",
) -> ModelCard:
    """Write the fitted harmoniser of a ``medrestore train`` run (``method:`` config) into ``zoo_dir``.

    ``run_dir`` holds ``harmonizer.pt``, ``config.yaml`` and ``history.json`` as
    :func:`~medrestore.training.harmonize.fit_classical` writes them. The card's ``training``
    section is ``seed`` (the run's), ``epochs`` (the method's ``iterations`` rounds, 1 when it
    has none), ``duration_s`` (the fit's wall time) and ``fit`` (the run's history), updated
    with ``training`` (data, split, command...). A card of the same name is replaced.

    Raises:
        InputError: a missing or unreadable ``harmonizer.pt`` or ``history.json`` (the message names it).
        ConfigError: an unreadable ``config.yaml`` (the message names it).
    """
    run_dir = Path(run_dir)
    harmonizer = load_harmonizer(run_dir / "harmonizer.pt")
    config = load_harmonization_config(run_dir / "config.yaml")
    history_path = run_dir / "history.json"
    try:
        history = json.loads(history_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise InputError(history_path, f"cannot read the run's history: {error}") from None
    record: dict[str, object] = {
        "seed": config.train.seed,
        "epochs": int(getattr(harmonizer.config, "iterations", 1)),
        "duration_s": round(float(history.get("seconds", 0.0)), 1),
        "fit": history,
    }
    return save_to_zoo(
        harmonizer,
        name=name,
        task="harmonize",
        modality=modality,
        normalisation={"kind": "none", "scale": 1.0},
        training={**record, **training},
        metrics=metrics,
        licence=licence,
        description=description,
        zoo_dir=zoo_dir,
        overwrite=True,
    )
