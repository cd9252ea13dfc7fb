"""Model cards: what a set of trained weights is, how it was made, and how well it does.

A card is a JSON object with exactly the fields of :class:`ModelCard`::

    {
      "name": "unet-oct-denoise",
      "task": "denoise",
      "modality": "oct",
      "architecture": "unet",
      "options": {"base_channels": 32, "depth": 4, ...},
      "normalisation": {"method": "percentile", "low": 1.0, "high": 99.0},
      "training": {"data": "...", "split": "...", "command": "medrestore train ...",
                   "seed": 0, "epochs": 50, "duration_s": 1234.5},
      "metrics": {"convention": "oct-test", "psnr": 30.1, "ssim": 0.85},
      "licence": "Apache-2.0",
      "weights_file": "weights/unet-oct-denoise.pt",
      "sha256": "<64 hex digits of the weights file>",
      "created": "2025-01-31",
      "description": "..."
    }

``metrics`` maps metric names (as in :mod:`medrestore.metrics`: ``psnr`` in dB, ``ssim``,
``nmse``...) to finite numbers, plus one string entry ``convention`` naming the evaluation
convention they were computed with (test split, data range, volume or slice level), so two
cards' numbers are only compared when their conventions agree.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import re
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from medrestore.core.errors import ConfigError, InputError, MedrestoreError
from medrestore.core.image import MODALITIES
from medrestore.models import MODELS, model_config
from medrestore.models.harmonizers import HARMONIZERS

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
TASK_PATTERN = re.compile(r"^[a-z][a-z0-9-]*$")
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
CARD_MODALITIES = (*MODALITIES, "any")
TRAINING_KEYS = ("data", "split", "command", "seed", "epochs", "duration_s")
METRIC_CONVENTION_KEY = "convention"


@dataclasses.dataclass(frozen=True)
class ModelCard:
    """The record of one trained model in the zoo (see the module docstring for the JSON form).

    Attributes:
        name: zoo name, lower case ``[a-z0-9._-]``; the card file is ``cards/<name>.json``.
        task: the workflow it serves (``denoise``, ``recon``, ``harmonize``, ``superres``...).
        modality: image modality it was trained on, or ``any``.
        architecture: registry name of the architecture (``medrestore.models.MODELS``), or of a
            fitted harmoniser (``medrestore.models.harmonizers.HARMONIZERS``, e.g. ``coupled-dictionary``).
        options: the architecture's options (enough to rebuild it with ``create_model``, or the
            harmoniser with its registry entry).
        normalisation: how inputs were scaled before the network and outputs back after.
        training: ``data``, ``split``, ``command``, ``seed``, ``epochs``, ``duration_s`` (and any extra record).
        metrics: metric name → value on the held-out data, plus ``convention`` (a string).
        licence: licence of the weights (SPDX identifier where there is one).
        weights_file: path of the ``state_dict`` file relative to the zoo folder (``weights/<name>.pt``).
        sha256: SHA-256 hex digest of the weights file; loading refuses any other content.
        created: ISO date (``YYYY-MM-DD``) the weights were written.
        description: free text for people.

    Constructing a card validates every field and raises :class:`InputError` (without a path;
    :func:`read_card` adds the card file's).
    """

    name: str
    task: str
    modality: str
    architecture: str
    options: dict[str, object]
    normalisation: dict[str, object]
    training: dict[str, object]
    metrics: dict[str, object]
    licence: str
    weights_file: str
    sha256: str
    created: str
    description: str

    def __post_init__(self) -> None:
        for field in ("options", "normalisation", "training", "metrics"):
            value = getattr(self, field)
            if not isinstance(value, Mapping):
                raise InputError(None, f"model card field {field!r} must be a JSON object, got {type(value).__name__}")
            object.__setattr__(self, field, _plain_copy(value, field))
        _validate_strings(self)
        _validate_training(self.training)
        _validate_metrics(self.metrics)
        _validate_architecture(self.architecture, self.options)

    def to_dict(self) -> dict[str, object]:
        """The card as plain JSON-ready data (field order as in the dataclass)."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}

    def to_json(self) -> str:
        """Indented JSON text of the card, ending with a newline."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    @property
    def metric_values(self) -> dict[str, float]:
        """The numeric metrics (without ``convention``)."""
        return {key: float(value) for key, value in self.metrics.items() if key != METRIC_CONVENTION_KEY}  # type: ignore[arg-type]

    @property
    def metric_convention(self) -> str:
        return str(self.metrics[METRIC_CONVENTION_KEY])

    def metrics_summary(self) -> str:
        """Key metrics for a listing, e.g. ``"PSNR 30.10 dB / SSIM 0.850 (oct-test)"``."""
        values = self.metric_values
        preferred = [key for key in ("psnr", "ssim", "nmse") if key in values]
        keys = preferred or list(values)[:2]
        parts = [_format_metric(key, values[key]) for key in keys]
        text = " / ".join(parts) if parts else "no metrics"
        return f"{text} ({self.metric_convention})"


def _format_metric(key: str, value: float) -> str:
    if key == "psnr":
        return f"PSNR {value:.2f} dB"
    if key == "ssim":
        return f"SSIM {value:.3f}"
    if key == "nmse":
        return f"NMSE {value:.4f}"
    if key == "mae":
        return f"MAE {value:.4g}"
    return f"{key} {value:.4g}"


def _plain_copy(value: Mapping[str, object], field: str) -> dict[str, object]:
    """A deep copy through JSON (tuples become lists), refusing anything JSON cannot hold."""
    try:
        return json.loads(json.dumps(dict(value), allow_nan=False))
    except (TypeError, ValueError) as error:
        raise InputError(None, f"model card field {field!r} is not plain JSON data: {error}") from error


def _validate_strings(card: ModelCard) -> None:
    for field in ("name", "task", "modality", "architecture", "licence", "weights_file", "sha256", "created", "description"):
        if not isinstance(getattr(card, field), str):
            raise InputError(None, f"model card field {field!r} must be a string, got {type(getattr(card, field)).__name__}")
    if not NAME_PATTERN.match(card.name):
        raise InputError(None, f"model card name {card.name!r} must be lower case letters, digits, '.', '_' or '-'")
    if not TASK_PATTERN.match(card.task):
        raise InputError(None, f"model card task {card.task!r} must be a lower-case word such as 'denoise'")
    if card.modality not in CARD_MODALITIES:
        raise InputError(None, f"model card modality {card.modality!r} is not one of {', '.join(CARD_MODALITIES)}")
    if not card.licence.strip():
        raise InputError(None, "model card licence is empty")
    weights = PurePosixPath(card.weights_file)
    if weights.is_absolute() or ".." in weights.parts or not card.weights_file or "\\" in card.weights_file:
        raise InputError(None, f"model card weights_file {card.weights_file!r} must be a relative path inside the zoo folder")
    if not SHA256_PATTERN.match(card.sha256):
        raise InputError(None, f"model card sha256 {card.sha256!r} is not 64 lower-case hex digits")
    try:
        datetime.date.fromisoformat(card.created)
    except ValueError:
        raise InputError(None, f"model card created {card.created!r} is not an ISO date (YYYY-MM-DD)") from None


def _validate_training(training: Mapping[str, object]) -> None:
    missing = [key for key in TRAINING_KEYS if key not in training]
    if missing:
        raise InputError(None, f"model card training record is missing {', '.join(missing)}")
    for key in ("data", "split", "command"):
        if not isinstance(training[key], str):
            raise InputError(None, f"model card training.{key} must be a string")
    for key in ("seed", "epochs"):
        if not isinstance(training[key], int) or isinstance(training[key], bool):
            raise InputError(None, f"model card training.{key} must be an integer")
    duration = training["duration_s"]
    if not isinstance(duration, int | float) or isinstance(duration, bool) or duration < 0:
        raise InputError(None, "model card training.duration_s must be a non-negative number of seconds")


def _validate_metrics(metrics: Mapping[str, object]) -> None:
    convention = metrics.get(METRIC_CONVENTION_KEY)
    if not isinstance(convention, str) or not convention:
        raise InputError(None, f"model card metrics need a {METRIC_CONVENTION_KEY!r} string naming the evaluation convention")
    for key, value in metrics.items():
        if key == METRIC_CONVENTION_KEY:
            continue
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            raise InputError(None, f"model card metric {key!r} must be a finite number, got {value!r}")


def _validate_architecture(architecture: str, options: Mapping[str, object]) -> None:
    registry = MODELS if architecture in MODELS else HARMONIZERS
    if architecture not in registry:
        known = [*MODELS.names(), *HARMONIZERS.names()]
        raise InputError(None, f"model card architecture {architecture!r} is not registered; known: {', '.join(known)}")
    try:
        registry.get(architecture).make_config(options)
    except ConfigError as error:
        raise InputError(None, f"model card options do not fit {architecture}: {error}") from None


def is_harmonizer_card(card: ModelCard) -> bool:
    """Whether ``card`` holds a fitted harmoniser (its architecture is in ``HARMONIZERS``, not ``MODELS``)."""
    return card.architecture not in MODELS and card.architecture in HARMONIZERS


def card_from_mapping(data: object, path: str | Path | None = None) -> ModelCard:
    """Validate parsed JSON ``data`` as a card; problems raise :class:`InputError` naming ``path``."""
    expected = [field.name for field in dataclasses.fields(ModelCard)]
    if not isinstance(data, Mapping):
        raise InputError(path, f"a model card must be a JSON object, got {type(data).__name__}")
    missing = [name for name in expected if name not in data]
    if missing:
        raise InputError(path, f"model card is missing field(s): {', '.join(missing)}")
    extra = sorted(str(name) for name in data if name not in expected)
    if extra:
        raise InputError(path, f"model card has unknown field(s): {', '.join(extra)}; expected: {', '.join(expected)}")
    try:
        return ModelCard(**{name: data[name] for name in expected})
    except InputError as error:
        raise InputError(path, error.problem) from None


def read_card(path: str | Path) -> ModelCard:
    """Read and validate the card at ``path``; its name must match the file name (``<name>.json``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise InputError(path, f"cannot read model card: {error.strerror or error}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(path, f"model card is not valid JSON: {error}") from None
    card = card_from_mapping(data, path)
    if card.name != path.stem:
        raise InputError(path, f"model card name {card.name!r} does not match its file name {path.name!r}")
    return card


def require_card_name(name: str) -> str:
    """Return ``name`` if it is a valid zoo name, else raise :class:`MedrestoreError`."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise MedrestoreError(f"invalid zoo name {name!r}: use lower case letters, digits, '.', '_' or '-'")
    return name
