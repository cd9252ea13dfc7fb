"""``medrestore train`` with the ``nm`` layout: a short SRResNet ×4 run with MSE + (1 − SSIM) lowers its loss."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from medrestore.cli.main import main
from medrestore.tasks.superres import load_super_resolution

torch.set_num_threads(1)

CONFIG = {
    "data": {
        "layout": "nm",
        "nm": {
            "image_size": 48,
            "fixed_draws": 2,
            "training": {"generated": [["hot-spot", 6], ["skeleton", 6]], "phantom_seed": 1},
            "validation": {"generated": [["hot-spot", 2], ["skeleton", 2]], "phantom_seed": 2},
            "simulation": {"pixel_size_range": [1.5, 2.5], "original_peak_range": [300.0, 600.0]},
        },
        "patch_size": [8, 8],
        "patches_per_image": 4,
        "augment": True,
        "normalisation": {"kind": "minmax-image"},
    },
    "model": {"name": "srresnet", "options": {"width": 8, "blocks": 1, "head_kernel": 5, "upsampled_skip": True}},
    "optim": {"lr": 3.0e-3},
    "train": {"epochs": 4, "batch_size": 8, "loss": "mse+ssim", "seed": 0, "device": "cpu", "progress_bar": False},
    "inference": {"window": None},
}


def test_short_nm_training_lowers_the_loss_and_the_checkpoint_restores(tmp_path: Path) -> None:
    config_path = tmp_path / "nm.yaml"
    config_path.write_text(yaml.safe_dump(CONFIG))
    run_dir = tmp_path / "run"
    assert main(["train", "--config", str(config_path), "--output-dir", str(run_dir)]) == 0
    history = json.loads((run_dir / "history.json").read_text())["epochs"]
    assert len(history) == 4
    assert history[-1]["train_loss"] < 0.9 * history[0]["train_loss"]
    assert history[-1]["val_psnr"] > history[0]["val_psnr"]
    method = load_super_resolution("srresnet", 4, str(run_dir / "last.pt"))
    counts = torch.poisson(torch.full((12, 12), 80.0), generator=torch.Generator().manual_seed(0))
    restored = method(counts)
    assert restored.shape == (48, 48) and float(restored.sum()) == pytest.approx(float(counts.sum()), rel=1e-9)
