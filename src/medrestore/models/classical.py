"""Classical (non-learned) denoising baselines as functions on tensors with typed configs.

Every method takes the same input as a network, a real float tensor ``(N, C, *spatial)`` with
2 or 3 spatial axes, filters each ``(n, c)`` image or volume independently over its spatial
axes only, and returns a new tensor of the same shape, dtype and device (computed in float64
on the CPU; the input is never modified and no gradient flows through).

* ``median``: scipy.ndimage.median_filter, a ``size``-wide cube, reflected borders.
* ``gaussian-filter``: scipy.ndimage.gaussian_filter, standard deviation ``sigma`` pixels,
  truncated at 4σ, reflected borders.
* ``nlm``: non-local means (Buades, Coll & Morel, CVPR 2005) via
  skimage.restoration.denoise_nl_means with filtering strength ``h = h_factor · σ̂`` where
  ``σ̂`` is skimage's wavelet noise estimate (Donoho & Johnstone 1994) unless ``sigma`` is given.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Generic, TypeVar

import numpy as np
import scipy.ndimage
import torch

from medrestore.core.errors import InputError
from medrestore.models.blocks import require

ConfigT = TypeVar("ConfigT")


@dataclasses.dataclass(frozen=True)
class MedianConfig:
    """Options of the median filter: ``size`` is the odd or even width of the cubic window in pixels."""

    size: int = 3

    def __post_init__(self) -> None:
        require(self.size >= 1, "median", f"size must be at least 1, got {self.size}")


@dataclasses.dataclass(frozen=True)
class GaussianFilterConfig:
    """Options of the Gaussian filter: ``sigma`` is the standard deviation in pixels (same on every axis)."""

    sigma: float = 1.0

    def __post_init__(self) -> None:
        require(self.sigma > 0.0, "gaussian-filter", f"sigma must be positive, got {self.sigma}")


@dataclasses.dataclass(frozen=True)
class NonLocalMeansConfig:
    """Options of non-local means.

    Attributes:
        patch_size: width of the compared patches (pixels).
        patch_distance: maximal search distance (pixels).
        h_factor: filtering strength relative to the noise level, ``h = h_factor · σ``.
        sigma: noise standard deviation in image units; ``None`` estimates it per image.
        fast_mode: skimage's fast (uniform patch weights) algorithm.
    """

    patch_size: int = 5
    patch_distance: int = 6
    h_factor: float = 0.8
    sigma: float | None = None
    fast_mode: bool = True

    def __post_init__(self) -> None:
        require(self.patch_size >= 1, "nlm", f"patch_size must be at least 1, got {self.patch_size}")
        require(self.patch_distance >= 1, "nlm", f"patch_distance must be at least 1, got {self.patch_distance}")
        require(self.h_factor > 0.0, "nlm", f"h_factor must be positive, got {self.h_factor}")
        require(self.sigma is None or self.sigma >= 0.0, "nlm", f"sigma must be non-negative, got {self.sigma}")


@dataclasses.dataclass(frozen=True)
class ClassicalMethod(Generic[ConfigT]):
    """A classical method bound to its config: ``method(image)`` applies ``function(image, config)``.

    Attributes:
        name: registry name, e.g. ``"median"``.
        function: ``(tensor (N, C, *spatial), config) → tensor`` of the same shape.
        config: the method's frozen options.
    """

    name: str
    function: Callable[[torch.Tensor, ConfigT], torch.Tensor]
    config: ConfigT

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return self.function(image, self.config)


def _as_array(image: torch.Tensor, method_name: str) -> np.ndarray:
    """Check ``(N, C, *spatial)`` real float input and return a float64 NumPy copy."""
    if image.ndim not in (4, 5):
        raise InputError(
            None, f"{method_name} expects (N, C, *spatial) input with 2 or 3 spatial axes, got shape {tuple(image.shape)}"
        )
    if image.is_complex() or not image.is_floating_point():
        raise InputError(None, f"{method_name} expects a real floating-point tensor, got {image.dtype}")
    return image.detach().to("cpu", torch.float64).numpy().copy()


def _like(array: np.ndarray, image: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).to(device=image.device, dtype=image.dtype)


def median_filter(image: torch.Tensor, config: MedianConfig) -> torch.Tensor:
    """Median of each ``size``-wide window over the spatial axes of ``(N, C, *spatial)``."""
    array = _as_array(image, "median")
    window = (1, 1) + (config.size,) * (array.ndim - 2)
    return _like(scipy.ndimage.median_filter(array, size=window, mode="reflect"), image)


def gaussian_filter(image: torch.Tensor, config: GaussianFilterConfig) -> torch.Tensor:
    """Convolution with ``exp(−r²/2σ²)`` (normalised, truncated at 4σ) over the spatial axes of ``(N, C, *spatial)``."""
    array = _as_array(image, "gaussian-filter")
    sigmas = (0.0, 0.0) + (config.sigma,) * (array.ndim - 2)
    return _like(scipy.ndimage.gaussian_filter(array, sigma=sigmas, mode="reflect", truncate=4.0), image)


def non_local_means_single(array: np.ndarray, config: NonLocalMeansConfig) -> np.ndarray:
    """Non-local means of one float64 image or volume (2 or 3 axes, no channel axis)."""
    import skimage.restoration  # only here: loading scikit-image costs every other command about 0.1 s

    sigma = config.sigma
    if sigma is None:
        sigma = float(np.mean(skimage.restoration.estimate_sigma(array, channel_axis=None)))
    if sigma == 0.0:
        return array.copy()
    return skimage.restoration.denoise_nl_means(
        array,
        patch_size=config.patch_size,
        patch_distance=config.patch_distance,
        h=config.h_factor * sigma,
        fast_mode=config.fast_mode,
        sigma=sigma,
        channel_axis=None,
    )


def non_local_means(image: torch.Tensor, config: NonLocalMeansConfig) -> torch.Tensor:
    """Non-local means of every ``(n, c)`` image of ``(N, C, *spatial)``, noise level estimated per image."""
    array = _as_array(image, "nlm")
    output = np.empty_like(array)
    for batch_index in range(array.shape[0]):
        for channel in range(array.shape[1]):
            output[batch_index, channel] = non_local_means_single(array[batch_index, channel], config)
    return _like(output, image)


def make_median(config: MedianConfig) -> ClassicalMethod[MedianConfig]:
    return ClassicalMethod("median", median_filter, config)


def make_gaussian_filter(config: GaussianFilterConfig) -> ClassicalMethod[GaussianFilterConfig]:
    return ClassicalMethod("gaussian-filter", gaussian_filter, config)


def make_non_local_means(config: NonLocalMeansConfig) -> ClassicalMethod[NonLocalMeansConfig]:
    return ClassicalMethod("nlm", non_local_means, config)
