"""Experiment configuration: YAML round trip, path resolution, and errors that name file and key."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from medrestore.core.errors import ConfigError, InputError
from medrestore.data.paired import PairedPatchDataset, PatchSampling
from medrestore.training import build_normalisation, build_sources
from medrestore.training.harmonize import is_harmonization_config, load_harmonization_config
from medrestore.training.config import (
    DataConfig,
    ExperimentConfig,
    ModelConfig,
    TrainConfig,
    config_from_mapping,
    dump_config,
    load_config,
)

CONFIGS = Path(__file__).resolve().parents[1] / "configs"

BASE = {
    "data": {
        "layout": "synthetic",
        "clean_dir": "images",
        "degradation": {"kind": "gaussian", "parameters": {"sigma": 0.1}},
        "patch_size": [32, 32],
        "validation_fraction": 0.25,
    },
    "model": {"name": "dncnn", "options": {"depth": 3, "width": 8, "features": [1, 2]}},
    "optim": {"lr": "1e-3", "schedule": "cosine"},
    "train": {"epochs": 2, "batch_size": 4},
    "inference": {"window": [32, 32]},
}


def _write(tmp_path: Path, mapping: dict, name: str = "run.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(mapping))
    return path


def _with(section: str, **entries: object) -> dict:
    return {**BASE, section: {**BASE[section], **entries}}


def test_load_resolves_relative_data_paths_and_reads_types(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, BASE))
    assert config.data.clean_dir == str((tmp_path / "images").resolve())
    assert config.data.patch_size == (32, 32) and config.data.spatial_ndim == 2
    assert config.optim.lr == 1e-3  # YAML 1.1 reads 1e-3 as a string; accepted for numbers
    assert config.model.options["features"] == (1, 2)
    assert config.train.output_dir == "results/train"
    assert config.inference.window == (32, 32)


def test_dump_and_load_round_trip(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, BASE))
    again = load_config(_write(tmp_path, yaml.safe_load(dump_config(config)), "again.yaml"))
    assert again == config
    assert dump_config(again) == dump_config(config)


def test_dataclasses_are_frozen() -> None:
    config = TrainConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.epochs = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        (_with("train", batch_sise=3), r"run\.yaml: train\.batch_sise: unknown key; did you mean batch_size\?"),
        (_with("train", batch_size="four"), r"run\.yaml: train\.batch_size: expected an integer, got 'four'"),
        (_with("train", progress_bar="yes"), r"train\.progress_bar: expected true or false"),
        (_with("data", patch_size=[32]), r"data\.patch_size: expected 2 or 3 positive ints"),
        (_with("data", layout="folders"), r"data\.layout: 'folders' is not one of paired-folders, synthetic"),
        (_with("data", normalisation={"kind": "zscore"}), r"data\.normalisation\.kind: 'zscore' is not one of"),
        (_with("data", degradation=None), r"data\.degradation: the 'synthetic' layout needs a degradation"),
        (_with("optim", betas=[0.9]), r"optim\.betas: expected a list of 2 items, got 1"),
        (_with("inference", window=[8, 8, 8]), r"inference\.window: \(8, 8, 8\) does not match the 2-D patch_size"),
        ({**BASE, "trian": {}}, r"trian: unknown key; did you mean train\?"),
        ({key: value for key, value in BASE.items() if key != "model"}, r"model: missing required key"),
    ],
)
def test_errors_name_the_file_and_the_key(tmp_path: Path, mapping: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path, mapping))


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="missing.yaml: cannot read"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: invalid YAML"):
        load_config(bad)


def test_paired_layout_needs_folders_or_pairs() -> None:
    with pytest.raises(ConfigError, match="needs either noisy_dir and clean_dir, or pairs"):
        DataConfig(layout="paired-folders", noisy_dir="a")
    config = DataConfig(layout="paired-folders", pairs=(("a.npy", "b.npy"),))
    assert ExperimentConfig(config, ModelConfig("dncnn")).data.pairs == (("a.npy", "b.npy"),)


def test_example_configs_load() -> None:
    examples = sorted(CONFIGS.glob("*.yaml"))
    assert any(path.name == "example-denoise-synthetic.yaml" for path in examples)
    for path in examples:
        if is_harmonization_config(yaml.safe_load(path.read_text(encoding="utf-8"))):
            harmonization = load_harmonization_config(path)  # scanner harmonisation: its own trainer
            assert harmonization.method.split("-")[0] in path.name
            continue
        config = load_config(path)
        assert config_from_mapping(yaml.safe_load(dump_config(config))) == config


@pytest.mark.shared_data
def test_oct_example_builds_the_grid_recipe_on_real_data(shared_data: Path) -> None:
    config = load_config(CONFIGS / "example-oct-srcnn.yaml")
    assert Path(config.data.pairs[0][0]) == (shared_data / "oct-duke-bioptigen" / "1" / "test.tif").resolve()
    sources = build_sources(config.data, config.train.seed)
    assert sources.validation is not None and len(sources.training) == 8 and len(sources.validation) == 4
    normalisation = build_normalisation(config.data.normalisation, sources.training, config.train.seed)
    sampling = PatchSampling(config.data.patch_size, stride=config.data.patch_stride, augment=True)
    dataset = PairedPatchDataset(sources.training, normalisation, sampling, seed=0)
    # 450×900 B-scans, 41×41 patches, stride 14: (ceil(409/14)+1)·(ceil(859/14)+1) = 31·63 per scan
    assert len(dataset) == 8 * 31 * 63
    source_patch, target_patch = dataset.item(0, 100)
    assert source_patch.shape == target_patch.shape == (1, 41, 41)


def test_validation_sources_must_fit_the_layout() -> None:
    paired = {"layout": "paired-folders", "noisy_dir": "n", "clean_dir": "c"}
    with pytest.raises(ConfigError, match="validation_files: clean files to degrade need the 'synthetic' layout"):
        DataConfig(**paired, validation_files=("a.npy",))
    with pytest.raises(ConfigError, match="validation_clean_dir: a paired layout validates on pairs"):
        DataConfig(**paired, validation_clean_dir="vc")
    with pytest.raises(ConfigError, match="validation_noisy_dir: needs validation_clean_dir"):
        DataConfig(**paired, validation_noisy_dir="vn")
    with pytest.raises(ConfigError, match="give one validation source"):
        DataConfig(**paired, validation_pairs=(("a", "b"),), validation_fraction=0.2)


def test_model_init_starts_from_a_checkpoint_or_state_dict(tmp_path: Path) -> None:
    import torch

    from medrestore.models import create_model
    from medrestore.training.experiment import build_model

    options = {"spatial_ndim": 2, "in_channels": 1, "out_channels": 1, "depth": 3, "width": 8, "batch_norm": False, "residual": True}
    torch.manual_seed(5)
    trained = create_model("dncnn", options)
    torch.save(trained.state_dict(), tmp_path / "weights.pt")
    torch.save({"model": {"name": "dncnn", "options": options, "state_dict": trained.state_dict()}}, tmp_path / "last.pt")
    for init in ("weights.pt", "last.pt"):
        config = load_config(_write(tmp_path, _with("model", name="dncnn", options=options, init=init)))
        assert config.model.init == str((tmp_path / init).resolve())
        model = build_model(config)
        for name, value in trained.state_dict().items():
            assert torch.equal(model.state_dict()[name], value)
    fresh = build_model(load_config(_write(tmp_path, _with("model", name="dncnn", options=options))))
    first = next(iter(trained.state_dict()))
    assert not torch.equal(fresh.state_dict()[first], trained.state_dict()[first])  # without init: the seeded random start
    wider = load_config(_write(tmp_path, _with("model", name="dncnn", options={**options, "width": 16}, init="weights.pt")))
    with pytest.raises(InputError, match="weights.pt.*do not fit 'dncnn'"):
        build_model(wider)
    torch.save({"weights": [1, 2]}, tmp_path / "other.pt")
    with pytest.raises(InputError, match="other.pt.*neither a training checkpoint"):
        build_model(load_config(_write(tmp_path, _with("model", name="dncnn", options=options, init="other.pt"))))
