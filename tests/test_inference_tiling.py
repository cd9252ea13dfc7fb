"""Sliding-window inference: exactness, agreement with whole-image inference, bounded batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from medrestore.core.errors import ConfigError, InputError
from medrestore.core.random import make_generator
from medrestore.data.patches import grid_starts
from medrestore.inference.tiling import count_windows, reflect_pad_to, sliding_window_inference

torch.set_num_threads(1)


def _identity(batch: torch.Tensor) -> torch.Tensor:
    return batch.clone()


@pytest.mark.parametrize("blend", ["gaussian", "constant"])
@pytest.mark.parametrize(
    ("shape", "window", "overlap"),
    [
        ((2, 1, 37, 45), (16, 16), 0.25),
        ((1, 3, 50, 31), (12, 20), 0.5),
        ((1, 1, 11, 7), (16, 16), 0.25),  # smaller than the window: reflect-padded, cropped back
        ((1, 2, 9, 13, 10), (4, 8, 8), 0.25),
        ((1, 1, 3, 17, 5), (8, 8, 8), 0.6),
    ],
)
def test_identity_is_reproduced_exactly(shape, window, overlap, blend) -> None:
    x = torch.randn(shape, generator=make_generator(0)) * 100
    y = sliding_window_inference(_identity, x, window, overlap=overlap, blend=blend, batch_size=3)
    assert y.dtype == x.dtype and y.shape == x.shape
    assert torch.equal(y, x)


def _small_convnet(spatial_ndim: int) -> nn.Module:
    """Three 3-wide convolutions: receptive-field radius 3 (width 7)."""
    torch.manual_seed(0)
    conv = nn.Conv2d if spatial_ndim == 2 else nn.Conv3d
    return nn.Sequential(conv(1, 4, 3, padding=1), nn.ReLU(), conv(4, 4, 3, padding=1), nn.Tanh(), conv(4, 2, 3, padding=1))


@pytest.mark.parametrize("blend", ["gaussian", "constant"])
@pytest.mark.parametrize(("shape", "window"), [((2, 1, 37, 45), (16, 16)), ((1, 1, 13, 19, 17), (10, 10, 10))])
def test_convnet_matches_whole_image_when_overlap_covers_the_receptive_field(shape, window, blend) -> None:
    net = _small_convnet(len(window))
    x = torch.randn(shape, generator=make_generator(1))
    with torch.no_grad():
        whole = net(x)
        # overlap 0.7 ≥ 7 voxels, the receptive-field width: every window keeps a margin ≥ 3 voxels
        tiled = sliding_window_inference(net, x, window, overlap=0.7, blend=blend, batch_size=4)
    assert tiled.shape == whole.shape  # two output channels from one input channel
    assert torch.allclose(tiled, whole, atol=1e-5, rtol=0)


def test_without_overlap_the_seams_differ() -> None:
    net = _small_convnet(2)
    x = torch.randn(1, 1, 37, 45, generator=make_generator(1))
    with torch.no_grad():
        difference = (sliding_window_inference(net, x, (16, 16), overlap=0.0) - net(x)).abs().max()
    assert float(difference) > 1e-3  # the agreement above is not automatic


def test_windows_are_processed_in_bounded_batches() -> None:
    sizes: list[int] = []

    def recording(batch: torch.Tensor) -> torch.Tensor:
        sizes.append(batch.shape[0])
        return batch

    x = torch.randn(3, 1, 40, 50)
    sliding_window_inference(recording, x, (16, 16), overlap=0.25, batch_size=5)
    per_image = len(grid_starts(40, 16, 12)) * len(grid_starts(50, 16, 12))
    assert count_windows((40, 50), (16, 16), 0.25) == per_image == 3 * 4
    assert sum(sizes) == 3 * per_image
    assert max(sizes) == 5 and len(sizes) == -(-3 * per_image // 5)


def test_compute_device_and_output_device(tmp_path) -> None:
    devices: list[torch.device] = []

    def recording(batch: torch.Tensor) -> torch.Tensor:
        devices.append(batch.device)
        return batch * 2

    x = torch.randn(1, 1, 20, 20)
    y = sliding_window_inference(recording, x, (8, 8), device="cpu")
    assert set(devices) == {torch.device("cpu")} and y.device == x.device
    assert torch.allclose(y, 2 * x)


def test_function_must_preserve_the_window_size() -> None:
    with pytest.raises(InputError, match="preserve the window size"):
        sliding_window_inference(lambda b: b[..., :-1], torch.zeros(1, 1, 20, 20), (8, 8))
    with pytest.raises(InputError, match="spatial axes"):
        sliding_window_inference(_identity, torch.zeros(1, 20, 20), (8, 8))
    with pytest.raises(ConfigError):
        sliding_window_inference(_identity, torch.zeros(1, 1, 20, 20), (8, 8), overlap=1.0)


def test_reflect_pad_matches_numpy_reflect() -> None:
    x = torch.arange(5.0).reshape(1, 1, 1, 5)
    padded = reflect_pad_to(x, (3, 12))
    expected = np.pad(np.arange(5.0).reshape(1, 5), ((0, 2), (0, 7)), mode="reflect")
    assert np.array_equal(padded[0, 0].numpy(), expected)
