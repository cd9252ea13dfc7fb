"""Training MRI reconstruction networks with ``medrestore train`` (layout ``mri-recon``) on tiny problems."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from medrestore.core.complex import channels_to_complex
from medrestore.training import config_from_mapping, load_config
from medrestore.training.experiment import build_trainer

torch.set_num_threads(1)

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
SMALL_MODELS: dict[str, dict[str, object]] = {
    "unet": {"in_channels": 2, "out_channels": 2, "base_channels": 4, "depth": 2, "residual": True},
    "vgg-unet": {"width_divisor": 16},
    "unrolled": {"stages": 2, "features": 8, "initial_step": 1.0},
}
EPOCHS = {"unet": 4, "vgg-unet": 4, "unrolled": 16}
# Fixed-batch MSE measured before → after: unet 0.239 → 0.088, vgg-unet 0.137 → 0.076, unrolled 0.0177 → 0.0137
# (the unrolled network starts low: its data-consistency steps already fill in k-space).
MAX_RATIO = {"unet": 0.6, "vgg-unet": 0.7, "unrolled": 0.85}


def _phantom(size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:size, :size] - (size - 1) / 2
    image = (rows**2 / 0.9 + cols**2 < (0.42 * size) ** 2).astype(np.float32) * 0.6
    for _ in range(4):
        centre = rng.uniform(-0.2, 0.2, 2) * size
        radius = rng.uniform(0.05, 0.12) * size
        image[(rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 < radius**2] = rng.uniform(0.2, 1.0)
    return image


def _mapping(tmp_path: Path, name: str) -> dict[str, Any]:
    files = []
    for seed in range(3):
        path = tmp_path / f"phantom{seed}.npy"
        np.save(path, _phantom(32, seed))
        files.append(str(path))
    return {
        "data": {
            "layout": "mri-recon",
            "patch_size": [32, 32],
            "mri": {
                "image_size": 32,
                "inputs": "physics" if name == "unrolled" else "image",
                "training": {"files": files[:2]},
                "validation": {"files": files[2:]},
                "masks": ["random", "equispaced"],
                "samples_per_image": 4,
                "coils": {"coils": [4], "noise_range": [0.0, 0.0]},
                "max_coils": 4,
            },
        },
        "model": {"name": name, "options": SMALL_MODELS[name]},
        "optim": {"lr": 3.0e-3},
        "train": {"epochs": EPOCHS[name], "batch_size": 2, "loss": "mse", "device": "cpu", "progress_bar": False, "output_dir": str(tmp_path / "run"),
                  "validate_every": EPOCHS[name] // 2},
    }


@pytest.mark.parametrize("name", ["unet", "vgg-unet", "unrolled"])
def test_short_training_lowers_the_loss(tmp_path: Path, name: str) -> None:
    config = config_from_mapping(_mapping(tmp_path, name))
    trainer = build_trainer(config, torch.device("cpu"))
    batch = [trainer.dataset[(0, index)] for index in range(4)]

    def fixed_loss() -> float:
        trainer.model.eval()
        with torch.no_grad():
            total = 0.0
            for inputs, target in batch:
                arguments = (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs)
                output = trainer.model(*(tensor.unsqueeze(0) for tensor in arguments))
                total += float((output[0] - target).square().mean())
        trainer.model.train()
        return total / len(batch)

    before = fixed_loss()
    result = trainer.fit()
    after = fixed_loss()
    assert after < MAX_RATIO[name] * before, (before, after)
    assert result.best_checkpoint is not None and len(result.history) == EPOCHS[name]
    assert result.history[-1]["val_psnr"] is not None
    prediction = trainer.predict(trainer.validation[0])
    assert tuple(prediction.shape) == (2, 32, 32) and channels_to_complex(prediction).dtype == torch.complex64


@pytest.mark.parametrize("name", ["mri-recon-unet", "mri-recon-vgg-unet", "mri-recon-unrolled"])
def test_shipped_configs_load(name: str) -> None:
    config = load_config(CONFIGS / f"{name}.yaml")
    assert config.data.layout == "mri-recon" and config.data.mri is not None
    assert all(Path(path).is_absolute() for path in config.data.mri.training.files)
    assert config.data.mri.inputs == ("physics" if name == "mri-recon-unrolled" else "image")
