"""Normalisation kinds against NumPy, their inverses and their checkpoint records."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medrestore.core.errors import ConfigError
from medrestore.core.random import make_generator
from medrestore.data.normalisation import (
    FixedRange,
    MinMaxImage,
    NoNormalisation,
    ZScoreDataset,
    ZScoreImage,
    fit_zscore_dataset,
    normalisation_from_record,
)


def _image(seed: int = 0, shape: tuple[int, ...] = (1, 20, 30)) -> torch.Tensor:
    return 40.0 + 7.0 * torch.randn(shape, generator=make_generator(seed))


def test_zscore_image_is_numpy_mean_and_population_std() -> None:
    image = _image()
    parameters = ZScoreImage().parameters(image)
    assert parameters.offset == pytest.approx(float(np.mean(image.numpy(), dtype=np.float64)), abs=1e-9)
    assert parameters.scale == pytest.approx(float(np.std(image.numpy(), dtype=np.float64)), rel=1e-9)
    normalised = ZScoreImage.normalise(image, parameters)
    assert float(normalised.mean()) == pytest.approx(0.0, abs=1e-5)
    assert float(normalised.std(correction=0)) == pytest.approx(1.0, abs=1e-5)


def test_the_same_parameters_apply_to_the_target_and_invert() -> None:
    image, target = _image(0), _image(1)
    normalisation = ZScoreImage()
    parameters = normalisation.parameters(image)
    expected = (target.numpy().astype(np.float64) - image.numpy().mean(dtype=np.float64)) / image.numpy().std(dtype=np.float64)
    assert np.allclose(normalisation.normalise(target, parameters).numpy(), expected, atol=1e-5)
    restored = normalisation.denormalise(normalisation.normalise(target, parameters), parameters)
    assert torch.allclose(restored, target, atol=1e-4)
    assert torch.equal(target, _image(1))  # inputs are not modified


def test_minmax_maps_the_input_to_unit_range() -> None:
    image = _image()
    normalisation = MinMaxImage()
    normalised = normalisation.normalise(image, normalisation.parameters(image))
    assert float(normalised.min()) == 0.0
    assert float(normalised.max()) == pytest.approx(1.0, abs=1e-6)


def test_range_and_none() -> None:
    image = torch.tensor([[0.0, 127.5, 255.0]])
    scaled = FixedRange(scale=255.0).normalise(image, FixedRange(scale=255.0).parameters(image))
    assert torch.equal(scaled, torch.tensor([[0.0, 0.5, 1.0]]))
    assert torch.equal(NoNormalisation().normalise(image, NoNormalisation().parameters(image)), image)
    with pytest.raises(ConfigError):
        FixedRange(scale=0.0)


def test_constant_image_does_not_divide_by_zero() -> None:
    image = torch.full((1, 4, 4), 3.0)
    for normalisation in (ZScoreImage(), MinMaxImage()):
        normalised = normalisation.normalise(image, normalisation.parameters(image))
        assert torch.equal(normalised, torch.zeros_like(image))


def test_fit_zscore_dataset_equals_pooled_numpy_statistics() -> None:
    images = [_image(0, (1, 10, 12)), 3.0 * _image(1, (1, 7, 9)), _image(2, (1, 30, 5)) - 50]
    pooled = np.concatenate([im.numpy().ravel().astype(np.float64) for im in images])
    fitted = fit_zscore_dataset(images)
    assert fitted.mean == pytest.approx(pooled.mean(), rel=1e-12)
    assert fitted.std == pytest.approx(pooled.std(), rel=1e-12)


@pytest.mark.parametrize(
    "normalisation", [ZScoreImage(), ZScoreDataset(mean=1.5, std=2.0), MinMaxImage(), FixedRange(255.0, 1.0), NoNormalisation()]
)
def test_record_round_trip(normalisation) -> None:
    record = normalisation.record()
    assert record["kind"] == normalisation.kind
    assert normalisation_from_record(record) == normalisation


def test_bad_records_are_refused() -> None:
    with pytest.raises(ConfigError, match="unknown normalisation kind 'zscore'"):
        normalisation_from_record({"kind": "zscore"})
    with pytest.raises(ConfigError, match="no field"):
        normalisation_from_record({"kind": "range", "scale": 2.0, "gain": 1.0})
