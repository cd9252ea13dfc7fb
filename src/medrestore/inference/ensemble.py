"""Self-ensembles: a network run on turned and flipped copies of its input, outputs turned back and averaged.

A network trained with flips and 90° turns (``data.augment``) is nearly, not exactly, equivariant
to them; the mean of its outputs over several views, each mapped back, is a cheap ensemble (EDSR+:
Lim et al., "Enhanced deep residual networks for single image super-resolution", CVPRW 2017):

    ŷ = (1/|V|) Σ_{v ∈ V} v⁻¹( f( v(x) ) )

A view ``v = (turns, axes)`` turns the last two axes by ``turns`` quarter turns (``torch.rot90``
from the second-last towards the last axis), then flips ``axes``; its inverse flips back, then turns
back. Turns need a function that accepts the transposed shape of a non-square image (any fully
convolutional network does).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch

from medrestore.core.errors import ConfigError

View = tuple[int, tuple[int, ...]]
"""``(quarter turns of the last two axes, flipped axes)``."""

IDENTITY: tuple[View, ...] = ((0, ()),)
HALF_TURN: tuple[View, ...] = ((0, ()), (2, ()))
"""The image and its half turn (180°)."""
QUARTER_TURNS: tuple[View, ...] = ((0, ()), (1, ()), (2, ()), (3, ()))
"""The four rotations of the plane."""
DIHEDRAL: tuple[View, ...] = QUARTER_TURNS + ((0, (-1,)), (1, (-1,)), (2, (-1,)), (3, (-1,)))
"""The eight symmetries of the square."""


def apply_view(image: torch.Tensor, view: View) -> torch.Tensor:
    """``v(x)``: ``turns`` quarter turns of the last two axes, then the flips."""
    turns, axes = view
    turned = torch.rot90(image, turns, (-2, -1)) if turns % 4 else image
    return turned.flip(axes) if axes else turned


def undo_view(image: torch.Tensor, view: View) -> torch.Tensor:
    """``v⁻¹(y)``: the flips undone, then the turns."""
    turns, axes = view
    unflipped = image.flip(axes) if axes else image
    return torch.rot90(unflipped, -turns, (-2, -1)) if turns % 4 else unflipped


def self_ensemble(function: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor, views: Sequence[View]) -> torch.Tensor:
    """The mean of ``undo_view(function(apply_view(image, v)), v)`` over ``views`` (module docstring).

    Outputs are summed in the order of ``views`` and divided once; one view is ``function(image)``
    itself (up to the view's own exact turns and flips).

    Raises:
        ConfigError: no views.
    """
    if not views:
        raise ConfigError("a self-ensemble needs at least one view")
    return _mean(undo_view(function(apply_view(image, view)), view) for view in views)


def _mean(outputs: Iterable[torch.Tensor]) -> torch.Tensor:
    """The mean of one or more tensors, summed in order and divided once (one tensor: itself, copied)."""
    total, count = None, 0
    for output in outputs:
        total, count = (output.clone() if total is None else total.add_(output)), count + 1
    assert total is not None
    return total if count == 1 else total.div_(count)


class AveragedPredictor:
    """Several predictors as one: ``predict(x) = (1/M) Σ_m f_m(x)`` (a model ensemble).

    Networks of different architectures make different errors, so their mean is closer to the
    target than either (a model ensemble, as in EDSR+/RCAN+ or Kaggle-style averaging). Anything
    with a ``predict(image) -> tensor`` method of equal output shapes may be averaged.
    """

    def __init__(self, predictors: Sequence[Any]) -> None:
        if not predictors:
            raise ConfigError("a model ensemble needs at least one predictor")
        self.predictors = tuple(predictors)

    def predict(self, image: torch.Tensor) -> torch.Tensor:
        """The mean of the predictors' outputs on ``image`` (summed in order, divided once)."""
        return _mean(predictor.predict(image) for predictor in self.predictors)
