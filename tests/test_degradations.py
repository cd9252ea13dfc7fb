"""Deterministic transforms, records, the catalogue, random samplers and image geometry."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from medrestore.core.errors import ConfigError
from medrestore.core.image import Image
from medrestore.core.random import make_generator
from medrestore.physics.degradations import (
    CATALOGUE,
    DEGRADATION_KINDS,
    BlurDownsample,
    Compose,
    Degradation,
    GaussianNoise,
    PoissonNoise,
    RandomBlurDownsample,
    RandomGaussianNoise,
    RandomPoissonNoise,
    RandomRicianNoise,
    RandomSpeckle,
    RicianNoise,
    Speckle,
    build_degradation,
    degradation_from_record,
    required_parameters,
)

EXAMPLES: list[Degradation] = [
    GaussianNoise(0.1),
    GaussianNoise(0.03, relative=True),
    RicianNoise(0.05, relative=True),
    PoissonNoise(200.0, return_counts=True),
    Speckle(4.0, form="amplitude", sigma=0.01),
    BlurDownsample(2),
    BlurDownsample(3, fwhm=4.5, spatial_ndim=3),
]


def _oblique_affine() -> np.ndarray:
    angle = np.deg2rad(25.0)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([0.7, 0.9, 1.6])
    affine[:3, 3] = [-20.0, 13.0, 4.5]
    return affine


def test_catalogue_lists_every_kind() -> None:
    assert DEGRADATION_KINDS == ("gaussian", "rician", "poisson", "speckle", "blur-downsample", "gamma-camera", "scanner")
    assert all(CATALOGUE[kind].transform.kind == kind for kind in DEGRADATION_KINDS)
    assert required_parameters("speckle") == ("looks",) and required_parameters("blur-downsample") == ("factor",)


@pytest.mark.parametrize("transform", EXAMPLES, ids=lambda t: t.kind)
def test_record_round_trips_through_json_and_the_catalogue(transform: Degradation) -> None:
    record = json.loads(json.dumps(transform.record(seed=42)))
    assert record["kind"] == transform.kind and record["seed"] == 42
    rebuilt, seed = degradation_from_record(record)
    assert rebuilt == transform and seed == 42
    parameters = {name: value for name, value in record.items() if name not in ("kind", "seed")}
    assert build_degradation(record["kind"], parameters) == transform


def test_records_state_resolved_defaults() -> None:
    assert BlurDownsample(4).record(seed=0) == {
        "kind": "blur-downsample",
        "factor": 4,
        "fwhm": 4.0,
        "spatial_ndim": None,
        "seed": 0,
    }
    assert build_degradation("rician", {"sigma": 1}).record() == {
        "kind": "rician",
        "sigma": 1.0,
        "relative": False,
        "seed": None,
    }


def test_compose_record_round_trips() -> None:
    compose = Compose((BlurDownsample(2), RicianNoise(0.02, relative=True)))
    record = json.loads(json.dumps(compose.record(seed=5)))
    assert record["kind"] == "compose" and [child["kind"] for child in record["transforms"]] == ["blur-downsample", "rician"]
    assert degradation_from_record(record) == (compose, 5)


@pytest.mark.parametrize(
    ("kind", "parameters", "message"),
    [
        ("blur", {"factor": 2}, "unknown degradation kind 'blur'; known kinds: gaussian, rician"),
        ("gaussian", {"sigma": 0.1, "looks": 3}, "gaussian: unknown parameter(s) 'looks'; it takes sigma, relative"),
        ("speckle", {"sigma": 0.1}, "speckle: missing parameter(s) 'looks'"),
        ("gaussian", {"sigma": -0.1}, "gaussian: sigma must be a finite number >= 0"),
        ("gaussian", {"sigma": True}, "gaussian: parameter 'sigma' must be float"),
        ("gaussian", {"sigma": "0.1"}, "gaussian: parameter 'sigma' must be float"),
        ("rician", {"sigma": 0.1, "relative": "yes"}, "rician: parameter 'relative' must be bool"),
        ("poisson", {"peak_counts": 0}, "poisson: peak_counts must be a finite number > 0"),
        ("speckle", {"looks": 2, "form": "log"}, "speckle: form must be one of"),
        ("speckle", {"looks": float("inf")}, "speckle: looks must be a finite number > 0"),
        ("blur-downsample", {"factor": 2.5}, "blur-downsample: parameter 'factor' must be int"),
        ("blur-downsample", {"factor": 0}, "blur-downsample: factor must be an integer >= 1"),
        ("blur-downsample", {"factor": 2, "fwhm": -1.0}, "blur-downsample: fwhm must be a finite number > 0"),
    ],
)
def test_build_degradation_names_the_bad_kind_or_parameter(kind: str, parameters: dict, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        build_degradation(kind, parameters)
    assert message in str(error.value)


def test_build_degradation_accepts_integral_numbers() -> None:
    assert build_degradation("blur-downsample", {"factor": 2.0, "fwhm": 3}) == BlurDownsample(2, 3.0)
    assert build_degradation("poisson", {"peak_counts": 100}) == PoissonNoise(100.0)
    numpy_scalars = {"factor": np.int64(3), "fwhm": np.float32(2.5)}
    assert build_degradation("blur-downsample", numpy_scalars) == BlurDownsample(3, 2.5)  # type: ignore[arg-type]


def test_bad_records_are_refused() -> None:
    with pytest.raises(ConfigError, match="no 'kind'"):
        degradation_from_record({"sigma": 1.0})
    with pytest.raises(ConfigError, match="seed"):
        degradation_from_record({"kind": "gaussian", "sigma": 1.0, "seed": "x"})
    with pytest.raises(ConfigError, match="transforms"):
        degradation_from_record({"kind": "compose", "transforms": "gaussian"})


@pytest.mark.parametrize("transform", EXAMPLES[:5], ids=lambda t: t.kind)
def test_apply_image_is_reproducible_and_keeps_geometry(transform: Degradation) -> None:
    data = torch.rand(24, 20, generator=make_generator(1)) + 0.5
    image = Image(data, _oblique_affine(), 2, "mri", {"source": "phantom"})
    first = transform.apply_image(image, seed=9)
    assert torch.equal(first.data, transform.apply_image(image, seed=9).data)
    assert not torch.equal(first.data, transform.apply_image(image, seed=10).data)
    assert torch.equal(image.data, data) and first.data.dtype == torch.float32
    np.testing.assert_array_equal(first.affine, image.affine)
    assert first.modality == "mri" and first.metadata["source"] == "phantom"


def test_integer_images_are_degraded_in_float32() -> None:
    image = Image.from_array(np.full((64, 64), 100, dtype=np.int16))
    noisy = GaussianNoise(0.1, relative=True).apply_image(image, seed=0)
    assert noisy.data.dtype == torch.float32
    # σ = 0.1 × 100 = 10 over 4096 pixels
    assert float(noisy.data.std()) == pytest.approx(10.0, abs=5 * 10.0 / math.sqrt(2 * 4096))


def test_relative_sigma_uses_the_maximum_over_all_frames() -> None:
    data = torch.ones(200, 200, 2, dtype=torch.float64)
    data[..., 1] = 4.0
    noisy = RicianNoise(0.0, relative=True).apply_image(Image(data, np.eye(4), 2), seed=0)
    assert torch.equal(noisy.data, data)
    noise = GaussianNoise(0.05, relative=True).apply_image(Image(data, np.eye(4), 2), seed=0).data - data
    n = 200 * 200
    for frame in range(2):  # both frames: σ = 0.05 × 4
        assert float(noise[..., frame].std()) == pytest.approx(0.2, abs=5 * 0.2 / math.sqrt(2 * n))


def _world_centroid(image: Image) -> np.ndarray:
    """Intensity-weighted mean world position (mm) of the first frame."""
    frame = image.data if image.data.ndim == image.spatial_ndim else image.data[..., 0]
    grids = torch.meshgrid(*[torch.arange(n, dtype=torch.float64) for n in frame.shape], indexing="ij")
    weights = frame.double()
    index = [float((weights * grid).sum() / weights.sum()) for grid in grids]
    index += [0.0] * (3 - len(index))
    return (image.affine @ np.array([*index, 1.0]))[:3]


def _blob(shape: tuple[int, ...], centre: tuple[float, ...], width: float) -> torch.Tensor:
    grids = torch.meshgrid(*[torch.arange(n, dtype=torch.float64) for n in shape], indexing="ij")
    distance = sum((grid - c) ** 2 for grid, c in zip(grids, centre, strict=True))
    return torch.exp(-distance / (2 * width**2))


@pytest.mark.parametrize("factor", [2, 3])
@pytest.mark.parametrize("spatial_ndim", [2, 3])
def test_blur_downsample_keeps_world_positions(factor: int, spatial_ndim: int) -> None:
    shape = (40, 44, 38)[:spatial_ndim]
    centre = (19.3, 22.8, 17.6)[:spatial_ndim]
    blob = _blob(shape, centre, 3.0)
    frames = torch.stack([blob, 2 * blob], dim=-1)  # a trailing time axis
    image = Image(frames, _oblique_affine(), spatial_ndim)
    reduced = BlurDownsample(factor).apply_image(image, seed=0)
    assert reduced.shape == (*(n // factor for n in shape), 2)
    assert reduced.spacing == pytest.approx(tuple(s * factor for s in image.spacing))
    # a half-voxel convention error would move it by >= 0.35 mm
    np.testing.assert_allclose(_world_centroid(reduced), _world_centroid(image), atol=1e-5)
    torch.testing.assert_close(reduced.data[..., 1], 2 * reduced.data[..., 0])


def test_compose_applies_in_order_with_one_generator() -> None:
    image = Image(torch.rand(30, 30, generator=make_generator(3)), _oblique_affine(), 2)
    compose = Compose((BlurDownsample(2), GaussianNoise(0.1)))
    composed = compose.apply_image(image, seed=8)
    generator = make_generator(8)
    expected = GaussianNoise(0.1).transform_image(BlurDownsample(2).transform_image(image, generator), generator)
    assert torch.equal(composed.data, expected.data)
    np.testing.assert_array_equal(composed.affine, expected.affine)
    tensor = compose(image.data, make_generator(8))
    assert torch.equal(tensor, composed.data)


def test_blur_downsample_on_tensors_uses_its_spatial_ndim() -> None:
    volume = torch.rand(2, 12, 12, 12, generator=make_generator(0))
    assert BlurDownsample(2, spatial_ndim=3)(volume, make_generator(0)).shape == (2, 6, 6, 6)
    assert BlurDownsample(2)(volume, make_generator(0)).shape == (2, 12, 6, 6)


# -- random samplers -------------------------------------------------------------------------

SAMPLERS = [
    RandomGaussianNoise((0.01, 0.1)),
    RandomRicianNoise((0.02, 0.05), relative=True),
    RandomPoissonNoise((10.0, 1e4)),
    RandomSpeckle((1.0, 8.0), sigma_range=(0.0, 0.02)),
    RandomBlurDownsample((2, 3, 4), fwhm_range=(1.0, 6.0)),
]


def _in_range(transform: Degradation, sampler: object) -> bool:
    checks = {
        GaussianNoise: lambda t, s: s.sigma_range[0] <= t.sigma <= s.sigma_range[1],
        RicianNoise: lambda t, s: s.sigma_range[0] <= t.sigma <= s.sigma_range[1] and t.relative,
        PoissonNoise: lambda t, s: s.counts_range[0] <= t.peak_counts <= s.counts_range[1],
        Speckle: lambda t, s: s.looks_range[0] <= t.looks <= s.looks_range[1] and s.sigma_range[0] <= t.sigma <= s.sigma_range[1],
        BlurDownsample: lambda t, s: t.factor in s.factors and s.fwhm_range[0] <= t.fwhm <= s.fwhm_range[1],
    }
    return checks[type(transform)](transform, sampler)


@pytest.mark.parametrize("sampler", SAMPLERS, ids=lambda s: type(s).__name__)
def test_samplers_stay_in_range_and_are_reproducible(sampler: object) -> None:
    generator = make_generator(11)
    draws = [sampler.sample(generator) for _ in range(400)]  # type: ignore[attr-defined]
    assert all(_in_range(draw, sampler) for draw in draws)
    again = make_generator(11)
    assert draws == [sampler.sample(again) for _ in range(400)]  # type: ignore[attr-defined]
    assert len({draw.record()["kind"] for draw in draws}) == 1 and len(set(draws)) > 3


def test_samplers_draw_from_the_stated_distributions() -> None:
    n = 4000
    generator = make_generator(12)
    counts = np.array([RandomPoissonNoise((10.0, 1e4)).sample(generator).peak_counts for _ in range(n)])
    sigmas = np.array([RandomGaussianNoise((0.0, 0.2)).sample(generator).sigma for _ in range(n)])
    factors = np.array([RandomBlurDownsample((2, 4)).sample(generator).factor for _ in range(n)])
    standard_error = 0.5 / math.sqrt(n)  # of a fraction whose true value is 1/2
    # log-uniform: half the draws below the geometric mean, a quarter in the lowest 3/4 decade
    assert abs(float(np.mean(counts < math.sqrt(10.0 * 1e4))) - 0.5) <= 5 * standard_error
    assert abs(float(np.mean(counts < 10.0 * 10**0.75)) - 0.25) <= 5 * math.sqrt(0.25 * 0.75 / n)
    assert abs(float(np.mean(sigmas < 0.1)) - 0.5) <= 5 * standard_error
    assert abs(float(np.mean(factors == 2)) - 0.5) <= 5 * standard_error
    uniform_counts = [RandomPoissonNoise((10.0, 1e4), log_uniform=False).sample(generator).peak_counts for _ in range(n)]
    assert abs(float(np.mean(np.array(uniform_counts) < 5005.0)) - 0.5) <= 5 * standard_error


def test_samplers_refuse_bad_ranges() -> None:
    with pytest.raises(ConfigError, match="low <= high"):
        RandomGaussianNoise((0.2, 0.1))
    with pytest.raises(ConfigError, match="counts_range"):
        RandomPoissonNoise((0.0, 10.0))
    with pytest.raises(ConfigError, match="pair"):
        RandomSpeckle((1.0,))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="factors"):
        RandomBlurDownsample((2, 0))
    assert RandomBlurDownsample((3,)).sample(make_generator(0)) == BlurDownsample(3)
