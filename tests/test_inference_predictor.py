"""Predictor: normalisation round trip, layouts, tiling, loading from a model file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from medrestore.core.errors import InputError
from medrestore.core.random import make_generator
from medrestore.data.normalisation import FixedRange, MinMaxImage, ZScoreImage
from medrestore.inference import Predictor
from medrestore.models import create_model

torch.set_num_threads(1)


class _Scaled(nn.Module):
    """``y = gain · x`` with a ``spatial_ndim`` attribute like the registered models."""

    def __init__(self, gain: float, spatial_ndim: int = 2) -> None:
        super().__init__()
        self.gain = gain
        self.spatial_ndim = spatial_ndim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gain * x


def _image(shape: tuple[int, ...] = (37, 45)) -> np.ndarray:
    return (120.0 + 30.0 * torch.randn(shape, generator=make_generator(0))).numpy()


@pytest.mark.parametrize("normalisation", [ZScoreImage(), MinMaxImage(), FixedRange(255.0)])
@pytest.mark.parametrize("window", [None, (16, 16)])
def test_identity_model_returns_the_input(normalisation, window) -> None:
    image = _image()
    predictor = Predictor(_Scaled(1.0), normalisation, window=window, device="cpu")
    restored = predictor.predict(image)
    assert isinstance(restored, torch.Tensor) and restored.shape == image.shape
    assert np.allclose(restored.numpy(), image, atol=1e-4)


def test_zero_model_returns_the_normalisation_offset() -> None:
    image = _image()
    assert np.allclose(Predictor(_Scaled(0.0), ZScoreImage(), device="cpu").predict(image).numpy(), image.mean(dtype=np.float64), atol=1e-4)
    assert np.allclose(Predictor(_Scaled(0.0), MinMaxImage(), device="cpu").predict(image).numpy(), image.min(), atol=1e-4)


def test_doubling_model_in_normalised_units() -> None:
    # y' = 2x'  ⇒  y = 2(x − μ) + μ = 2x − μ with the per-image mean μ
    image = _image()
    restored = Predictor(_Scaled(2.0), ZScoreImage(), window=(16, 16), device="cpu").predict(image)
    assert np.allclose(restored.numpy(), 2 * image - image.mean(dtype=np.float64), atol=1e-3)


def test_layouts_and_per_image_normalisation() -> None:
    predictor = Predictor(_Scaled(0.0), ZScoreImage(), device="cpu")
    batch = np.stack([_image((20, 21)), _image((20, 21)) + 1000.0])[:, None]  # (2, 1, 20, 21)
    output = predictor.predict(batch)
    assert output.shape == (2, 1, 20, 21)
    assert np.allclose(output[1].numpy() - output[0].numpy(), 1000.0, atol=1e-2)
    assert predictor.predict(batch[0]).shape == (1, 20, 21)
    assert predictor.predict(batch[0, 0]).shape == (20, 21)
    with pytest.raises(InputError, match="NaN"):
        predictor.predict(np.full((8, 8), np.nan))
    with pytest.raises(InputError, match="expected"):
        predictor.predict(np.zeros((1, 1, 1, 8, 8)))


def test_from_checkpoint_rebuilds_model_normalisation_and_tiling(tmp_path: Path) -> None:
    torch.manual_seed(0)
    options = {"spatial_ndim": 2, "in_channels": 1, "out_channels": 1, "depth": 3, "width": 8, "batch_norm": False, "residual": True}
    model = create_model("dncnn", options)
    payload = {
        "model": {"name": "dncnn", "options": options, "state_dict": model.state_dict()},
        "normalisation": ZScoreImage().record(),
        "inference": {"window": [16, 16], "overlap": 0.5, "blend": "gaussian", "batch_size": 2},
    }
    torch.save(payload, tmp_path / "model.pt")
    predictor = Predictor.from_checkpoint(tmp_path / "model.pt", device="cpu")
    assert predictor.window == (16, 16) and predictor.overlap == 0.5 and predictor.batch_size == 2
    image = _image((30, 33))
    mean, std = image.mean(dtype=np.float64), image.std(dtype=np.float64)
    with torch.no_grad():
        expected = model.eval()(torch.from_numpy((image - mean) / std).float()[None, None])[0, 0].numpy() * std + mean
    # three 3×3 layers (radius 3) and 8 voxels of overlap: tiling equals the whole-image pass
    assert np.allclose(predictor.predict(image).numpy(), expected, atol=1e-3)


def test_from_checkpoint_refuses_other_files(tmp_path: Path) -> None:
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(InputError, match="other.pt: not a medrestore model file"):
        Predictor.from_checkpoint(tmp_path / "other.pt", device="cpu")
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="broken.pt: cannot read"):
        Predictor.from_checkpoint(tmp_path / "broken.pt", device="cpu")
    with pytest.raises(InputError, match="missing.pt: file not found"):
        Predictor.from_checkpoint(tmp_path / "missing.pt", device="cpu")


class _CountingConv(nn.Module):
    """Two 3×3 convolutions (receptive field 5 pixels) that record the input sizes they were called on."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.Conv2d(4, 1, 3, padding=1))
        self.sizes: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(tuple(x.shape[2:]))
        return self.body(x)


def test_clip_window_runs_fitting_images_whole_and_tiles_larger_ones() -> None:
    torch.manual_seed(0)
    model = _CountingConv()
    whole = Predictor(model, FixedRange(1.0, 0.0), window=None, device="cpu")
    clipped = Predictor(model, FixedRange(1.0, 0.0), window=(32, 32), overlap=0.5, device="cpu", clip_window=True)
    fits = _image((32, 20))
    model.sizes.clear()
    torch.testing.assert_close(clipped.predict(fits), whole.predict(fits), rtol=0, atol=0)  # one pass, not padded to 32 × 32
    assert model.sizes == [(32, 20), (32, 20)]
    large = _image((80, 20))
    model.sizes.clear()
    tiled = clipped.predict(large)
    assert set(model.sizes) == {(32, 20)}  # tiles cut to the image's width, never padded to the window
    reference = whole.predict(large)
    assert tiled.shape == reference.shape
    # inside, every tile sees the whole receptive field: the tiles' blend is the one-pass result
    torch.testing.assert_close(tiled[3:-3], reference[3:-3], rtol=0, atol=2e-2)
    assert float((tiled - reference).abs().mean()) < 1e-3
