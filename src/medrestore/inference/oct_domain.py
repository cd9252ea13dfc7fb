"""What the shipped OCT networks learnt, and what the default does with a B-scan outside it.

The shipped OCT networks were trained on single B-scans of one Bioptigen device (the Duke set), 8-bit,
log-compressed, with fully developed speckle of a nearly constant level. Brightness is read on the B-scan smoothed
by a Gaussian of σ = 4 px, so that it does not depend on how much speckle is left (an averaged B-scan has the
single B-scan's layers, without the speckle's peaks): the smoothed 99.5th percentile ``H`` (the bright layers)
is 179–211 over the training frames. Each B-scan is checked before the network sees it (:func:`check_bscan`):

* **Brightness.** A B-scan whose ``H`` is below :attr:`OCTDomain.bright_min` (a dimmer export: another
  device's display window, a lower gain) is mapped linearly onto the training frames' median smoothed
  5th/99.5th percentiles ``(L_t, H_t)`` for the network and mapped back after,

      x' = L_t + g · (x − L),   g = (H_t − L_t) / (H − L),   ŷ = L + (f(x') − L_t) / g,

  with ``L`` its own smoothed 5th percentile, ``g`` at most :attr:`OCTDomain.gain_max` (a nearly flat image is
  not stretched further). Above the threshold nothing is changed.
* **Speckle level.** ``s`` = the median local standard deviation (9 × 9 windows) over the brightest 20 % of
  the B-scan (after its Gaussian smoothing, σ = 4 px), after the mapping above. A network trained on single
  B-scans (``s`` 32–36) smooths an averaged, nearly speckle-free B-scan into something worse than its input;
  below :attr:`OCTDomain.speckle_min` the B-scan is restored by the classical method instead — non-local means
  with its noise estimated from the B-scan (Buades et al., CVPR 2005; the benchmark's parameters) — and the
  record says so. The local standard deviation, unlike a finest-scale (wavelet) noise estimate, does not read
  a finer pixel grid as less noise: speckle resampled ×2 keeps ``s`` ≈ 20.

Thresholds and measured effects: ``benchmarks/oct-domain.md``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from medrestore.models import create_method

BRIGHTNESS_SIGMA = 4.0
"""Gaussian σ (pixels) of the smoothing brightness is read on."""

__all__ = [
    "BRIGHTNESS_SIGMA", "OCT_DOMAIN", "BScanCheck", "OCTDomain", "check_bscan", "classical_bscan", "from_domain",
    "speckle_level", "to_domain",
]  # fmt: skip


@dataclasses.dataclass(frozen=True)
class OCTDomain:
    """The shipped OCT networks' input domain on the 0–255 scale (module docstring).

    Attributes:
        bright_min: smoothed 99.5th percentile below which a B-scan is brought up to the training brightness.
        target_low: the training frames' median smoothed 5th percentile (``L_t``).
        target_high: the training frames' median smoothed 99.5th percentile (``H_t``).
        speckle_min: speckle level (:func:`speckle_level`) below which the classical method runs instead.
        gain_max: the largest brightness gain ``g``.
        nlm: the classical method's options (non-local means; ``h = h_factor · σ̂``).
    """

    bright_min: float = 140.0
    target_low: float = 57.7
    target_high: float = 191.8
    speckle_min: float = 13.5
    gain_max: float = 3.0
    nlm: tuple[tuple[str, float], ...] = (("patch_size", 5), ("patch_distance", 6), ("h_factor", 1.2))


OCT_DOMAIN = OCTDomain()


@dataclasses.dataclass(frozen=True)
class BScanCheck:
    """One B-scan against :class:`OCTDomain`: its statistics and what the default does with it.

    Attributes:
        low: smoothed 5th percentile (``L``).
        high: smoothed 99.5th percentile (``H``).
        gain: the brightness mapping's ``g`` (1: not mapped).
        speckle: speckle level after the mapping.
        network: whether the network restores it (else the classical method).
    """

    low: float
    high: float
    gain: float
    speckle: float
    network: bool

    def to_record(self) -> dict[str, Any]:
        return {"smoothed_p5": round(self.low, 2), "smoothed_p99_5": round(self.high, 2), "gain": round(self.gain, 4),
                "speckle_level": round(self.speckle, 2), "restored_by": "network" if self.network else "nlm"}  # fmt: skip


def speckle_level(bscan: np.ndarray, window: int = 9) -> float:
    """Median local standard deviation (``window``² pixels) over the brightest 20 % of ``bscan`` ``(H, W)``
    (brightness: the B-scan smoothed by a Gaussian of σ = 4 px)."""
    values = np.asarray(bscan, dtype=np.float64)
    mean = ndimage.uniform_filter(values, window)
    spread = np.sqrt(np.maximum(ndimage.uniform_filter(values * values, window) - mean * mean, 0.0))
    smooth = ndimage.gaussian_filter(values, BRIGHTNESS_SIGMA)
    return float(np.median(spread[smooth >= np.percentile(smooth, 80.0)]))


def check_bscan(bscan: torch.Tensor, domain: OCTDomain = OCT_DOMAIN) -> BScanCheck:
    """Where ``bscan`` ``(H, W)`` on the 0–255 scale lies against ``domain``, and what the default does with it."""
    values = bscan.detach().cpu().numpy().astype(np.float64)
    low, high = (float(value) for value in np.percentile(ndimage.gaussian_filter(values, BRIGHTNESS_SIGMA), [5.0, 99.5]))
    gain = 1.0
    if high < domain.bright_min and high > low:
        gain = min((domain.target_high - domain.target_low) / (high - low), domain.gain_max)
    speckle = speckle_level(values) * gain
    return BScanCheck(low, high, gain, speckle, speckle >= domain.speckle_min)


def to_domain(frames: torch.Tensor, check: BScanCheck, domain: OCTDomain = OCT_DOMAIN) -> torch.Tensor:
    """``frames`` ``(F, H, W)`` mapped by ``check``'s brightness mapping (unchanged when ``gain`` is 1)."""
    if check.gain == 1.0:
        return frames
    return (domain.target_low + (frames - check.low) * check.gain).clamp(0.0, 255.0)


def from_domain(restored: torch.Tensor, check: BScanCheck, domain: OCTDomain = OCT_DOMAIN) -> torch.Tensor:
    """The inverse of :func:`to_domain` for the network's output."""
    if check.gain == 1.0:
        return restored
    return check.low + (restored - domain.target_low) / check.gain


def classical_bscan(bscan: torch.Tensor, domain: OCTDomain = OCT_DOMAIN) -> torch.Tensor:
    """The classical method on ``bscan`` ``(H, W)`` (0–255): non-local means with ``domain.nlm``."""
    method = create_method("nlm", dict(domain.nlm))
    return method(bscan[None, None].to(torch.float64))[0, 0].to(bscan.dtype)
