"""NM super-resolution data: generated scintigram-like maps, pair simulation, sources and the ``nm`` layout."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from medrestore.core.errors import ConfigError, InputError
from medrestore.core.image import Image
from medrestore.core.random import make_generator
from medrestore.data.nm import (
    FixedPairs,
    NMDataConfig,
    NMSimulation,
    NMSources,
    ScintigraphyPairs,
    load_activity_maps,
    nm_sources,
    simulate_original,
    simulate_pair,
)
from medrestore.data.nm_phantoms import bone_scan_phantom, hot_spot_phantom, polyline_distance, skeleton_phantom
from medrestore.io import write_image
from medrestore.physics.gamma_camera import bin_counts
from medrestore.training.config import config_from_mapping

torch.set_num_threads(1)
SHARP_NOISE_FREE = NMSimulation(
    sharp_fraction=1.0, noisy_original_fraction=0.0, original_peak_range=(200.0, 200.0),
    pixel_size_range=(2.0, 2.0), distance_range=(100.0, 100.0),
)


@pytest.mark.parametrize("phantom", [hot_spot_phantom, skeleton_phantom, bone_scan_phantom])
def test_generated_maps_are_seeded_activity_in_unit_range(phantom) -> None:  # type: ignore[no-untyped-def]
    first, again, other = (phantom(96, make_generator(seed)) for seed in (3, 3, 4))
    assert first.shape == (96, 96) and first.dtype == np.float64
    assert float(first.min()) >= 0 and float(first.max()) == pytest.approx(1.0)
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    assert 0.01 < float(first.mean()) < 0.5  # a dim background with brighter structures


def test_bone_scan_has_a_hot_bladder_and_a_bright_spine() -> None:
    activity = bone_scan_phantom(128, make_generator(0))
    column = activity[:, 60:68].mean(axis=1)  # the midline
    assert float(column[108:128].max()) > 0.5  # the bladder, low on the midline
    assert float(activity[20:80, 62:66].mean()) > 1.8 * float(activity[20:80, 20:30].mean())  # spine vs ribs and soft tissue


def test_polyline_distance_matches_the_closed_form() -> None:
    x, y = np.meshgrid(np.linspace(-1, 1, 5), np.linspace(-1, 1, 5))
    distance = polyline_distance(x, y, np.array([[-1.0, 0.0], [1.0, 0.0]]))  # the horizontal axis
    assert np.allclose(distance, np.abs(y))


def test_sharp_noise_free_pair_is_the_default_gamma_camera_acquisition() -> None:
    activity = torch.from_numpy(hot_spot_phantom(64, make_generator(1)))
    sources = [simulate_pair(activity, SHARP_NOISE_FREE, make_generator(seed)) for seed in range(30)]
    coarse, target = sources[0]
    assert coarse.shape == (1, 16, 16) and target.shape == (1, 64, 64) and coarse.dtype == torch.float32
    expected = activity * (200.0 / float(activity.max()))
    assert torch.allclose(target[0].double(), expected, rtol=1e-6)
    # counts / k² keep the original's total: Σ input · 16 ≈ Σ target within Poisson spread
    total = float(expected.sum())
    for coarse_counts, _ in sources[:5]:
        assert abs(float(coarse_counts.sum()) * 16 - total) <= 5 * math.sqrt(total)
    # Poisson: the variance of the counts equals their mean (pooled over pixels and draws)
    counts = torch.stack([c[0].double() * 16 for c, _ in sources])
    mean = counts.mean(dim=0)
    bright = mean > 50
    ratio = float(counts.var(dim=0)[bright].mean() / mean[bright].mean())
    assert ratio == pytest.approx(1.0, abs=0.15)


def test_original_blur_noise_and_peak_follow_their_draws() -> None:
    activity = torch.from_numpy(skeleton_phantom(64, make_generator(2)))
    simulation = NMSimulation(sharp_fraction=0.0, original_fwhm_range=(3.0, 3.0), noisy_original_fraction=1.0,
                              original_peak_range=(50.0, 50.0))  # fmt: skip
    original, expected = simulate_original(activity, simulation, make_generator(0))
    assert float(expected.max()) == pytest.approx(50.0)
    assert torch.equal(original, original.round()) and not torch.equal(original, expected)
    assert float(expected[activity > 0.5].mean()) < 0.9 * 50.0  # thin bright bones lose peak to the 3-pixel blur


def test_mlem_input_is_on_the_fine_grid() -> None:
    activity = torch.from_numpy(hot_spot_phantom(64, make_generator(1)))
    pairs = ScintigraphyPairs([("map", activity)], SHARP_NOISE_FREE, input_kind="mlem", mlem_iterations=3)
    source, target = pairs.pair(0, make_generator(0))
    assert source.shape == target.shape == (1, 64, 64) and pairs.factor(0) == (1, 1) and pairs.input_shape(0) == (64, 64)
    assert float(bin_counts(source[0].double(), 4).sum()) == pytest.approx(float(target.sum()), rel=0.05)
    denoised = ScintigraphyPairs([("map", activity)], SHARP_NOISE_FREE, input_kind="dct-mlem", mlem_iterations=3)
    smooth, same_target = denoised.pair(0, make_generator(0))
    assert smooth.shape == (1, 64, 64) and denoised.factor(0) == (1, 1) and torch.equal(same_target, target)
    assert float(bin_counts(smooth[0].double(), 4).sum()) == pytest.approx(float(target.sum()), rel=0.05)
    rough = lambda x: float((x[0, 1:] - x[0, :-1]).square().mean())  # noqa: E731
    assert rough(smooth) < rough(source)  # the same acquisition, its counts denoised before ML-EM


def test_fixed_pairs_are_drawn_once() -> None:
    maps = [("a", torch.from_numpy(hot_spot_phantom(32, make_generator(0))))]
    fixed = FixedPairs(ScintigraphyPairs(maps, NMSimulation()), draws=3, seed=5)
    assert len(fixed) == 3 and fixed.name(2) == "a/draw2" and fixed.factor(0) == (4, 4)
    first = fixed.pair(1, make_generator(0))
    assert first[0] is fixed.pair(1, make_generator(9))[0]
    assert not torch.equal(fixed.pair(0, make_generator(0))[0], first[0])


def test_activity_maps_from_files_volumes_skimage_and_generators(tmp_path: Path) -> None:
    picture = (np.arange(60 * 80, dtype=np.float32).reshape(60, 80) % 97) * 2.0
    write_image(Image.from_array(picture, spacing=(1.0, 1.0)), tmp_path / "picture.nii.gz")
    volume = np.random.default_rng(0).random((20, 24, 28)).astype(np.float32)
    write_image(Image.from_array(volume), tmp_path / "volume.nii.gz")
    sources = NMSources(files=(str(tmp_path),), slice_fractions=(0.25, 0.75), skimage_images=("camera",),
                        generated=(("hot-spot", 2), ("skeleton", 1)), crops_per_image=2)  # fmt: skip
    maps = load_activity_maps(sources, 32)
    names = [name for name, _ in maps]
    # 1 picture + 3 axes × 2 slices of the volume + camera = 8 pictures × 2 crops, then 3 generated maps
    assert len(maps) == 8 * 2 + 3
    assert "volume.nii.gz[axis0=5]#0" in names and "skimage:camera#1" in names and "skeleton:0:0" in names
    assert all(m.shape == (32, 32) and float(m.min()) >= 0 and float(m.max()) <= 1 for _, m in maps)
    assert torch.equal(maps[0][1], load_activity_maps(sources, 32)[0][1])  # crops are seeded
    with pytest.raises(ConfigError, match="not bundled"):
        NMSources(skimage_images=("eagle",))
    with pytest.raises(InputError, match="no such file"):
        load_activity_maps(NMSources(files=(str(tmp_path / "missing.png"),)), 32)


def test_nm_layout_in_a_training_configuration(tmp_path: Path) -> None:
    mapping = {
        "data": {
            "layout": "nm", "patch_size": [8, 8],
            "nm": {"image_size": 32, "training": {"generated": [["hot-spot", 3]]},
                   "validation": {"generated": [["skeleton", 1]], "phantom_seed": 9}, "fixed_draws": 2},
        },
        "model": {"name": "srresnet", "options": {"width": 4, "blocks": 1}},
    }  # fmt: skip
    config = config_from_mapping(mapping, "test.yaml", tmp_path)
    assert config.data.nm is not None and config.data.nm.fixed_draws == 2
    training, validation = nm_sources(config.data.nm, seed=0)
    assert len(training) == 6 and validation is not None and len(validation) == 2
    assert training.input_shape(0) == (8, 8) and training.factor(0) == (4, 4)
    with pytest.raises(ConfigError, match="nm section"):
        config_from_mapping({**mapping, "data": {**mapping["data"], "layout": "synthetic"}}, "test.yaml")
    with pytest.raises(ConfigError, match="multiple of the scale"):
        NMDataConfig(training=NMSources(), image_size=30)


def test_quadrant_bar_phantom_covers_each_pixel_by_its_gap_fraction() -> None:
    from medrestore.data.nm_phantoms import QUADRANT_BAR_AXES, quadrant_bar_phantom, quadrant_slices

    activity = quadrant_bar_phantom(512, 1.0)
    np.testing.assert_array_equal(activity[200, 100:108], [1, 1, 0, 0, 1, 1, 0, 0])  # 2-mm vertical bars
    np.testing.assert_array_equal(activity[100:110, 300], [1, 1, 0.5, 0, 0, 1, 1, 0.5, 0, 0])  # 2.5-mm horizontal
    np.testing.assert_array_equal(activity[300, 300:308], [1, 0.5, 0, 0, 0, 1, 1, 1])  # 3.5-mm vertical
    assert activity[0, 0] == 0.0 and activity.max() == 1.0  # nothing outside the disc
    partial = quadrant_bar_phantom(64, 1.5, (3.0, 2.0, 3.0, 3.0))
    np.testing.assert_allclose(partial[10:14, 40], [1 / 3, 1.0, 0.0, 2 / 3])  # 1.5-mm pixels over 2-mm bars
    for quadrant, axis in enumerate(QUADRANT_BAR_AXES):  # half the area open in every quadrant's centre
        rows, columns = quadrant_slices(512, quadrant)
        block = activity[rows, columns]
        assert block.shape == (128, 128) and block.mean() == pytest.approx(0.5, abs=0.04)  # whole periods: 0.5
        assert np.ptp(block.mean(axis=1 - axis)) > 0.9 and np.ptp(block.mean(axis=axis)) < 1e-12
    with pytest.raises(ValueError, match="four positive bar widths"):
        quadrant_bar_phantom(64, 1.0, (2.0, 3.0))
