"""``medrestore harmonize-data register``: affine registration, one brain mask, one intensity unit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from medrestore.cli.main import main
from medrestore.core.files import sha256_file
from medrestore.core.image import Image
from medrestore.io import read_image, write_image
from medrestore.physics.scanner import robust_level
from medrestore.tasks.harmonize_prepare import brain_mask_of, strip_skull

pytest.importorskip("dipy.align")
torch.set_num_threads(1)


def textured_brain(size: int) -> np.ndarray:
    """A skull-stripped ellipsoid 'brain' with smooth texture (0.3-1.0), zero outside."""
    grid = np.mgrid[:size, :size, :size].astype(np.float64) - (size - 1) / 2
    inside = (grid[0] / (0.36 * size)) ** 2 + (grid[1] / (0.42 * size)) ** 2 + (grid[2] / (0.3 * size)) ** 2 <= 1
    texture = 0.65 + 0.35 * np.sin(grid[0] / 2.5) * np.cos(grid[1] / 3.0) * np.cos(grid[2] / 3.5)
    return np.where(inside, texture, 0.0).astype(np.float32)


def test_brain_mask_of_fills_and_dilates() -> None:
    volume = torch.zeros(9, 9, 9)
    volume[2:7, 2:7, 2:7] = 1.0
    volume[4, 4, 4] = 0.0  # a hole
    assert int(brain_mask_of(volume, dilation=0).sum()) == 125
    assert int(brain_mask_of(volume, dilation=1).sum()) == 125 + 6 * 25


def test_strip_skull_keeps_the_brain_and_drops_a_separate_shell() -> None:
    brain = torch.from_numpy(textured_brain(40))
    inside = brain > 0
    shell = brain_mask_of(brain, 5) & ~brain_mask_of(brain, 3)  # scalp 3-5 voxels out, a dark gap between
    mask = strip_skull(brain + 1.2 * shell.float())
    assert bool(mask[inside].all()) and not bool(mask[shell].any())


def test_register_recovers_a_shift_masks_the_skull_and_normalises(tmp_path: Path) -> None:
    size = 40
    brain = textured_brain(size)
    static = tmp_path / "static.nii.gz"
    write_image(Image.from_array(brain * 80.0, spacing=(1.0, 1.0, 1.0)), static)
    # the other scanner: 3 voxels shifted in the world, 25x the intensity, and a bright shell ('skull') around the brain
    shell = (brain_mask_of(torch.from_numpy(brain), 3).numpy() & ~brain_mask_of(torch.from_numpy(brain), 2).numpy()) * 1.2
    affine = np.eye(4)
    affine[:3, 3] = (3.0, 0.0, 0.0)
    moving = tmp_path / "moving.nii.gz"
    write_image(Image.from_array(((brain + shell) * 2000.0).astype(np.float32), affine=affine), moving)
    before = sha256_file(moving)
    out = tmp_path / "prepared"
    assert main(["harmonize-data", "register", str(moving), str(static), "-o", str(out)]) == 0
    record = json.loads((out / "prepare.json").read_text())
    np.testing.assert_allclose(np.array(record["static_to_moving_affine"])[:3, 3], (3.0, 0.0, 0.0), atol=0.5)
    registered, reference = read_image(out / "moving.nii.gz").data, read_image(out / "static.nii.gz").data
    assert registered.shape == reference.shape == (size, size, size)
    assert robust_level(registered) == pytest.approx(1.0, abs=1e-3) and robust_level(reference) == pytest.approx(1.0, abs=1e-3)
    inside = torch.from_numpy(brain > 0)
    assert float(torch.corrcoef(torch.stack([registered[inside], reference[inside]]))[0, 1]) > 0.9
    assert float(registered[~brain_mask_of(torch.from_numpy(brain), 2)].abs().max()) == 0.0  # the shell is masked out
    assert sha256_file(moving) == before


def test_register_refuses_a_static_volume_that_is_not_skull_stripped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    noisy = tmp_path / "noisy.nii.gz"
    write_image(Image.from_array(textured_brain(16) + np.random.default_rng(0).uniform(0.01, 0.05, (16, 16, 16)).astype(np.float32)), noisy)
    assert main(["harmonize-data", "register", str(noisy), str(noisy), "-o", str(tmp_path / "out")]) == 2
    assert "not skull-stripped" in capsys.readouterr().err and not (tmp_path / "out").exists()
