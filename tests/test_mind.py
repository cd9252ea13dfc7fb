"""MIND descriptor: closed forms on tiny images, invariances, and the CycleGAN structure term."""

from __future__ import annotations

import math

import pytest
import torch

from medrestore.core.errors import InputError
from medrestore.metrics.mind import mind_descriptor, mind_distance
from medrestore.physics.blur import gaussian_blur


def _texture(seed: int, size: int = 32) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return gaussian_blur(torch.rand(1, size, size, generator=generator, dtype=torch.float64), sigma=1.5, spatial_ndim=2)[0]


def test_mind_of_a_vertical_edge_matches_the_closed_form() -> None:
    # I = 0 on columns < 4, 1 from column 4; without patch smoothing (σ → tiny) at a pixel just
    # left of the edge D = (0, 0, 0, 1) for offsets (−row, +row, −col, +col): V = 1/4 and
    # MIND = exp(−D/V) / max = (1, 1, 1, e⁻⁴).
    image = torch.zeros(8, 8, dtype=torch.float64)
    image[:, 4:] = 1.0
    descriptor = mind_descriptor(image, patch_sigma=1e-3)
    assert descriptor.shape == (4, 8, 8)
    expected = torch.tensor([1.0, 1.0, 1.0, math.exp(-4.0)], dtype=torch.float64)
    torch.testing.assert_close(descriptor[:, 3, 3], expected)
    right_of_edge = torch.tensor([1.0, 1.0, math.exp(-4.0), 1.0], dtype=torch.float64)  # the −col offset crosses it
    torch.testing.assert_close(descriptor[:, 3, 4], right_of_edge)
    torch.testing.assert_close(descriptor[:, 3, 1], torch.ones(4, dtype=torch.float64))  # flat: all offsets alike


def test_mind_ignores_gain_and_offset_but_not_moved_structures() -> None:
    image = _texture(0)
    assert float(mind_distance(image, 3.0 * image + 0.5)) < 1e-6
    contrast = float(mind_distance(image, image.pow(1.5)))  # a monotone contrast curve: small
    moved = float(mind_distance(image, torch.roll(image, 2, dims=-1)))
    other = float(mind_distance(image, _texture(1)))
    assert contrast < 0.2 * moved and moved > 0.05 and other > moved * 0.8


def test_mind_batches_and_3d_and_rejects_bad_input() -> None:
    batch = torch.stack([_texture(0), _texture(1)])[:, None]
    descriptor = mind_descriptor(batch)
    assert descriptor.shape == (2, 1, 4, 32, 32)
    torch.testing.assert_close(descriptor[1, 0], mind_descriptor(_texture(1)))
    volume = torch.rand(12, 12, 12, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    assert mind_descriptor(volume, spatial_ndim=3).shape == (6, 12, 12, 12)
    with pytest.raises(InputError):
        mind_descriptor(torch.zeros(4, 4, dtype=torch.complex64))
    with pytest.raises(InputError):
        mind_distance(torch.zeros(4, 4), torch.zeros(5, 5))


def test_structure_term_is_in_the_generator_loss_and_has_gradients() -> None:
    from medrestore.models.cyclegan import CycleGAN, CycleGANConfig, CycleLossWeights, generator_losses

    torch.manual_seed(0)
    model = CycleGAN(CycleGANConfig(base_channels=4, depth=2, discriminator_channels=4, discriminator_layers=2))
    real_a, real_b = _texture(3, 24)[None, None].float(), _texture(4, 24)[None, None].float()
    plain, parts_plain, _, _ = generator_losses(model, real_a, real_b, CycleLossWeights())
    total, parts, _, _ = generator_losses(model, real_a, real_b, CycleLossWeights(structure=2.0))
    assert "structure" not in parts_plain and parts["structure"] >= 0
    torch.testing.assert_close(float(total.detach()), float(plain.detach()) + 2.0 * parts["structure"], rtol=1e-5, atol=1e-6)
    total.backward()
    assert all(p.grad is not None for p in model.a2b.parameters() if p.requires_grad)
