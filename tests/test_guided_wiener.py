"""The guided-NLM + collaborative-Wiener method (``medrestore.models.guided_wiener``), without networks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from medrestore.core.errors import InputError
from medrestore.data.mri_phantom import brain_phantom
from medrestore.models.fast_nlm import fast_non_local_means, guided_non_local_means
from medrestore.models.guided_wiener import (
    DEFAULT_SETTINGS,
    NLM_WIENER_SETTINGS,
    GuidedWienerSettings,
    guided_stages,
    guided_wiener_denoise,
    tissue_box,
    wiener_share_map,
)
from medrestore.physics.noise import add_rician_noise
from medrestore.solvers.collaborative_wiener import collaborative_wiener


def phantom(sigma: float = 0.05, shape: tuple[int, int, int] = (40, 44, 36)) -> tuple[torch.Tensor, torch.Tensor]:
    clean = torch.from_numpy(brain_phantom(shape, seed=3)[0])
    return clean, add_rician_noise(clean, sigma, torch.Generator().manual_seed(0)).to(torch.float32)


def squared_error(estimate: torch.Tensor, clean: torch.Tensor) -> float:
    mask = clean > 0
    return float((estimate[mask] - clean[mask]).double().square().mean())


def test_settings_are_frozen_and_checked() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_SETTINGS.nlm_share = 0.5  # type: ignore[misc]
    with pytest.raises(ValueError, match="nlm_share"):
        GuidedWienerSettings(nlm_share=1.5)
    with pytest.raises(ValueError, match="guide_models"):
        GuidedWienerSettings(guide_models=(), nlm_share=0.4)
    with pytest.raises(ValueError, match="share_ramp"):
        GuidedWienerSettings(share_ramp=(6.0, 1.0))
    assert DEFAULT_SETTINGS.uses_guide and not NLM_WIENER_SETTINGS.uses_guide
    assert NLM_WIENER_SETTINGS.wiener_options() == {"block": 3, "step": 2, "group": 16, "adaptive_above": None, "kaiser_beta": 0.0}


def test_network_free_variant_is_nlm_then_the_wiener_filter_in_the_tissue_box() -> None:
    """``NLM_WIENER_SETTINGS``: plain NLM everywhere, the Wiener estimate alone inside the box; it beats NLM."""
    clean, noisy = phantom(sigma=0.08, shape=(64, 72, 60))
    sigma = 0.08
    ours = guided_wiener_denoise(noisy, sigma, None, NLM_WIENER_SETTINGS)
    nlm = fast_non_local_means(noisy, sigma, 1, 2, 1.0)
    box = tissue_box(noisy, sigma, NLM_WIENER_SETTINGS)
    expected = nlm.clone()
    expected[box] = collaborative_wiener(noisy[box], nlm[box], sigma, block=3, step=2, group=16)
    torch.testing.assert_close(ours, expected)
    assert squared_error(ours, clean) < 0.8 * squared_error(nlm, clean)
    with pytest.raises(InputError, match="3-D"):
        guided_wiener_denoise(noisy[:, :, 0], sigma, None, NLM_WIENER_SETTINGS)


def test_guided_default_is_the_two_stages_with_a_per_voxel_share() -> None:
    """With a guide: ``x̂₁ = (1 − a)·guided NLM + a·NLM``, then ``(1 − b)·x̂₁ + b·W(x̂₁)``, ``b`` from ``|∇x̂₁|/σ``; a guide
    close to the truth (the clean phantom plus a little independent noise) lifts it far above the network-free variant."""
    clean, noisy = phantom()
    sigma, settings = 0.05, DEFAULT_SETTINGS
    guide_volume = clean + 0.01 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))
    seen: list[tuple[int, ...]] = []

    def guide(part: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(part.shape))
        return guide_volume[box]

    box = tissue_box(noisy, sigma, settings)
    ours = guided_wiener_denoise(noisy, sigma, guide, settings)
    assert seen == [tuple(noisy[box].shape)]  # the guide is asked once, for the tissue box
    nlm = fast_non_local_means(noisy, sigma, 1, 2, 1.0)
    guided = guided_non_local_means(noisy[box], guide_volume[box], sigma, 3, 0.7)
    first = (1.0 - settings.nlm_share) * guided + settings.nlm_share * nlm[box]
    wiener = collaborative_wiener(noisy[box], first, sigma, **settings.wiener_options())  # type: ignore[arg-type]
    gradient = np.sqrt(sum(g**2 for g in np.gradient(first.numpy().astype(np.float64)))) / sigma
    share = torch.from_numpy(1.0 - 0.7 * np.clip((gradient - 1.0) / 5.0, 0.0, 1.0)).to(torch.float32)
    assert 0.0 < float((share < 1.0).float().mean()) < 1.0  # the phantom has flat regions and edges
    expected = nlm.clone()
    expected[box] = (1.0 - share) * first + share * wiener
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)
    network_free = guided_wiener_denoise(noisy, sigma, None, NLM_WIENER_SETTINGS)
    assert squared_error(ours, clean) < 0.7 * squared_error(network_free, clean)
    stages = guided_stages(noisy[box], nlm[box], guide_volume[box], sigma, settings)
    torch.testing.assert_close(stages.final, ours[box])
    with pytest.raises(InputError, match="needs a guide"):
        guided_stages(noisy[box], nlm[box], None, sigma, settings)
    with pytest.raises(InputError, match="needs a guide"):
        guided_wiener_denoise(noisy, sigma, None, settings)


def test_wiener_share_map_follows_the_gradient_in_units_of_sigma() -> None:
    """On a linear ramp of slope ``k·σ`` per voxel the share is exactly ``1 − 0.7·clip((k − 1) / 5, 0, 1)``; the slope
    may lie along any axis and its sign does not matter; a ramp of slope 3σ along two axes has gradient 3√2σ."""
    sigma = 2.5
    grid = torch.arange(12, dtype=torch.float32)
    for slope, expected in ((0.0, 1.0), (0.5, 1.0), (1.0, 1.0), (3.5, 0.65), (6.0, 0.3), (20.0, 0.3)):
        for axis in range(3):
            shape = [1, 1, 1]
            shape[axis] = 12
            ramp = (-slope * sigma * grid).reshape(shape).expand(12, 12, 12).contiguous()
            share = wiener_share_map(ramp, sigma)
            assert share.shape == (12, 12, 12) and share.dtype == torch.float32
            torch.testing.assert_close(share, torch.full((12, 12, 12), expected), rtol=0, atol=1e-5)
    diagonal = 3.0 * sigma * (grid[:, None, None] + grid[None, :, None]).expand(12, 12, 12)
    expected = 1.0 - 0.7 * (3.0 * np.sqrt(2.0) - 1.0) / 5.0
    torch.testing.assert_close(wiener_share_map(diagonal, sigma), torch.full((12, 12, 12), float(expected)))
    step = torch.zeros(12, 12, 12)
    step[6:] = 100.0 * sigma  # a sharp edge: the Wiener share drops only on its two planes
    share = wiener_share_map(step, sigma)
    assert torch.all(share[5:7] == 0.3) and torch.all(share[:5] == 1.0) and torch.all(share[7:] == 1.0)
    assert torch.all(wiener_share_map(step, sigma, NLM_WIENER_SETTINGS) == 1.0)  # b = 1 everywhere


def test_tissue_box_holds_the_object_and_a_margin() -> None:
    generator = torch.Generator().manual_seed(0)
    clean = torch.zeros(60, 50, 40)
    clean[20:35, 12:30, 5:25] = 1.0
    noisy = add_rician_noise(clean, 0.1, generator)
    box = tissue_box(noisy, 0.1)
    margin = DEFAULT_SETTINGS.tissue_margin
    for axis, (low, high) in enumerate([(20, 35), (12, 30), (5, 25)]):  # the object's extent ± the margin, clipped
        assert box[axis].start == pytest.approx(max(0, low - margin), abs=1)
        assert box[axis].stop == pytest.approx(min(noisy.shape[axis], high + margin), abs=1)
    pure_noise = add_rician_noise(torch.zeros(30, 30, 30), 0.1, generator)
    assert tissue_box(pure_noise, 0.1) == (slice(0, 30),) * 3
    assert tissue_box(noisy, 0.0) == (slice(0, 60), slice(0, 50), slice(0, 40))
