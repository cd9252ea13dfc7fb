"""``benchmarks/mri_default_shares.py``: its shipped row is the default itself, and clipping keeps the input."""

from __future__ import annotations

import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from medrestore.data.mri_phantom import brain_phantom
from medrestore.io import read_image
from medrestore.metrics import psnr
from medrestore.tasks import denoise_mri
from medrestore.zoo import PACKAGED_ZOO

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import mri_default_shares as shares  # noqa: E402


def _write(path: Path, data: np.ndarray) -> Path:
    nib.save(nib.Nifti1Image(data.astype(np.float32), np.eye(4)), path)
    return path


def test_shipped_row_is_the_default(tmp_path: Path) -> None:
    """The grid recomputes the default from its parts: its shipped row must equal ``denoise --method unet3d-nlm``."""
    if not all((PACKAGED_ZOO / "cards" / f"{name}.json").exists() for name in shares.DEFAULT_SETTINGS.guide_models):
        pytest.skip("the guide networks are not in the zoo")
    clean_path = _write(tmp_path / "phantom.nii.gz", brain_phantom((40, 44, 36), seed=3)[0] * 1000.0)
    rows = shares.score_volume(clean_path, 0.05, tmp_path)
    label = shares.label(shares.NLM_SHARE, shares.WIENER_SETTINGS["group"], None)
    assert label.endswith("(shipped)**") and label in rows
    assert len(rows) == 2 + len(shares.NLM_SHARES) * len(shares.GROUPS) * len(shares.WIENER_SHARES)
    noisy = read_image(tmp_path / "noisy-0.05-phantom.nii.gz").data.to(torch.float32)
    clean = read_image(clean_path).data.numpy().astype(np.float64)
    cpu = torch.device("cpu")
    default, _ = denoise_mri.denoise_volume(noisy, "unet3d-nlm", None, denoise_mri.load_guides(cpu), cpu)
    expected = psnr(default.numpy().astype(np.float64), clean, float(clean.max()), clean > 0)
    assert rows[label] == pytest.approx(expected, abs=1e-6)
    assert rows[label] > rows["nlm"]
    assert shares.label(shares.NLM_SHARE, shares.WIENER_SETTINGS["group"], 0.7) in rows  # the constant it replaced


def test_clipped_copy_caps_the_top_quantile_and_leaves_the_input(tmp_path: Path) -> None:
    data = np.zeros((20, 20, 20), np.float32)
    data[2:18, 2:18, 2:18] = np.linspace(1.0, 100.0, 16**3).reshape(16, 16, 16)
    source = _write(tmp_path / "head.nii.gz", data)
    before = source.read_bytes()
    out = shares.clipped(source, tmp_path)
    clipped = read_image(out).data.numpy()
    top = float(np.quantile(data[data > 0], shares.CLIP_QUANTILE))
    assert clipped.max() == pytest.approx(top, rel=1e-6) and clipped.max() < 100.0
    np.testing.assert_array_equal(clipped[data < top], data[data < top])
    assert source.read_bytes() == before
