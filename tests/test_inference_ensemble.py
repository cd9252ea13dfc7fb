"""Self-ensembles: views and their inverses, and the averaged output against closed forms."""

from __future__ import annotations

import pytest
import torch

from medrestore.core.errors import ConfigError
from medrestore.inference import DIHEDRAL, HALF_TURN, IDENTITY, QUARTER_TURNS, AveragedPredictor, self_ensemble
from medrestore.inference.ensemble import apply_view, undo_view


def test_views_are_the_eight_symmetries_and_undo_inverts_them() -> None:
    image = torch.arange(2 * 3 * 5, dtype=torch.float64).reshape(2, 3, 5)  # non-square, with a leading axis
    seen = set()
    for view in DIHEDRAL:
        turned = apply_view(image, view)
        assert turned.shape == ((2, 5, 3) if view[0] % 2 else (2, 3, 5))
        assert torch.equal(undo_view(turned, view), image)
        seen.add(tuple(turned.flatten().tolist()))
    assert len(seen) == 8 and QUARTER_TURNS == DIHEDRAL[:4] and IDENTITY == DIHEDRAL[:1] and HALF_TURN == DIHEDRAL[:3:2]
    assert torch.equal(apply_view(image, (1, ())), torch.rot90(image, 1, (-2, -1)))
    assert torch.equal(apply_view(image, (0, (0,))), image.flip(0))  # flips of any axis (3-D volumes)


def test_self_ensemble_averages_the_turned_back_outputs() -> None:
    """A cumulative sum along the last axis is not rotation invariant: over the four quarter turns the
    ensemble is the mean of the four directed cumulative sums (left, right, down, up)."""
    image = torch.rand(6, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    calls = []

    def cumulative(x: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(x.shape))
        return x.cumsum(-1)

    expected = (
        image.cumsum(-1) + image.flip(-1).cumsum(-1).flip(-1) + image.cumsum(-2) + image.flip(-2).cumsum(-2).flip(-2)
    ) / 4
    assert torch.allclose(self_ensemble(cumulative, image, QUARTER_TURNS), expected, atol=1e-12)
    assert calls == [(6, 7), (7, 6), (6, 7), (7, 6)]
    assert torch.equal(self_ensemble(cumulative, image, IDENTITY), image.cumsum(-1))
    assert torch.allclose(self_ensemble(lambda x: 2 * x, image, DIHEDRAL), 2 * image, atol=1e-15)  # equivariant: unchanged
    assert torch.equal(image, torch.rand(6, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64))  # input kept
    with pytest.raises(ConfigError, match="at least one view"):
        self_ensemble(cumulative, image, ())


def test_averaged_predictor_is_the_mean_of_its_members() -> None:
    class Scale:
        def __init__(self, factor: float) -> None:
            self.factor = factor

        def predict(self, image: torch.Tensor) -> torch.Tensor:
            return image * self.factor

    image = torch.arange(12, dtype=torch.float64).reshape(3, 4)
    averaged = AveragedPredictor([Scale(1.0), Scale(2.0), Scale(6.0)])
    assert torch.equal(averaged.predict(image), 3.0 * image) and torch.equal(image, torch.arange(12, dtype=torch.float64).reshape(3, 4))
    assert torch.equal(AveragedPredictor([Scale(2.0)]).predict(image), 2.0 * image)
    # with a self-ensemble on top: every view runs every member
    assert torch.allclose(self_ensemble(averaged.predict, image, QUARTER_TURNS), 3.0 * image)
    with pytest.raises(ConfigError, match="at least one predictor"):
        AveragedPredictor([])
