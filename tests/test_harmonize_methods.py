"""Harmonisation methods: histogram matching, coupled dictionaries, robust PCA / L1, CycleGAN, classifier."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
import scipy.stats
import torch

from medrestore.core.errors import InputError
from medrestore.models.cyclegan import CycleGAN, CycleGANConfig, CycleLossWeights, discriminator_loss, generator_losses
from medrestore.models.harmonizers import (
    CoupledDictionary,
    CoupledDictionaryConfig,
    HistogramMatching,
    average_patches,
    extract_patches,
    learn_coupled_dictionary,
)
from medrestore.physics.scanner import brain_mask
from medrestore.solvers.sparse import l1_difference, robust_pca, sparse_code
from medrestore.training.scanner_classifier import classifier_accuracy, train_scanner_classifier

torch.set_num_threads(1)


def textured_slices(count: int, size: int, seed: int) -> torch.Tensor:
    """Smooth random 'anatomy' inside a disc, values in ~[0.2, 1], zero outside."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:size, :size]
    disc = (rows - size / 2) ** 2 + (cols - size / 2) ** 2 < (0.4 * size) ** 2
    slices = []
    for _ in range(count):
        texture = scipy.ndimage.gaussian_filter(rng.standard_normal((size, size)), 2.0)
        texture = (texture - texture.min()) / (texture.max() - texture.min())
        slices.append(np.where(disc, 0.2 + 0.8 * texture, 0.0))
    return torch.tensor(np.stack(slices), dtype=torch.float32)


def test_patches_round_trip() -> None:
    slices = torch.rand(2, 13, 11)
    columns = extract_patches(slices, 4, 3)
    assert columns.shape[0] == 16
    assert torch.allclose(average_patches(columns, (2, 13, 11), 4, 3), slices, atol=1e-6)


def test_histogram_matching_closes_the_histogram_distance() -> None:
    a = textured_slices(4, 48, 0)
    b = 1.3 * a**1.6  # a monotone contrast change
    matcher = HistogramMatching()
    matcher.fit(a, b)
    test = textured_slices(2, 48, 1)
    mask = brain_mask(test)
    target = b[brain_mask(a)].numpy()  # the pooled scanner-b histogram it is matched to
    before = scipy.stats.wasserstein_distance(test[mask].numpy(), target)
    after = scipy.stats.wasserstein_distance(matcher.harmonize(test, "a2b")[mask].numpy(), target)
    assert after < 0.1 * before
    back = matcher.harmonize(b, "b2a")
    assert scipy.stats.wasserstein_distance(back[brain_mask(a)].numpy(), a[brain_mask(a)].numpy()) < 0.01
    assert torch.equal(matcher.harmonize(test, "a2b")[~mask], test[~mask])  # background untouched


def _sparse_pairs(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    dictionary = torch.randn(32, 8, generator=generator, dtype=torch.float64)
    dictionary /= dictionary.norm(dim=0)
    codes = torch.zeros(8, n, dtype=torch.float64)
    for column in range(n):
        support = torch.randperm(8, generator=generator)[:2]
        codes[support, column] = (0.5 + torch.rand(2, generator=generator, dtype=torch.float64)) * torch.randn(
            2, generator=generator, dtype=torch.float64
        ).sign()
    signals = dictionary @ codes
    return signals[:16], signals[16:], dictionary[:16], dictionary[16:]


def test_coupled_dictionary_learns_a_known_coupling() -> None:
    """Pairs share 2-sparse codes over known dictionaries; learned D_b x(D_a) predicts b from a."""
    generator = torch.Generator().manual_seed(0)
    train_a, train_b, true_a, true_b = _sparse_pairs(1500, generator)
    generator = torch.Generator().manual_seed(1)
    codes = torch.zeros(8, 300, dtype=torch.float64)
    for column in range(300):
        support = torch.randperm(8, generator=generator)[:2]
        codes[support, column] = (0.5 + torch.rand(2, generator=generator, dtype=torch.float64))
    test_a, test_b = true_a @ codes, true_b @ codes
    config = CoupledDictionaryConfig(atoms=8, weight=0.01, iterations=30, coding_iterations=150, training_patches=1500)
    learned_a, learned_b, error = learn_coupled_dictionary(train_a, train_b, config, seed=0)
    assert error < 0.05
    predicted = learned_b @ sparse_code(learned_a, test_a, 0.005, 300)
    relative = float((predicted - test_b).norm() / test_b.norm())
    identity = float((test_a - test_b).norm() / test_b.norm())
    assert identity > 1.0 and relative < 0.25


def test_coupled_dictionary_beats_identity_on_held_out_slices() -> None:
    a = textured_slices(6, 40, 2)
    b = torch.from_numpy(scipy.ndimage.gaussian_filter(1.2 * a.numpy() ** 1.5, (0, 0.8, 0.8))).float()
    method = CoupledDictionary(CoupledDictionaryConfig(patch_size=5, atoms=32, iterations=5, coding_iterations=40, training_patches=3000))
    method.fit(a[:4], b[:4], seed=0)
    predicted = method.harmonize(a[4:], "a2b")
    assert predicted.shape == a[4:].shape
    error = float(((predicted - b[4:]) ** 2).mean())
    identity = float(((a[4:] - b[4:]) ** 2).mean())
    assert error < 0.2 * identity
    state = method.state_dict()
    clone = CoupledDictionary(method.config)
    clone.load_state_dict(state)
    assert torch.allclose(clone.harmonize(a[4:5], "a2b"), predicted[:1], atol=1e-5)


def test_robust_pca_recovers_planted_low_rank_and_sparse() -> None:
    generator = torch.Generator().manual_seed(0)
    low_rank = torch.randn(150, 3, generator=generator, dtype=torch.float64) @ torch.randn(3, 40, generator=generator, dtype=torch.float64)
    sparse = torch.zeros(150, 40, dtype=torch.float64)
    support = torch.rand(150, 40, generator=generator) < 0.05
    sparse[support] = 10 * torch.randn(int(support.sum()), generator=generator, dtype=torch.float64)
    estimate_low, estimate_sparse, info = robust_pca(low_rank + sparse)
    assert info.rank == 3 and info.residual < 1e-7
    assert float((estimate_low - low_rank).norm() / low_rank.norm()) < 1e-5
    assert float((estimate_sparse - sparse).norm() / sparse.norm()) < 1e-5


def test_l1_difference_is_the_lasso_closed_form() -> None:
    observed = torch.tensor([1.0, 0.05, -0.5, 0.0])
    assert torch.allclose(l1_difference(observed, torch.zeros(4), 0.1), torch.tensor([0.9, 0.0, -0.4, 0.0]))


def _tiny_cyclegan() -> CycleGAN:
    torch.manual_seed(0)
    return CycleGAN(CycleGANConfig(base_channels=4, depth=2, discriminator_channels=8, discriminator_layers=2, head_init_scale=1.0))


def test_cyclegan_shapes_and_short_training_lowers_the_losses() -> None:
    model = _tiny_cyclegan()
    real_a = textured_slices(2, 24, 3)[:, None]
    real_b = (1.3 * textured_slices(2, 24, 4) ** 1.5)[:, None]
    assert model.a2b(real_a).shape == real_a.shape and model.b2a(real_b).shape == real_b.shape
    assert model.discriminator_a(real_a).shape[:2] == (2, 1)
    weights = CycleLossWeights()
    optimizer_g = torch.optim.Adam(model.generators(), lr=2e-3, betas=(0.5, 0.999))
    optimizer_d = torch.optim.Adam(model.discriminators(), lr=2e-3, betas=(0.5, 0.999))
    history_g, history_d = [], []
    for _ in range(30):
        loss_g, _, fake_a, fake_b = generator_losses(model, real_a, real_b, weights)
        optimizer_g.zero_grad()
        loss_g.backward()
        optimizer_g.step()
        loss_d = discriminator_loss(model, real_a, real_b, fake_a, fake_b)
        optimizer_d.zero_grad()
        loss_d.backward()
        optimizer_d.step()
        history_g.append(float(loss_g.detach()))
        history_d.append(float(loss_d.detach()))
    assert np.mean(history_g[-5:]) < 0.5 * np.mean(history_g[:5])
    assert np.mean(history_d[-5:]) < np.mean(history_d[:5])


def test_scanner_classifier_tells_noise_levels_apart() -> None:
    generator = torch.Generator().manual_seed(0)
    clean = textured_slices(24, 32, 5)
    noisy = clean + 0.08 * torch.randn(clean.shape, generator=generator)
    smooth = clean + 0.01 * torch.randn(clean.shape, generator=generator)
    slices = torch.cat([noisy[:16], smooth[:16]])
    labels = torch.cat([torch.zeros(16, dtype=torch.long), torch.ones(16, dtype=torch.long)])
    model, losses = train_scanner_classifier(slices, labels, epochs=15, batch_size=8, seed=0)
    assert losses[-1] < losses[0]
    test = torch.cat([noisy[16:], smooth[16:]])
    test_labels = torch.cat([torch.zeros(8, dtype=torch.long), torch.ones(8, dtype=torch.long)])
    assert classifier_accuracy(model, test, test_labels) >= 0.9


def test_sparse_analysis_finds_the_planted_hyperintensity() -> None:
    from medrestore.core.random import make_generator
    from medrestore.metrics.harmonization import hyperintensity_regions
    from medrestore.physics import ScannerAppearance
    from medrestore.tasks.harmonize_analysis import region_contrast, scanner_difference_maps

    rows, cols = np.mgrid[:64, :64]
    ellipse = torch.from_numpy((((rows - 32) / 26.0) ** 2 + ((cols - 32) / 21.0) ** 2 <= 1).astype(np.float32))
    clean = 0.3 + 0.7 * textured_slices(8, 64, 6).clamp(min=0)
    clean = torch.where(ellipse.bool(), clean.clamp(min=0.3), torch.zeros_like(clean))
    # the scanners' contrast curves, noise levels and textures, and b's hyperintensity; the
    # smooth bias fields and a's blur (real scanner differences too, which this strongly
    # textured phantom would spread everywhere) are left out so the local finding is isolated
    slices_a = ScannerAppearance(scanner="a", bias_strength=0.0, blur_fwhm=0.0)(clean, make_generator(0))
    slices_b = ScannerAppearance(scanner="b", bias_strength=0.0)(clean, make_generator(1))
    maps = scanner_difference_maps(slices_a, slices_b)
    region, control = hyperintensity_regions(clean, 0.08)
    region, control = region.any(dim=0), control.all(dim=0)
    sparse = region_contrast(maps.sparse_difference, region, control)
    l1 = region_contrast(maps.l1_difference, region, control)
    assert sparse > 0.05 and l1 > 0.05
    elsewhere = ellipse.bool() & ~region
    for difference in (maps.sparse_difference, maps.l1_difference):
        assert float(difference[region].mean()) > 3 * float(difference[elsewhere].abs().mean())


def test_anatomy_jaccard_ignores_smooth_fields_but_not_moved_anatomy() -> None:
    from medrestore.metrics.harmonization import anatomy_jaccard
    from medrestore.physics.scanner import bias_field

    rows, cols = np.mgrid[:64, :64]
    ellipse = (((rows - 32) / 26.0) ** 2 + ((cols - 32) / 21.0) ** 2 <= 1).astype(np.float32)
    clean = torch.from_numpy(ellipse) * (0.3 + 0.7 * textured_slices(4, 64, 3).clamp(min=0))
    assert anatomy_jaccard(clean, clean) == 1.0
    biased = clean * bias_field(64, 64, 0.1, 0.5)  # a smooth ±10 % field a harmoniser is meant to change
    moved = torch.roll(clean, shifts=2, dims=-1)  # anatomy two pixels off
    assert anatomy_jaccard(biased, clean) > 0.85 > anatomy_jaccard(biased, clean, bias_sigma=None) + 0.05  # the field is divided out
    assert anatomy_jaccard(moved, clean) < 0.6


def test_anatomy_jaccard_at_a_common_resolution_and_outside_an_excluded_region() -> None:
    from medrestore.metrics.harmonization import anatomy_jaccard
    from medrestore.physics.blur import gaussian_blur

    rows, cols = np.mgrid[:64, :64]
    ellipse = (((rows - 32) / 26.0) ** 2 + ((cols - 32) / 21.0) ** 2 <= 1).astype(np.float32)
    clean = torch.from_numpy(ellipse) * (0.3 + 0.7 * textured_slices(4, 64, 3).clamp(min=0))
    blurred = gaussian_blur(clean, fwhm=2.0, spatial_ndim=2)  # the same anatomy seen by a coarser scanner
    assert anatomy_jaccard(blurred, clean, reference_fwhm=2.0) == 1.0 > anatomy_jaccard(blurred, clean)
    bump = torch.from_numpy(np.exp(-((rows - 50) ** 2 + (cols - 32) ** 2) / (2 * 6.0**2))).float()
    bright = clean * (1 + 0.35 * bump)  # a local change the harmoniser is asked to make (or undo)
    region = (bump > 0.5).expand(clean.shape)
    assert anatomy_jaccard(bright, clean, exclude=region) > anatomy_jaccard(bright, clean) + 0.03
    moved = torch.roll(blurred, shifts=2, dims=-1)  # both allowances still see anatomy two pixels off
    assert anatomy_jaccard(moved, clean, exclude=region, reference_fwhm=2.0) < 0.6
    with pytest.raises(InputError):
        anatomy_jaccard(clean, clean, exclude=region[:2])
