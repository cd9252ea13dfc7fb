"""The registry and option validation shared by architectures and methods."""

from __future__ import annotations

import dataclasses
from typing import Literal

import pytest

from medrestore.core.errors import ConfigError, MedrestoreError
from medrestore.core.registry import Entry, Registry, config_from_options, config_to_options
from medrestore.models import ARCHITECTURES, CLASSICAL_METHODS, METHODS, MODELS, model_spatial_ndims


@dataclasses.dataclass(frozen=True)
class InnerConfig:
    rate: float = 0.5


@dataclasses.dataclass(frozen=True)
class ExampleConfig:
    mode: Literal["a", "b"] = "a"
    count: int = 1
    scale: float = 1.0
    flag: bool = False
    sizes: tuple[int, ...] = (1, 2)
    pair: tuple[int, float] = (1, 2.0)
    limit: float | None = None
    inner: InnerConfig = InnerConfig()

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ValueError("count must be non-negative")


def test_options_are_converted_to_the_declared_types() -> None:
    config = config_from_options(
        ExampleConfig,
        {"mode": "b", "scale": 3, "sizes": [4, 5, 6], "pair": [2, 3], "limit": 7, "inner": {"rate": 1}},
        "example",
    )
    assert config == ExampleConfig(mode="b", scale=3.0, sizes=(4, 5, 6), pair=(2, 3.0), limit=7.0, inner=InnerConfig(1.0))
    assert isinstance(config.scale, float) and isinstance(config.pair[1], float)
    assert config_from_options(ExampleConfig, None, "example") == ExampleConfig()
    assert config_to_options(config)["sizes"] == (4, 5, 6)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"colour": 1}, "unknown option 'colour' for example; valid options: mode, count, scale, flag, sizes, pair, limit, inner"),
        ({"mode": "c"}, "example option mode must be one of 'a', 'b', got 'c'"),
        ({"count": 1.0}, "example option count must be int, got float 1.0"),
        ({"count": True}, "example option count must be int, got bool True"),
        ({"flag": 1}, "example option flag must be bool, got int 1"),
        ({"sizes": [1, "x"]}, "example option sizes[1] must be int, got str 'x'"),
        ({"sizes": 3}, "example option sizes must be a list, got int 3"),
        ({"pair": [1]}, "example option pair must have 2 items, got 1"),
        ({"limit": "none"}, "example option limit must be float or NoneType"),
        ({"inner": {"speed": 1}}, "unknown option 'speed' for example option inner"),
        ({"count": -1}, "invalid options for example: count must be non-negative"),
    ],
)
def test_bad_options_name_the_key(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        config_from_options(ExampleConfig, options, "example")
    assert str(error.value).startswith(message)


def test_options_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match="must be a mapping"):
        config_from_options(ExampleConfig, [("count", 1)], "example")  # type: ignore[arg-type]


def test_registry_behaviour() -> None:
    registry: Registry[str] = Registry("widget")
    registry.register(Entry("plain", lambda: "built", "denoise", "oct", "no options"))
    registry.register(Entry("typed", lambda config: f"built {config.count}", "any", "any", "typed", config_type=ExampleConfig))
    assert registry.get("plain").create() == "built"
    assert registry.get("typed").create({"count": 4}) == "built 4"
    with pytest.raises(ConfigError, match="plain takes no options"):
        registry.get("plain").create({"count": 1})
    with pytest.raises(MedrestoreError, match="registered twice"):
        registry.register(Entry("plain", lambda: "again", "denoise", "oct", ""))
    with pytest.raises(MedrestoreError, match="must be a dataclass"):
        registry.register(Entry("bad", lambda config: "", "any", "any", "", config_type=dict))
    with pytest.raises(MedrestoreError, match="unknown widget 'missing'; available: plain, typed"):
        registry.get("missing")
    assert registry.names(task="denoise", modality="oct") == ["plain", "typed"]
    assert registry.names(task="recon") == ["typed"]
    assert registry.names(modality="mri") == ["typed"]
    assert registry.names(task="any") == ["plain", "typed"]
    assert len(registry) == 2 and "plain" in registry and "other" not in registry


def test_catalogue_is_the_explicit_list() -> None:
    assert MODELS.names() == [entry.name for entry in ARCHITECTURES]
    assert MODELS.names()[:5] == ["unet", "dncnn", "srcnn", "srresnet", "vdsr"]
    assert METHODS.names() == [entry.name for entry in CLASSICAL_METHODS]
    assert all(entry.config_type is not None for entry in (*MODELS, *METHODS))
    assert model_spatial_ndims("unet") == (2, 3)
    assert MODELS.names(task="denoise") == ["unet", "dncnn", "cae", "resunet", "multiframe", "resunet-ensemble"]
    assert MODELS.names(task="superres") == ["unet", "srcnn", "srresnet", "vdsr"]
    assert model_spatial_ndims("srresnet") == (2,) and model_spatial_ndims("vdsr") == (2, 3)
