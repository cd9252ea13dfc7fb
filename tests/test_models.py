"""The same automatic checks for every registered architecture, plus a stored reference output.

Reference outputs live in tests/reference/models.npz. When an architecture changes on
purpose (or a new one is registered), regenerate them with

    .venv/bin/python tests/test_models.py --regenerate-reference

and commit the updated file together with the change.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from medrestore.core.errors import ConfigError, InputError, MedrestoreError
from medrestore.core.random import make_generator
from medrestore.core.registry import config_to_options
from medrestore.models import MODELS, architecture_of, create_model, model_config, model_options, model_spatial_ndims

torch.set_num_threads(1)

REFERENCE_FILE = Path(__file__).resolve().parent / "reference" / "models.npz"
REGENERATE = ".venv/bin/python tests/test_models.py --regenerate-reference"

# Small options keep the suite fast; every registered architecture needs an entry here.
SMALL_OPTIONS: dict[str, dict[str, object]] = {
    "unet": {"base_channels": 4, "depth": 2},
    "unet-ensemble": {"base_channels": 4, "depth": 2, "members": 2},
    "dncnn": {"depth": 4, "width": 8},
    "srcnn": {"features": (8, 4)},
    "srresnet": {"width": 4, "blocks": 1, "scale": 2},
    "vdsr": {"depth": 3, "width": 4, "scale": 2},
    "cae": {"features": (4, 8)},
    "resunet": {"widths": (4, 8), "blocks": (1, 1)},
    "resunet-ensemble": {"widths": (4, 8), "blocks": (1, 1), "members": 2},
    "multiframe": {"frames": 3, "widths": (4, 8), "blocks": (1, 1)},
    "vgg-unet": {"width_divisor": 16},
    "unrolled": {"stages": 2, "features": 4},
    "unrolled-radial": {"stages": 2, "features": 4},
}
SHAPE_2D = (37, 45)
SHAPE_3D = (9, 11, 13)
REFERENCE_SHAPES = {2: (13, 17), 3: (7, 9, 11)}


def small_options(name: str, spatial_ndim: int = 2) -> dict[str, object]:
    if name not in SMALL_OPTIONS:
        pytest.fail(f"architecture {name!r} has no entry in SMALL_OPTIONS of tests/test_models.py; add small options for it")
    return {**SMALL_OPTIONS[name], "spatial_ndim": spatial_ndim}


def dimension_cases() -> list[tuple[str, int]]:
    return [(name, ndim) for name in MODELS.names() for ndim in model_spatial_ndims(name)]


def build(name: str, spatial_ndim: int, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model(name, small_options(name, spatial_ndim))


def fixed_input(model: torch.nn.Module, spatial_shape: tuple[int, ...], batch: int = 1, seed: int = 1234) -> torch.Tensor:
    shape = (batch, model.in_channels, *spatial_shape)
    return torch.randn(shape, generator=make_generator(seed), dtype=torch.float32)


# -- every architecture ------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS.names())
def test_default_options_build_and_round_trip(name: str) -> None:
    model = create_model(name)
    assert model.config == model_config(name)
    assert model.spatial_ndim == 2
    assert architecture_of(model) == name
    options = json.loads(json.dumps(model_options(name)))  # through JSON: tuples become lists
    assert create_model(name, options).config == model.config
    assert config_to_options(model.config) == model_options(name)


@pytest.mark.parametrize("name", MODELS.names())
def test_unknown_option_is_refused_with_valid_keys(name: str) -> None:
    with pytest.raises(ConfigError) as error:
        create_model(name, {"no_such_option": 1})
    message = str(error.value)
    assert "no_such_option" in message
    for key in model_options(name):
        assert key in message


@pytest.mark.parametrize("name", MODELS.names())
def test_wrong_type_is_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="spatial_ndim"):
        create_model(name, {"spatial_ndim": "2"})
    with pytest.raises(ConfigError, match="spatial_ndim"):
        create_model(name, {"spatial_ndim": 4})


@pytest.mark.parametrize(("name", "spatial_ndim"), dimension_cases())
def test_forward_shape_odd_sizes(name: str, spatial_ndim: int) -> None:
    model = build(name, spatial_ndim)
    assert model.spatial_ndim == spatial_ndim
    spatial = SHAPE_2D if spatial_ndim == 2 else SHAPE_3D
    image = fixed_input(model, spatial, batch=2)
    original = image.clone()
    output = model(image)
    factor = getattr(model, "scale_factor", 1)  # super-resolution models enlarge every spatial axis
    assert output.shape == (2, model.out_channels, *(n * factor for n in spatial))
    assert output.dtype == torch.float32
    assert torch.isfinite(output).all()
    assert torch.equal(image, original), "the forward pass modified its input"


@pytest.mark.parametrize("name", MODELS.names())
def test_wrong_input_rank_and_channels_are_refused(name: str) -> None:
    model = build(name, 2)
    with pytest.raises(InputError, match="spatial axes"):
        model(torch.zeros(1, model.in_channels, 8, 8, 8))
    with pytest.raises(InputError, match="channel"):
        model(torch.zeros(1, model.in_channels + 1, 16, 16))
    with pytest.raises(InputError, match="real floating-point"):
        model(torch.zeros(1, model.in_channels, 16, 16, dtype=torch.complex64))


@pytest.mark.parametrize(("name", "spatial_ndim"), dimension_cases())
def test_gradients_reach_every_parameter(name: str, spatial_ndim: int) -> None:
    model = build(name, spatial_ndim).train()
    spatial = (16, 19) if spatial_ndim == 2 else (8, 9, 10)
    image = fixed_input(model, spatial, batch=2)
    output = model(image)
    weights = torch.randn(output.shape, generator=make_generator(7))
    (output * weights).sum().backward()
    for parameter_name, parameter in model.named_parameters():
        assert parameter.grad is not None, f"{name}: no gradient for {parameter_name}"
        assert torch.isfinite(parameter.grad).all(), f"{name}: non-finite gradient for {parameter_name}"
        assert parameter.grad.abs().sum() > 0, f"{name}: zero gradient for {parameter_name}"


@pytest.mark.parametrize("name", MODELS.names())
def test_same_seed_same_initialisation(name: str) -> None:
    first, second, other = build(name, 2, seed=0), build(name, 2, seed=0), build(name, 2, seed=1)
    first_state, second_state, other_state = first.state_dict(), second.state_dict(), other.state_dict()
    assert first_state.keys() == second_state.keys()
    assert all(torch.equal(first_state[key], second_state[key]) for key in first_state)
    assert any(not torch.equal(first_state[key], other_state[key]) for key in first_state)


def reference_outputs() -> dict[str, np.ndarray]:
    """Output of every architecture (seed-0 init, eval mode) on a fixed input, per supported dimensionality."""
    outputs: dict[str, np.ndarray] = {}
    for name, spatial_ndim in dimension_cases():
        model = build(name, spatial_ndim, seed=0).eval()
        with torch.no_grad():
            output = model(fixed_input(model, REFERENCE_SHAPES[spatial_ndim]))
        outputs[f"{name}/{spatial_ndim}d"] = output.numpy()
        outputs[f"{name}/options"] = np.array(json.dumps(SMALL_OPTIONS[name], sort_keys=True))
    return outputs


@pytest.fixture(scope="module")
def stored_reference() -> dict[str, np.ndarray]:
    if not REFERENCE_FILE.is_file():
        pytest.fail(f"{REFERENCE_FILE} is missing; generate it with: {REGENERATE}")
    with np.load(REFERENCE_FILE) as stored:
        return {key: stored[key] for key in stored.files}


@pytest.mark.parametrize(("name", "spatial_ndim"), dimension_cases())
def test_reference_output(name: str, spatial_ndim: int, stored_reference: dict[str, np.ndarray]) -> None:
    key = f"{name}/{spatial_ndim}d"
    advice = f"if {name} changed on purpose (or is new), regenerate with: {REGENERATE}"
    assert key in stored_reference, f"no stored reference output for {key}; {advice}"
    assert str(stored_reference[f"{name}/options"]) == json.dumps(SMALL_OPTIONS[name], sort_keys=True), (
        f"SMALL_OPTIONS of {name} differ from those of the stored reference; {advice}"
    )
    model = build(name, spatial_ndim, seed=0).eval()
    with torch.no_grad():
        output = model(fixed_input(model, REFERENCE_SHAPES[spatial_ndim])).numpy()
    expected = stored_reference[key]
    assert output.shape == expected.shape, f"{key}: output shape {output.shape} != stored {expected.shape}; {advice}"
    difference = float(np.abs(output - expected).max())
    assert difference <= 1e-5, f"{key}: output differs from the stored reference by {difference:.3g} (> 1e-5); {advice}"


def test_registry_lookup_errors() -> None:
    with pytest.raises(MedrestoreError, match="available: .*unet"):
        create_model("no-such-net")
    with pytest.raises(MedrestoreError, match="not a registered architecture"):
        architecture_of(torch.nn.Linear(2, 2))


def test_every_architecture_has_small_test_options() -> None:
    missing = [name for name in MODELS.names() if name not in SMALL_OPTIONS]
    assert not missing, f"add small options for {missing} to SMALL_OPTIONS in tests/test_models.py"


def regenerate_reference() -> None:
    """Rewrite tests/reference/models.npz from the current architectures."""
    torch.set_num_threads(1)
    REFERENCE_FILE.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(REFERENCE_FILE, **reference_outputs())
    print(f"wrote {REFERENCE_FILE}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--regenerate-reference", action="store_true", help="rewrite tests/reference/models.npz")
    if parser.parse_args().regenerate_reference:
        regenerate_reference()
    else:
        parser.print_help()
