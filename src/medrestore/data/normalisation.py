"""Intensity normalisation for training and inference, recorded in checkpoints.

Every normalisation here is an affine map decided by two numbers, an ``offset`` and a
``scale``::

    normalised = (x − offset) / scale          x = normalised · scale + offset

The numbers come from the *input* image (per-image kinds), from the training set
(``zscore-dataset``) or from the configuration (``range``). The same numbers are applied to
the input and to its target during training, and the inverse map is applied to the network
output at inference, so the output is on the scale of the input file.

Kinds:

* ``zscore-image`` — offset = mean, scale = standard deviation (population, ``N`` in the
  denominator) of the input image: the OCT seed's z-score.
* ``zscore-dataset`` — mean/std pooled over all voxels of the training inputs, stored.
* ``minmax-image`` — offset = min, scale = max − min of the input image (maps it to [0, 1]).
* ``range`` — a fixed scale (and offset), e.g. 255 for 8-bit images.
* ``none`` — identity.

A zero spread (constant image) gives scale 1 so nothing is divided by zero.
Use :meth:`Normalisation.record` to store a normalisation and :func:`normalisation_from_record`
to rebuild it.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import torch

from medrestore.core.errors import ConfigError

NORMALISATION_KINDS = ("zscore-image", "zscore-dataset", "minmax-image", "range", "none")


@dataclasses.dataclass(frozen=True)
class AffineParameters:
    """``normalised = (x − offset) / scale``."""

    offset: float
    scale: float


def _safe_scale(spread: float) -> float:
    return spread if spread > 0.0 and math.isfinite(spread) else 1.0


@dataclasses.dataclass(frozen=True)
class Normalisation(abc.ABC):
    """Base class: decides :class:`AffineParameters` for an input image and applies them."""

    kind: ClassVar[str]

    @abc.abstractmethod
    def parameters(self, image: torch.Tensor) -> AffineParameters:
        """The offset/scale used for ``image`` (an input, any shape) and its target."""

    def record(self) -> dict[str, Any]:
        """Plain-data description (``{"kind": ..., **fields}``) for checkpoints and model cards."""
        return {"kind": self.kind, **dataclasses.asdict(self)}

    @staticmethod
    def normalise(image: torch.Tensor, parameters: AffineParameters) -> torch.Tensor:
        """``(image − offset) / scale`` as a new tensor (float dtype kept, integers → float32)."""
        data = image if image.is_floating_point() else image.to(torch.float32)
        return (data - parameters.offset) / parameters.scale

    @staticmethod
    def denormalise(image: torch.Tensor, parameters: AffineParameters) -> torch.Tensor:
        """``image · scale + offset``: the inverse of :meth:`normalise`."""
        return image * parameters.scale + parameters.offset


@dataclasses.dataclass(frozen=True)
class ZScoreImage(Normalisation):
    """Per-image z-score of the input: offset = mean, scale = std (population)."""

    kind: ClassVar[str] = "zscore-image"

    def parameters(self, image: torch.Tensor) -> AffineParameters:
        values = image.detach().to(torch.float64)
        return AffineParameters(float(values.mean()), _safe_scale(float(values.std(correction=0))))


@dataclasses.dataclass(frozen=True)
class ZScoreDataset(Normalisation):
    """Fixed z-score with the training set's ``mean`` and ``std`` (see :func:`fit_zscore_dataset`)."""

    mean: float
    std: float
    kind: ClassVar[str] = "zscore-dataset"

    def parameters(self, image: torch.Tensor) -> AffineParameters:
        return AffineParameters(self.mean, _safe_scale(self.std))


@dataclasses.dataclass(frozen=True)
class MinMaxImage(Normalisation):
    """Per-image min–max: the input is mapped to [0, 1]."""

    kind: ClassVar[str] = "minmax-image"

    def parameters(self, image: torch.Tensor) -> AffineParameters:
        low, high = float(image.min()), float(image.max())
        return AffineParameters(low, _safe_scale(high - low))


@dataclasses.dataclass(frozen=True)
class FixedRange(Normalisation):
    """Fixed ``(x − offset) / scale``, e.g. ``scale=255`` for 8-bit images."""

    scale: float = 1.0
    offset: float = 0.0
    kind: ClassVar[str] = "range"

    def __post_init__(self) -> None:
        if not (self.scale > 0.0 and math.isfinite(self.scale)):
            raise ConfigError(f"normalisation 'range' needs a positive finite scale, got {self.scale}")

    def parameters(self, image: torch.Tensor) -> AffineParameters:
        return AffineParameters(self.offset, self.scale)


@dataclasses.dataclass(frozen=True)
class NoNormalisation(Normalisation):
    """Identity."""

    kind: ClassVar[str] = "none"

    def parameters(self, image: torch.Tensor) -> AffineParameters:
        return AffineParameters(0.0, 1.0)


_KINDS: dict[str, type[Normalisation]] = {
    cls.kind: cls for cls in (ZScoreImage, ZScoreDataset, MinMaxImage, FixedRange, NoNormalisation)
}


def normalisation_from_record(record: Mapping[str, Any]) -> Normalisation:
    """Rebuild a normalisation from :meth:`Normalisation.record` output.

    Raises :class:`ConfigError` for an unknown kind or missing/extra fields.
    """
    fields = dict(record)
    kind = fields.pop("kind", None)
    if kind not in _KINDS:
        raise ConfigError(f"unknown normalisation kind {kind!r}; expected one of {', '.join(NORMALISATION_KINDS)}")
    cls = _KINDS[kind]
    names = {field.name for field in dataclasses.fields(cls)}
    if set(fields) - names:
        raise ConfigError(f"normalisation {kind!r} has no field(s) {sorted(set(fields) - names)}")
    try:
        return cls(**{name: float(value) for name, value in fields.items()})
    except TypeError as error:
        raise ConfigError(f"normalisation {kind!r}: {error}") from None


def fit_zscore_dataset(images: Iterable[torch.Tensor]) -> ZScoreDataset:
    """Pooled mean and population std over all voxels of ``images``.

    Combines per-image moments with Chan et al.'s parallel update (float64), so the result equals
    the statistics of the concatenation of all voxels without holding them in memory.
    """
    count, mean, sum_squares = 0, 0.0, 0.0
    for image in images:
        values = image.detach().to(torch.float64).reshape(-1)
        n = values.numel()
        if n == 0:
            continue
        image_mean = float(values.mean())
        image_sum_squares = float(((values - image_mean) ** 2).sum())
        delta = image_mean - mean
        total = count + n
        mean += delta * n / total
        sum_squares += image_sum_squares + delta * delta * count * n / total
        count = total
    if count == 0:
        raise ConfigError("cannot fit a dataset normalisation on an empty training set")
    return ZScoreDataset(mean=mean, std=math.sqrt(sum_squares / count))
