"""``benchmarks/mri_guide_diagnostics.py``: its bands partition the brain, its "default" row is the shipped
pipeline, and a clean guide everywhere beats the networks' guide."""

from __future__ import annotations

import json
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
import mri_guide_diagnostics as diagnostics  # noqa: E402


def test_bands_split_the_brain_by_distance_to_its_edge() -> None:
    brain = np.zeros((11, 11, 11), bool)
    brain[1:10, 1:10, 1:10] = True  # a 9³ cube: layers at distance 1, 2, 3, 4, 5 from the background
    masks = diagnostics.band_masks(brain, (1.5, 3.0))
    assert list(masks) == ["d ≤ 1.5", "1.5 < d ≤ 3", "d > 3"]
    assert sum(m.astype(int) for m in masks.values()).max() == 1
    np.testing.assert_array_equal(np.logical_or.reduce(list(masks.values())), brain)
    assert masks["d ≤ 1.5"].sum() == 9**3 - 7**3  # the outermost layer
    assert masks["1.5 < d ≤ 3"].sum() == 7**3 - 3**3  # the next two
    assert masks["d > 3"].sum() == 3**3


def test_default_row_is_the_shipped_pipeline_and_a_clean_guide_helps(tmp_path: Path) -> None:
    if not all((PACKAGED_ZOO / "cards" / f"{name}.json").exists() for name in diagnostics.GUIDE_MODELS):
        pytest.skip("the guide networks are not in the zoo")
    clean_path = tmp_path / "phantom.nii.gz"
    nib.save(nib.Nifti1Image((brain_phantom((40, 44, 36), seed=3)[0] * 1000.0).astype(np.float32), np.eye(4)), clean_path)
    out = tmp_path / "diagnostics.json"
    diagnostics.main(["--volume", str(clean_path), "--bands", "1.5,3", "--shrink", "0.5", "--workdir", str(tmp_path), "--json", str(out)])
    result = json.loads(out.read_text(encoding="utf-8"))

    noisy = read_image(tmp_path / "noisy-0.05-phantom.nii.gz").data.to(torch.float32)
    clean = read_image(clean_path).data.numpy().astype(np.float64)
    cpu = torch.device("cpu")
    default, sigma = denoise_mri.denoise_volume(noisy, "unet3d-nlm", None, denoise_mri.load_guides(cpu), cpu)
    expected = psnr(default.numpy().astype(np.float64), clean, float(clean.max()), clean > 0)
    table = result["psnr"]
    assert result["sigma_estimated"] == pytest.approx(sigma)
    assert table["default"]["all"] == pytest.approx(expected, abs=1e-6)
    assert set(table) == {"nlm", *(f"network {n}" for n in diagnostics.GUIDE_MODELS), "guide (their mean)", "guided NLM", "first stage x̂₁", "Wiener W(x̂₁)", "default"}
    assert table["default"]["all"] > table["nlm"]["all"]
    assert list(table["default"]) == ["all", "d ≤ 1.5", "1.5 < d ≤ 3", "d > 3"]
    assert sum(b["voxels"] for b in result["bands"].values()) == pytest.approx(1.0)
    assert sum(b["squared error"] for b in result["bands"].values()) == pytest.approx(1.0)
    replaced = result["guide_replaced"]
    assert list(replaced)[:3] == ["clean guide, d ≤ 1.5", "clean guide, d ≤ 3", "clean guide, everywhere"]
    assert replaced["clean guide, everywhere"] > table["default"]["all"] + 1.0
    assert "nlm as the guide, d ≤ 1.5" in replaced
    halved = [name for name in replaced if name.startswith("the guide's error × 0.5 (")]
    assert len(halved) == 1 and replaced[halved[0]] > table["default"]["all"]
    assert float(halved[0].split("(")[1].split(" dB")[0]) == pytest.approx(table["guide (their mean)"]["all"] + 20 * np.log10(2), abs=0.02)


@pytest.mark.parametrize("option", [["--bands", "3,1.5"], ["--bands", "0,2"], ["--shrink", "1.2"]])
def test_bad_options_are_refused(tmp_path: Path, option: list[str]) -> None:
    with pytest.raises(SystemExit):
        diagnostics.main(["--volume", str(tmp_path / "x.nii.gz"), *option])
