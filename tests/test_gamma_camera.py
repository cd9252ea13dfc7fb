"""Gamma-camera physics: resolution and efficiency formulas against hand values, PSF width
measured on simulated images, Poisson statistics, timing rule, grids and the catalogue kind."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from medrestore.core.errors import ConfigError, InputError
from medrestore.core.image import Image
from medrestore.core.random import make_generator
from medrestore.physics.blur import FWHM_PER_SIGMA
from medrestore.physics.degradations import (
    BlurDownsample,
    Compose,
    GammaCamera,
    RandomGammaCamera,
    build_degradation,
    degradation_from_record,
)
from medrestore.physics.gamma_camera import (
    COLLIMATORS,
    CameraHead,
    CountLevel,
    INTRINSIC,
    PlanarAcquisition,
    acquire_until_peak,
    area_resample,
    bin_counts,
    collimator_by_name,
    collimator_name,
    count_scale,
    depth_dependent_response,
    detector_response,
    effective_hole_length,
    geometric_efficiency,
    intrinsic_resolution,
    isotope_by_name,
    lead_attenuation_coefficient,
    overlap_matrix,
    simulate_planar,
    system_resolution,
    system_sensitivity,
)

TC99M = isotope_by_name("Tc-99m")

# Hand calculation (independent arithmetic): μ_Pb(140.5 keV) by log-log interpolation between
# NIST 100 keV (5.549 cm²/g) and 150 keV (2.014 cm²/g) = 2.3718 cm²/g → 2.6920 /mm, 2/μ = 0.7429 mm;
# L_eff = L − 0.7429; R_g = d (L_eff + z + 6) / L_eff; R_s = hypot(R_g, 3.8).
HAND_SYSTEM_RESOLUTION = {
    ("LEHR", 0.0): 4.0482, ("LEHR", 50.0): 5.3578, ("LEHR", 100.0): 7.2363, ("LEHR", 150.0): 9.3468,
    ("LEGP", 0.0): 4.2144, ("LEGP", 50.0): 6.2217, ("LEGP", 100.0): 8.8841, ("LEGP", 150.0): 11.7650,
}  # fmt: skip
HAND_EFFICIENCY = {"LEHR": 1.17127e-4, "LEGP": 2.01194e-4}


def _point_source(size: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    image = torch.zeros(size, size, dtype=dtype)
    image[size // 2, size // 2] = 1.0
    return image


def _half_maximum_width(profile: np.ndarray, spacing: float) -> float:
    """FWHM of a single peak by linear interpolation of the two half-maximum crossings."""
    peak = int(np.argmax(profile))
    half = profile[peak] / 2.0
    right = peak + int(np.argmax(profile[peak:] < half))
    left = peak - int(np.argmax(profile[peak::-1] < half))
    right_cross = right - 1 + (profile[right - 1] - half) / (profile[right - 1] - profile[right])
    left_cross = left + 1 - (profile[left + 1] - half) / (profile[left + 1] - profile[left])
    return float((right_cross - left_cross) * spacing)


def test_lead_attenuation_matches_nist_table() -> None:
    assert lead_attenuation_coefficient(150.0) == pytest.approx(2.014 * 11.35 / 10, rel=1e-12)
    assert lead_attenuation_coefficient(100.0) == pytest.approx(5.549 * 11.35 / 10, rel=1e-12)
    assert lead_attenuation_coefficient(140.5) == pytest.approx(2.6920, abs=2e-4)
    # below the K edge (88 keV) lead is more transparent than just above it
    assert lead_attenuation_coefficient(85.0) < lead_attenuation_coefficient(90.0)
    with pytest.raises(ConfigError, match="50–500 keV"):
        lead_attenuation_coefficient(20.0)


@pytest.mark.parametrize(("name", "distance"), sorted(HAND_SYSTEM_RESOLUTION))
def test_system_resolution_matches_hand_values(name: str, distance: float) -> None:
    resolution = system_resolution(collimator_by_name(name), distance, TC99M)
    assert resolution == pytest.approx(HAND_SYSTEM_RESOLUTION[(name, distance)], abs=2e-3)


def test_efficiency_matches_hand_values_and_vendor_scale() -> None:
    for name, hand in HAND_EFFICIENCY.items():
        assert geometric_efficiency(COLLIMATORS[name], 140.5) == pytest.approx(hand, rel=1e-4)
    # counts per minute per µCi (1 µCi = 2.22e6 disintegrations/min): the e.cam data sheets quote
    # about 200 (LEHR) and 330 (LEAP); the formula gives 208 and 358.
    cpm_per_microcurie = {n: system_sensitivity(COLLIMATORS[n], TC99M) * 2.22e6 for n in ("LEHR", "LEGP")}
    assert cpm_per_microcurie["LEHR"] == pytest.approx(207, rel=0.02)
    assert cpm_per_microcurie["LEGP"] == pytest.approx(356, rel=0.02)


def test_high_resolution_collimator_is_sharper_but_less_sensitive() -> None:
    lehr, legp = COLLIMATORS["LEHR"], COLLIMATORS["LEGP"]
    for distance in (0.0, 25.0, 100.0, 200.0):
        assert system_resolution(lehr, distance, TC99M) < system_resolution(legp, distance, TC99M)
    assert system_sensitivity(lehr, TC99M) < 0.6 * system_sensitivity(legp, TC99M)
    # resolution degrades linearly with distance at slope d / L_eff
    slope = (system_resolution(legp, 300.0, TC99M, CameraHead(intrinsic_fwhm_mm=0.0)) -
             system_resolution(legp, 200.0, TC99M, CameraHead(intrinsic_fwhm_mm=0.0))) / 100.0  # fmt: skip
    assert slope == pytest.approx(legp.hole_diameter_mm / effective_hole_length(legp, 140.5), rel=1e-12)


def test_isotope_energy_changes_intrinsic_resolution_and_penetration() -> None:
    thallium, indium = isotope_by_name("tl201"), isotope_by_name("In-111")
    assert intrinsic_resolution(thallium.imaging_energy_kev) == pytest.approx(3.8 * math.sqrt(140.5 / 72.0), rel=1e-12)
    assert indium.penetration_energy_kev == 245.4 and indium.photon_yield == pytest.approx(1.847)
    lehr = COLLIMATORS["LEHR"]
    assert effective_hole_length(lehr, 245.4) < effective_hole_length(lehr, 140.5) < effective_hole_length(lehr, 72.0)
    with pytest.raises(ConfigError, match="unknown isotope"):
        isotope_by_name("F-18")
    with pytest.raises(ConfigError, match="unknown collimator"):
        collimator_by_name("pinhole")
    assert collimator_by_name("leap").name == "LEGP"
    assert PlanarAcquisition("LEHR", "Tc-99m").within_energy_rating
    assert not PlanarAcquisition("LEHR", "In-111").within_energy_rating
    assert PlanarAcquisition("MEGP", "In-111").within_energy_rating


@pytest.mark.parametrize("collimator", ["LEHR", "LEGP"])
@pytest.mark.parametrize("distance", [0.0, 50.0, 100.0, 150.0])
def test_point_source_image_has_the_formula_fwhm(collimator: str, distance: float) -> None:
    acquisition = PlanarAcquisition(collimator, distance_mm=distance)
    pixel = 0.25
    response = detector_response(_point_source(257), pixel, acquisition).numpy()
    expected = acquisition.resolution_mm
    assert _half_maximum_width(response[128], pixel) == pytest.approx(expected, rel=0.01)
    assert _half_maximum_width(response[:, 128], pixel) == pytest.approx(expected, rel=0.01)
    assert response.sum() == pytest.approx(acquisition.sensitivity, rel=1e-9)  # counts/s per Bq


@pytest.mark.parametrize("name", ["INTR", "intr", "NONE", "Intrinsic", "no-collimator"])
def test_an_intrinsic_acquisition_is_the_intrinsic_resolution_alone(name: str) -> None:
    """No collimator: ``R_s = R_i(E)`` at any distance (3.8 mm for Tc-99m, × √(140.5 / 72) for Tl-201's x-rays),
    a point source imaged that wide, and ``S = ½ · Σ yields · ε`` (2π geometry)."""
    assert collimator_name(name) == INTRINSIC
    near, far = PlanarAcquisition(name, distance_mm=0.0), PlanarAcquisition(name, distance_mm=500.0)
    assert near.intrinsic and near.collimator == INTRINSIC and near.within_energy_rating
    assert near.resolution_mm == far.resolution_mm == 3.8
    assert PlanarAcquisition(name, "Tl-201").resolution_mm == pytest.approx(3.8 * math.sqrt(140.5 / 72.0))
    assert near.sensitivity == pytest.approx(0.5 * 0.885 * 0.9)
    pixel = 0.25
    response = detector_response(_point_source(257), pixel, far).numpy()
    assert _half_maximum_width(response[128], pixel) == pytest.approx(3.8, rel=0.01)
    assert response.sum() == pytest.approx(far.sensitivity, rel=1e-9)
    # every collimator is sharper without it, and the name is refused where a collimator's holes are needed
    assert all(PlanarAcquisition(c, distance_mm=0.0).resolution_mm > near.resolution_mm for c in COLLIMATORS)
    with pytest.raises(ConfigError, match="intrinsic acquisition"):
        collimator_by_name(name)
    camera = GammaCamera(collimator=name, pixel_size_mm=1.0)
    assert camera.collimator == INTRINSIC and camera.acquisition.resolution_mm == 3.8


def test_depth_dependent_response_uses_each_pixel_distance() -> None:
    acquisition = PlanarAcquisition("LEGP")
    activity = torch.zeros(121, 242, dtype=torch.float64)
    activity[60, 60] = activity[60, 181] = 1.0  # one point in each half
    distance = torch.zeros_like(activity)
    distance[:, 121:] = 150.0
    response = depth_dependent_response(activity, distance, 0.5, acquisition, levels=4).numpy()
    for column, z in ((60, 0.0), (181, 150.0)):
        expected = dataclasses.replace(acquisition, distance_mm=z).resolution_mm
        assert _half_maximum_width(response[:, column], 0.5) == pytest.approx(expected, rel=0.01)
    constant = depth_dependent_response(activity, torch.tensor(40.0, dtype=torch.float64), 0.5, acquisition)
    at_40 = detector_response(activity, 0.5, dataclasses.replace(acquisition, distance_mm=40.0))
    torch.testing.assert_close(constant, at_40)
    # the hat weights are a partition of unity: every becquerel is counted once at any distance
    varying = 150.0 * torch.rand(activity.shape, generator=make_generator(0), dtype=torch.float64)
    mixed = depth_dependent_response(torch.ones_like(activity), varying, 0.5, acquisition, levels=5)
    assert float(mixed.sum()) == pytest.approx(activity.numel() * acquisition.sensitivity, rel=1e-9)
    with pytest.raises(InputError, match="distance map"):
        depth_dependent_response(activity, -torch.ones_like(activity), 0.5, acquisition)


def test_poisson_point_source_width_after_binning() -> None:
    """Second moments of 10⁶ counts: σ² = (R_s/2.3548)² + (1² − 0.5²)/12 mm² per axis (grouping 0.5-mm
    samples into 1-mm detector pixels adds Sheppard's term)."""
    acquisition = PlanarAcquisition("LEGP", distance_mm=100.0)
    counts = simulate_planar(
        _point_source(192), 0.5, acquisition, CountLevel(total_counts=1e6), make_generator(11), factor=2
    ).numpy()
    grid = (np.arange(96) - 47.75) * 1.0  # binned centres in mm relative to the source (index 96 of 0.5-mm grid)
    for axis in (0, 1):
        marginal = counts.sum(axis=1 - axis)
        mean = (marginal * grid).sum() / marginal.sum()
        variance = (marginal * (grid - mean) ** 2).sum() / marginal.sum()
        expected = (acquisition.resolution_mm / FWHM_PER_SIGMA) ** 2 + (1.0**2 - 0.5**2) / 12.0
        assert abs(mean) < 0.02
        assert math.sqrt(variance) * FWHM_PER_SIGMA == pytest.approx(math.sqrt(expected) * FWHM_PER_SIGMA, rel=0.01)


def test_counts_are_poisson_with_the_requested_level() -> None:
    flat = torch.full((128, 128), 3.0, dtype=torch.float64)
    acquisition = PlanarAcquisition("LEHR", distance_mm=50.0)
    samples = torch.stack(
        [simulate_planar(flat, 1.0, acquisition, CountLevel(peak_counts=40.0), make_generator(s), 4) for s in range(20)]
    ).numpy()
    assert samples.shape == (20, 32, 32) and np.array_equal(samples, np.round(samples))
    n = samples.size  # flat activity: every detector pixel expects 40 counts
    assert abs(samples.mean() - 40.0) <= 5 * math.sqrt(40.0 / n)
    assert abs(samples.var() - 40.0) <= 5 * math.sqrt((40.0 + 2 * 40.0**2) / n)  # Var = mean
    totals = [
        float(simulate_planar(flat, 1.0, acquisition, CountLevel(total_counts=2e4), make_generator(s), 4).sum())
        for s in range(40)
    ]
    assert abs(np.mean(totals) - 2e4) <= 5 * math.sqrt(2e4 / 40)
    assert np.var(totals, ddof=1) == pytest.approx(2e4, rel=0.6)  # 40 samples of a variance: ±~45 %


def test_acquisition_time_scales_with_sensitivity_and_decay() -> None:
    activity = torch.zeros(64, 64, dtype=torch.float64)
    activity[16:48, 16:48] = 1000.0  # Bq per pixel
    totals = {}
    for name in ("LEHR", "LEGP"):
        acquisition = PlanarAcquisition(name, distance_mm=10.0)
        counts = simulate_planar(activity, 1.0, acquisition, CountLevel(acquisition_time_s=600.0), make_generator(3))
        live_time = (1 - math.exp(-math.log(2) * 600.0 / TC99M.half_life_s)) / TC99M.decay_constant
        expected = float(activity.sum()) * acquisition.sensitivity * live_time
        assert float(counts.sum()) == pytest.approx(expected, abs=5 * math.sqrt(expected))
        totals[name] = float(counts.sum())
    ratio = geometric_efficiency(COLLIMATORS["LEHR"], 140.5) / geometric_efficiency(COLLIMATORS["LEGP"], 140.5)
    assert totals["LEHR"] / totals["LEGP"] == pytest.approx(ratio, rel=0.02)
    assert count_scale(torch.ones(2, 2), CountLevel(acquisition_time_s=60.0)) == 60.0


def test_acquire_until_peak_extends_in_steps() -> None:
    rate = torch.full((16, 16), 0.02, dtype=torch.float64)  # 25 counts need ~1250 s
    timed = acquire_until_peak(rate, TC99M.half_life_s, 25.0, 600.0, 300.0, 3600.0, make_generator(5))
    times = [t for t, _ in timed.stops]
    assert times[0] == 600.0 and all(b - a == 300.0 for a, b in zip(times, times[1:]))
    assert timed.reached and timed.stops[-1][1] >= 25 and all(peak < 25 for _, peak in timed.stops[:-1])
    assert timed.duration_s == times[-1] and float(timed.counts.max()) == timed.stops[-1][1]
    peaks = [peak for _, peak in timed.stops]
    assert peaks == sorted(peaks)  # extending never removes counts
    never = acquire_until_peak(rate * 1e-4, TC99M.half_life_s, 25.0, 600.0, 1000.0, 2000.0, make_generator(5))
    assert not never.reached and [t for t, _ in never.stops] == [600.0, 1600.0, 2000.0]


def test_binning_and_area_resampling_conserve_counts() -> None:
    x = torch.arange(36.0, dtype=torch.float64).reshape(6, 6)
    assert torch.equal(bin_counts(x, 3), torch.tensor([[63.0, 90.0], [225.0, 252.0]], dtype=torch.float64))
    assert bin_counts(torch.ones(7, 9), 2).shape == (3, 4)  # trailing partial blocks dropped
    # aligned grids: area resampling to a 2× coarser centred grid is binning
    torch.testing.assert_close(area_resample(x, 1.0, (3, 3), 2.0), bin_counts(x, 2))
    # 3 source pixels of 1 mm onto 2 target pixels of 1.5 mm: [a + b/2, b/2 + c]
    np.testing.assert_allclose(overlap_matrix(np.array([-1.5, -0.5, 0.5, 1.5]), np.array([-1.5, 0.0, 1.5])),
                               [[1.0, 0.5, 0.0], [0.0, 0.5, 1.0]])  # fmt: skip
    random = torch.rand(50, 70, generator=make_generator(0), dtype=torch.float64)
    moved = area_resample(random, 0.67, (40, 40), 1.3)  # 40 × 1.3 = 52 mm covers 70 × 0.67 = 46.9 mm
    assert float(moved.sum()) == pytest.approx(float(random.sum()), rel=1e-12)


def test_scatter_keeps_the_window_rate_and_widens_the_tails() -> None:
    point = _point_source(201)
    clean = detector_response(point, 1.0, PlanarAcquisition("LEHR"))
    scattered = detector_response(point, 1.0, PlanarAcquisition("LEHR", scatter_fraction=0.3))
    assert float(scattered.sum()) == pytest.approx(float(clean.sum()), rel=1e-9)
    assert float(scattered[100, 100]) == pytest.approx(0.7 * float(clean[100, 100]), rel=0.01)
    assert float(scattered[100, 160]) > 100 * float(clean[100, 160])


def test_gamma_camera_kind_defaults_shape_and_record_round_trip() -> None:
    transform = build_degradation("gamma-camera", {})
    assert transform == GammaCamera(4, None, 100.0, "Tc-99m", None, None, None) and transform.keeps_input_total
    assert transform.acquisition.collimator == "LEGP"  # until an image's own collimator resolves it
    x = 50.0 * torch.rand(2, 258, 257, generator=make_generator(1))
    counts = transform(x, make_generator(2))
    assert counts.shape == (2, 64, 64) and torch.equal(counts, counts.round())
    # the input's values are counts: the binned counts keep the total of the binned region (Poisson spread)
    kept = float(x[..., :256, :256].sum())
    assert abs(float(counts.sum()) - kept) <= 5 * math.sqrt(kept)
    assert torch.equal(counts, transform(x, make_generator(2)))
    expected = transform.expected_counts(x)  # what the Poisson draw is made from, summing to the kept total
    assert float(expected.sum()) == pytest.approx(kept, rel=1e-6) and torch.equal(counts, torch.poisson(expected, generator=make_generator(2)))
    custom = build_degradation(
        "gamma-camera",
        {"collimator": "lehr", "scale": 2, "distance_mm": 50, "isotope": "i123", "total_counts": 1e5,
         "scatter_fraction": 0.1},  # fmt: skip
    )
    record = custom.record(seed=9)
    assert record["collimator"] == "LEHR" and record["isotope"] == "I-123" and record["peak_counts"] is None
    rebuilt, seed = degradation_from_record(record)
    assert rebuilt == custom and seed == 9
    assert degradation_from_record(transform.record(1))[0] == transform


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"collimator": "pinhole"}, "unknown collimator"),
        ({"peak_counts": 10, "total_counts": 100}, "not both"),
        ({"scale": 0}, "scale must be an integer >= 1"),
        ({"distance_mm": -5}, "distance_mm must be a finite number >= 0"),
        ({"scatter_fraction": 0.99}, "scatter_fraction must be in"),
        ({"isotope": "Lu-177"}, "unknown isotope"),
    ],
)
def test_gamma_camera_kind_rejects_bad_parameters(parameters: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_degradation("gamma-camera", parameters)


def test_gamma_camera_on_images_scales_the_affine_and_uses_the_spacing() -> None:
    affine = np.array([[0.0, -0.5, 0.0, 30.0], [0.5, 0.0, 0.0, -12.0], [0.0, 0.0, 3.0, 4.0], [0, 0, 0, 1]])
    data = torch.rand(256, 256, 3, generator=make_generator(4))  # three frames
    image = Image(data, affine, 2, "unknown")
    transform = GammaCamera()
    resolved = transform.resolve_for_image(image)
    assert resolved.pixel_size_mm == 0.5 and resolved.record(0)["pixel_size_mm"] == 0.5
    result = transform.apply_image(image, seed=3)
    assert result.shape == (64, 64, 3) and result.modality == "nm" and result.spacing == (2.0, 2.0)
    np.testing.assert_allclose(result.affine[:3, :2], affine[:3, :2] * 4)
    np.testing.assert_allclose(result.affine[:3, 3], affine[:3, 3] + affine[:3, :2].sum(axis=1) * 1.5)
    # the count level is the input's own total over all frames, recorded by resolve_for_image
    total = float(data.sum(dtype=torch.float64))
    assert resolved.total_counts == pytest.approx(total) and resolved.peak_counts is None
    assert abs(float(result.data.sum()) - total) <= 5 * math.sqrt(total)
    peak = GammaCamera(peak_counts=400.0).apply_image(image, seed=3)  # the frames share one count scale
    assert 300 < float(peak.data.max()) < 500
    with pytest.raises(InputError, match="square pixels"):
        transform.resolve_for_image(Image.from_array(np.ones((8, 8), np.float32), spacing=(1.0, 2.0)))
    with pytest.raises(InputError, match="a 3-D image is read as a stack of planar frames"):  # frames of frames
        transform.apply_image(Image.from_array(np.ones((8, 8, 8, 2), np.float32), spatial_ndim=3), seed=0)


def test_compose_resolves_the_pixel_size_each_child_sees() -> None:
    image = Image.from_array(np.ones((128, 128), np.float32), spacing=(0.5, 0.5))
    resolved = Compose((BlurDownsample(2), GammaCamera())).resolve_for_image(image)
    # after ×2 downsampling: 1-mm pixels, and the 64 × 64 ones hold 4096 counts
    assert resolved.transforms[1] == GammaCamera(collimator="LEGP", pixel_size_mm=1.0, total_counts=4096.0)
    rebuilt, _ = degradation_from_record(resolved.record(0))
    assert rebuilt == resolved and resolved.apply_image(image, seed=0).shape == (16, 16)


def test_return_counts_false_gives_block_means_in_input_units() -> None:
    flat = torch.full((64, 64), 7.0, dtype=torch.float64)
    values = GammaCamera(peak_counts=1e6, return_counts=False)(flat, make_generator(0))
    assert float(values.mean()) == pytest.approx(7.0, rel=1e-3)
    negative = torch.full((8, 8), -1.0)
    with pytest.raises(InputError, match="non-negative"):
        GammaCamera(scale=2)(negative, make_generator(0))


def test_random_gamma_camera_draws_within_its_ranges() -> None:
    sampler = RandomGammaCamera(("LEHR", "LEGP"), distance_range=(20.0, 80.0), counts_range=(50.0, 5000.0))
    draws = [sampler.sample(make_generator(seed)) for seed in range(30)]
    assert {d.collimator for d in draws} == {"LEHR", "LEGP"}
    assert all(20.0 <= d.distance_mm <= 80.0 and 50.0 <= d.peak_counts <= 5000.0 for d in draws)
    assert sampler.sample(make_generator(3)) == sampler.sample(make_generator(3))
    with pytest.raises(ConfigError, match="unknown collimator"):
        RandomGammaCamera(("LEHR", "XX"))
    ranged = RandomGammaCamera(counts_range=None, pixel_size_range=(0.5, 5.0))
    sizes = [ranged.sample(make_generator(seed)) for seed in range(400)]
    assert all(d.keeps_input_total and 0.5 <= d.pixel_size_mm <= 5.0 for d in sizes)
    # log-uniform: half of the draws below the geometric mean √(0.5 · 5) ≈ 1.58 mm
    below = sum(d.pixel_size_mm < math.sqrt(2.5) for d in sizes) / len(sizes)
    assert abs(below - 0.5) < 0.1
    # the draws before the pixel size are those of a sampler without a range
    assert [d.distance_mm for d in sizes[:5]] == [RandomGammaCamera().sample(make_generator(s)).distance_mm for s in range(5)]
    with pytest.raises(ConfigError, match="pixel_size_range"):
        RandomGammaCamera(pixel_size_range=(0.0, 2.0))
