"""The trainer: determinism, exact resume (mid-epoch, after interrupts), logs, checkpoints, metrics."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from medrestore.cli.main import main
from medrestore.core.errors import ConfigError
from medrestore.core.random import make_generator
from medrestore.data.paired import PairedImages, SyntheticPairs
from medrestore.data.normalisation import normalisation_from_record
from medrestore.inference import Predictor
from medrestore.tasks.train import tiled_inference
from medrestore.training import (
    StepInfo,
    Trainer,
    build_sources,
    build_trainer,
    config_from_mapping,
    dump_config,
    load_checkpoint,
    load_config,
)

torch.set_num_threads(1)
CPU = torch.device("cpu")


def _images(folder: Path, count: int, shape: tuple[int, int] = (24, 28), seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    for i in range(count):
        image = 100 + 40 * np.sin(xx / (2.0 + i) + rng.uniform(0, 6)) * np.cos(yy / (3.0 + i))
        np.save(folder / f"image{i}.npy", image.astype(np.float32))
    return folder


def _mapping(tmp_path: Path, **train: Any) -> dict[str, Any]:
    clean = _images(tmp_path / "clean", 4)
    return {
        "data": {
            "layout": "synthetic",
            "clean_dir": str(clean),
            "pattern": "*.npy",
            "degradation": {"kind": "gaussian", "parameters": {"sigma": 10.0}},
            "patch_size": [16, 16],
            "patches_per_image": 4,
            "validation_fraction": 0.25,
            "augment": True,
        },
        "model": {"name": "dncnn", "options": {"depth": 3, "width": 8, "batch_norm": True}},
        "optim": {"lr": 1e-3, "schedule": "step", "step_size": 2, "gamma": 0.5},
        "train": {"epochs": 3, "batch_size": 4, "device": "cpu", "progress_bar": False, **train},
        "inference": {"window": [16, 16], "overlap": 0.5},
    }


def _trainer(mapping: dict[str, Any], run_dir: Path, callbacks=()) -> Trainer:
    config = config_from_mapping(mapping)
    return build_trainer(config, CPU, tiled_inference(config.inference), callbacks, run_dir=run_dir)


def _same_weights(first: Trainer, second: Trainer) -> bool:
    a, b = first.model.state_dict(), second.model.state_dict()
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _without_time(history) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def test_fixed_seed_gives_identical_weights(tmp_path: Path) -> None:
    mapping = _mapping(tmp_path)
    first, second = _trainer(mapping, tmp_path / "a"), _trainer(mapping, tmp_path / "b")
    first.fit(), second.fit()
    assert _same_weights(first, second)
    assert _without_time(first.history) == _without_time(second.history)
    other = _trainer(_mapping(tmp_path, seed=1), tmp_path / "c")
    other.fit()
    assert not _same_weights(first, other)


def test_resume_mid_epoch_after_max_steps_is_exact(tmp_path: Path) -> None:
    mapping = _mapping(tmp_path)
    reference = _trainer(mapping, tmp_path / "reference")
    result = reference.fit()
    assert result.finished and reference.steps_per_epoch == 3 and result.global_step == 9

    stopped = _trainer(_mapping(tmp_path, max_steps=4), tmp_path / "run")
    partial = stopped.fit()
    assert not partial.finished and partial.global_step == 4
    progress = load_checkpoint(tmp_path / "run" / "last.pt")["progress"]
    assert (progress["epoch"], progress["step_in_epoch"], progress["global_step"]) == (1, 1, 4)

    resumed = _trainer(mapping, tmp_path / "run")
    resumed.fit(resume=True)
    assert _same_weights(reference, resumed)
    assert _without_time(resumed.history) == _without_time(reference.history)


def test_keyboard_interrupt_saves_last_and_resumes_exactly(tmp_path: Path) -> None:
    mapping = _mapping(tmp_path)
    reference = _trainer(mapping, tmp_path / "reference")
    reference.fit()

    def interrupt(info: StepInfo) -> None:
        if info.global_step == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _trainer(mapping, tmp_path / "run", callbacks=[interrupt]).fit()
    progress = load_checkpoint(tmp_path / "run" / "last.pt")["progress"]
    assert (progress["epoch"], progress["step_in_epoch"], progress["global_step"]) == (1, 2, 5)
    resumed = _trainer(mapping, tmp_path / "run")
    resumed.fit(resume=True)
    assert _same_weights(reference, resumed)


def test_sigint_stops_at_the_next_step_boundary(tmp_path: Path) -> None:
    def send_sigint(info: StepInfo) -> None:
        if info.global_step == 2:
            os.kill(os.getpid(), signal.SIGINT)

    handler_before = signal.getsignal(signal.SIGINT)  # SIG_IGN when the suite runs in the background
    with pytest.raises(KeyboardInterrupt):
        _trainer(_mapping(tmp_path), tmp_path / "run", callbacks=[send_sigint]).fit()
    assert load_checkpoint(tmp_path / "run" / "last.pt")["progress"]["global_step"] == 2
    assert signal.getsignal(signal.SIGINT) is handler_before


def test_checkpoint_every_steps(tmp_path: Path) -> None:
    seen: list[int] = []

    def read_last(info: StepInfo) -> None:
        if info.global_step in (3, 5):
            seen.append(load_checkpoint(tmp_path / "run" / "last.pt")["progress"]["global_step"])

    _trainer(_mapping(tmp_path, checkpoint_every_steps=2, epochs=2), tmp_path / "run", callbacks=[read_last]).fit()
    assert seen == [2, 4]  # step 3 ended epoch 1 after the callback, so the step-2 save is still there


def test_logs_checkpoints_and_schedule(tmp_path: Path) -> None:
    trainer = _trainer(_mapping(tmp_path, epochs=4), tmp_path / "run")
    result = trainer.fit()
    run = tmp_path / "run"
    with open(run / "log.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert list(rows[0]) == ["epoch", "step", "train_loss", "val_psnr", "val_ssim", "lr", "seconds"]
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4] and [int(r["step"]) for r in rows] == [3, 6, 9, 12]
    # StepLR(step_size=2, gamma=0.5): lr_e = 1e-3 · 0.5^⌊e/2⌋ for epochs e = 0, 1, 2, 3
    assert [float(r["lr"]) for r in rows] == pytest.approx([1e-3, 1e-3, 5e-4, 5e-4])
    history = json.loads((run / "history.json").read_text())
    psnrs = [row["val_psnr"] for row in history["epochs"]]
    assert history["best_val_psnr"] == max(psnrs) and history["best_epoch"] == 1 + int(np.argmax(psnrs))
    best = load_checkpoint(result.best_checkpoint)
    assert best["progress"]["epoch"] == history["best_epoch"]
    last = load_checkpoint(result.last_checkpoint)
    assert last["model"]["name"] == "dncnn" and last["seed"] == 0
    assert normalisation_from_record(last["normalisation"]).kind == "zscore-image"
    assert load_config(run / "config.yaml") == trainer.config
    assert last["config"] == dump_config(trainer.config)


def test_validation_scores_match_skimage(tmp_path: Path) -> None:
    noisy = _images(tmp_path / "noisy", 3, seed=1)
    clean = _images(tmp_path / "clean", 3, seed=2)
    mapping = _mapping(tmp_path, epochs=2)
    mapping["data"] = {
        "layout": "paired-folders",
        "pairs": [[str(noisy / f"image{i}.npy"), str(clean / f"image{i}.npy")] for i in range(2)],
        "validation_pairs": [[str(noisy / "image2.npy"), str(clean / "image2.npy")]],
        "patch_size": [16, 16],
        "normalisation": {"kind": "zscore-dataset"},
    }
    result = _trainer(mapping, tmp_path / "run").fit()
    predictor = Predictor.from_checkpoint(result.last_checkpoint, device="cpu")
    target = np.load(clean / "image2.npy").astype(np.float64)
    prediction = predictor.predict(np.load(noisy / "image2.npy")).numpy().astype(np.float64)
    data_range = target.max() - target.min()
    expected_psnr = peak_signal_noise_ratio(target, prediction, data_range=data_range)
    expected_ssim = structural_similarity(target, prediction, data_range=data_range, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    assert result.history[-1]["val_psnr"] == pytest.approx(expected_psnr, abs=1e-4)
    assert result.history[-1]["val_ssim"] == pytest.approx(expected_ssim, abs=1e-5)
    record = load_checkpoint(result.last_checkpoint)["normalisation"]
    pooled = np.concatenate([np.load(noisy / f"image{i}.npy").ravel() for i in range(2)]).astype(np.float64)
    assert record["mean"] == pytest.approx(pooled.mean()) and record["std"] == pytest.approx(pooled.std())


def test_an_existing_run_needs_resume_and_the_same_config(tmp_path: Path) -> None:
    _trainer(_mapping(tmp_path, epochs=1), tmp_path / "run").fit()
    with pytest.raises(ConfigError, match="already holds a run"):
        _trainer(_mapping(tmp_path, epochs=1), tmp_path / "run").fit()
    changed = _mapping(tmp_path, epochs=2)
    changed["data"]["patch_size"] = [12, 12]
    with pytest.raises(ConfigError, match="differs from the checkpoint in data.patch_size"):
        _trainer(changed, tmp_path / "run").fit(resume=True)
    longer = _trainer(_mapping(tmp_path, epochs=2), tmp_path / "run")
    assert longer.fit(resume=True).global_step == 6


def test_an_option_added_after_the_checkpoint_resumes_at_its_default(tmp_path: Path) -> None:
    from medrestore.training.trainer import check_resumable

    config = config_from_mapping(_mapping(tmp_path, epochs=1))
    stored = yaml.safe_load(dump_config(config))
    del stored["train"]["loss"]  # as if the checkpoint predates the option (its default: mse)
    check_resumable(yaml.safe_dump(stored), config, tmp_path / "last.pt")
    changed = dataclasses.replace(config, train=dataclasses.replace(config.train, loss="l1"))
    with pytest.raises(ConfigError, match="differs from the checkpoint in train.loss"):
        check_resumable(yaml.safe_dump(stored), changed, tmp_path / "last.pt")
    stored["train"]["retired_option"] = 1  # a key that no longer exists is compared as written
    with pytest.raises(ConfigError, match="train.retired_option"):
        check_resumable(yaml.safe_dump(stored), config, tmp_path / "last.pt")


def test_cli_train_writes_the_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mapping = _mapping(tmp_path, epochs=1, device="auto")
    config_path = tmp_path / "run.yaml"
    config_path.write_text(yaml.safe_dump(mapping))
    assert main(["train", "--config", str(config_path), "-o", str(tmp_path / "out"), "--device", "cpu"]) == 0
    output = capsys.readouterr().out
    assert f"run folder: {tmp_path / 'out'}" in output
    assert {p.name for p in (tmp_path / "out").iterdir()} >= {"config.yaml", "last.pt", "best.pt", "log.csv", "history.json"}
    assert load_config(tmp_path / "out" / "config.yaml").train.device == "cpu"
    again = ["train", "--config", str(config_path), "-o", str(tmp_path / "out"), "--device", "cpu"]
    assert main(again) == 2
    assert "already holds a run (last.pt)" in capsys.readouterr().err
    assert main([*again, "--resume"]) == 0  # already finished: nothing left to do
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**mapping, "train": {"batch_sise": 2}}))
    assert main(["train", "--config", str(bad)]) == 2
    assert "train.batch_sise: unknown key; did you mean batch_size?" in capsys.readouterr().err


def test_synthetic_training_can_validate_on_real_pairs(tmp_path: Path) -> None:
    noisy = _images(tmp_path / "noisy", 1, seed=1)
    clean = _images(tmp_path / "real-clean", 1, seed=2)
    mapping = _mapping(tmp_path)
    mapping["data"] = {**mapping["data"], "validation_fraction": 0.0}
    mapping["data"]["validation_pairs"] = [[str(noisy / "image0.npy"), str(clean / "image0.npy")]]
    sources = build_sources(config_from_mapping(mapping).data, seed=0)
    assert isinstance(sources.training, SyntheticPairs) and len(sources.training) == 4
    assert isinstance(sources.validation, PairedImages)
    pair = sources.validation.pair(0, make_generator(0))
    assert np.array_equal(pair[0][0].numpy(), np.load(noisy / "image0.npy"))


def test_three_dimensional_training_with_tiled_validation(tmp_path: Path) -> None:
    folder = tmp_path / "volumes"
    folder.mkdir()
    zz, yy, xx = np.mgrid[0:10, 0:20, 0:20]
    for i in range(3):
        np.save(folder / f"volume{i}.npy", (np.sin(xx / (2.0 + i)) * np.cos(yy / 3.0) + zz / 10).astype(np.float32))
    mapping = _mapping(tmp_path, epochs=2)
    mapping["data"] = {**mapping["data"], "clean_dir": str(folder), "patch_size": [8, 12, 12], "validation_fraction": 0.34}
    mapping["data"]["degradation"] = {"kind": "gaussian", "parameters": {"sigma": 0.2}}
    mapping["model"] = {"name": "dncnn", "options": {"spatial_ndim": 3, "depth": 2, "width": 4, "batch_norm": False}}
    mapping["inference"] = {"window": [8, 12, 12], "overlap": 0.5}
    trainer = _trainer(mapping, tmp_path / "run")
    result = trainer.fit()
    assert result.finished and result.history[-1]["val_psnr"] > 0
    assert result.history[-1]["val_ssim"] is None  # 10 slices: shorter than the 11-voxel SSIM window
    predictor = Predictor.from_checkpoint(result.last_checkpoint, device="cpu")
    assert predictor.window == (8, 12, 12)
    volume = np.load(folder / "volume0.npy")
    assert predictor.predict(volume).shape == volume.shape
    mapping["model"]["options"] = {"spatial_ndim": 2, "depth": 2, "width": 4}
    with pytest.raises(ConfigError, match="model.options.spatial_ndim: the model is 2-D but data.patch_size is 3-D"):
        _trainer(mapping, tmp_path / "other")
