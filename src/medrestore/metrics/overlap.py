"""Overlap of segmentations: Dice and Jaccard, binary or per label.

For the voxel sets ``P`` (prediction) and ``R`` (reference) of one label::

    Dice    = 2 |P ∩ R| / (|P| + |R|)
    Jaccard = |P ∩ R| / |P ∪ R|          (= Dice / (2 − Dice))

Both are 1 when the two sets are empty (nothing to disagree on). The MRI-denoising seed scored
grey/white matter/CSF segmentations before and after denoising with the Jaccard index.

Which overlap is computed:

* ``label`` given: that label only (``pred == label`` vs ``ref == label``) → ``float``.
* ``label=None`` and both images binary (values in {0, 1}, or bool): nonzero voxels → ``float``.
* ``label=None`` otherwise: every nonzero label present in either image → :class:`LabelOverlap`
  (per-label values and their unweighted mean).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from types import MappingProxyType

import numpy as np
import torch

from medrestore.core.errors import InputError
from medrestore.metrics.arrays import ArrayLike


@dataclasses.dataclass(frozen=True)
class LabelOverlap:
    """Overlap per label and their unweighted mean.

    Attributes:
        per_label: read-only mapping label → Dice or Jaccard value, labels ascending.
        mean: mean of the per-label values.
    """

    per_label: Mapping[int, float]
    mean: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "per_label", MappingProxyType(dict(self.per_label)))


def _as_labels(values: ArrayLike, role: str) -> np.ndarray:
    """Labels as an integer NumPy array (a copy); non-integer values are refused."""
    array = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    if array.dtype == np.bool_ or np.issubdtype(array.dtype, np.integer):
        return array.astype(np.int64)
    if np.issubdtype(array.dtype, np.floating) and np.all(np.isfinite(array)) and np.all(array == np.round(array)):
        return array.astype(np.int64)
    raise InputError(None, f"{role} labels must be integers or booleans, got non-integer values of dtype {array.dtype}")


def _dice_of_sets(predicted: np.ndarray, reference: np.ndarray) -> float:
    total = int(predicted.sum()) + int(reference.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(predicted, reference).sum()) / total


def _jaccard_of_sets(predicted: np.ndarray, reference: np.ndarray) -> float:
    union = int(np.logical_or(predicted, reference).sum())
    if union == 0:
        return 1.0
    return int(np.logical_and(predicted, reference).sum()) / union


def _overlap(
    pred_labels: ArrayLike,
    ref_labels: ArrayLike,
    label: int | None,
    score: Callable[[np.ndarray, np.ndarray], float],
) -> float | LabelOverlap:
    predicted = _as_labels(pred_labels, "prediction")
    reference = _as_labels(ref_labels, "reference")
    if predicted.shape != reference.shape:
        raise InputError(None, f"prediction shape {predicted.shape} does not match reference shape {reference.shape}")
    if label is not None:
        return score(predicted == label, reference == label)
    labels = np.union1d(np.unique(predicted), np.unique(reference))
    foreground = [int(value) for value in labels if value != 0]
    if set(foreground) <= {1}:
        return score(predicted != 0, reference != 0)
    per_label = {value: score(predicted == value, reference == value) for value in foreground}
    return LabelOverlap(per_label, float(np.mean(list(per_label.values()))))


def dice(pred_labels: ArrayLike, ref_labels: ArrayLike, label: int | None = None) -> float | LabelOverlap:
    """Dice coefficient ``2|P ∩ R| / (|P| + |R|)``; see the module docstring for binary vs per label.

    Example:
        >>> import numpy as np
        >>> dice(np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0]))
        0.6666666666666666
    """
    return _overlap(pred_labels, ref_labels, label, _dice_of_sets)


def jaccard(pred_labels: ArrayLike, ref_labels: ArrayLike, label: int | None = None) -> float | LabelOverlap:
    """Jaccard index ``|P ∩ R| / |P ∪ R|``; see the module docstring for binary vs per label.

    Example:
        >>> import numpy as np
        >>> jaccard(np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0]))
        0.5
    """
    return _overlap(pred_labels, ref_labels, label, _jaccard_of_sets)
