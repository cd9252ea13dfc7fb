"""``medrestore harmonize-analyze`` and ``harmonize-eval``: files written, numbers against closed forms, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from medrestore.cli.main import main
from medrestore.core.files import sha256_file
from medrestore.core.image import Image
from medrestore.core.random import make_generator
from medrestore.io import read_image, write_image
from medrestore.physics import ScannerAppearance
from medrestore.physics.scanner import brain_mask, hyperintensity_map
from medrestore.tasks.harmonize_analysis import analysis_regions, region_energy, scanner_difference_maps
from medrestore.tasks.harmonize_eval import hyperintensity_survival

torch.set_num_threads(1)


def brain_like(size: int, seed: int) -> np.ndarray:
    """An ellipse with smooth random texture (0.4-1.0) on a zero background."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:size, :size]
    ellipse = ((rows - size / 2) / (0.42 * size)) ** 2 + ((cols - size / 2) / (0.34 * size)) ** 2 <= 1
    coarse = rng.uniform(0.4, 1.0, (4, 4))
    return np.where(ellipse, np.kron(coarse, np.ones((size // 4, size // 4))), 0.0).astype(np.float32)


def write_slices(folder: Path, scanner: str, subjects: range, size: int = 32) -> None:
    for index in subjects:
        clean = torch.from_numpy(brain_like(size, index))[None]
        image = ScannerAppearance(scanner=scanner)(clean, make_generator(10 * index + (scanner == "b")))[0]
        write_image(Image.from_array(image.numpy(), spacing=(1.0, 1.0)), folder / f"subj{index:03d}_slice000.nii.gz")


@pytest.fixture(scope="module")
def scanners(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("scanners")
    for scanner in "ab":
        write_slices(root / "train" / scanner, scanner, range(0, 6))
        write_slices(root / "test" / scanner, scanner, range(6, 10))
    return root


def test_region_energy_closed_form() -> None:
    difference = torch.zeros(4, 4)
    difference[:2, :2] = torch.tensor([[1.0, -1.0], [2.0, 0.0]])
    regions = {"corner": torch.zeros(4, 4, dtype=torch.bool), "all": torch.ones(4, 4, dtype=torch.bool)}
    regions["corner"][:2, :2] = True
    record = region_energy(difference, regions)
    assert record["corner"] == pytest.approx({"energy_fraction": 1.0, "pixel_fraction": 0.25, "energy_density": 4.0, "mean": 0.5, "mean_abs": 1.0})
    assert record["all"]["energy_density"] == pytest.approx(1.0) and record["all"]["mean"] == pytest.approx(2.0 / 16)


def test_analysis_regions_split_the_brain() -> None:
    slice_ = torch.from_numpy(brain_like(64, 0))
    regions = analysis_regions(slice_)
    brain = regions["brain"]
    assert torch.equal(brain, brain_mask(slice_)) and torch.equal(regions["background"], ~brain)
    for first, second in (("cortical_band", "deep"), ("anterior", "posterior"), ("left", "right")):
        assert not bool((regions[first] & regions[second]).any()) and torch.equal(regions[first] | regions[second], brain)
    assert abs(int(regions["anterior"].sum()) - int(regions["posterior"].sum())) <= 0.1 * int(brain.sum())


def test_harmonize_analyze_writes_maps_that_find_the_posterior_bump(scanners: Path, tmp_path: Path) -> None:
    folder_a, folder_b = scanners / "test" / "a", scanners / "test" / "b"
    before = {path: sha256_file(path) for path in sorted(folder_b.iterdir())}
    out = tmp_path / "analysis"
    assert main(["harmonize-analyze", str(folder_a), str(folder_b), "-o", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["slices"] == 4 and summary["paired_by"] == "name" and 1 <= summary["low_rank_rank"] <= 8
    for name in summary["maps"]:
        assert read_image(out / name).shape == (32, 32)
    assert all((out / name).stat().st_size > 0 for name in summary["figures"])
    # scanner b's occipital hyperintensity (display rows anterior → posterior) is where b's sparse part is positive
    sparse = summary["sparse_energy_by_region"]
    assert sparse["posterior"]["mean"] > sparse["anterior"]["mean"]
    assert summary["l1_energy_by_region"]["posterior"]["mean"] > summary["l1_energy_by_region"]["anterior"]["mean"]
    assert {path: sha256_file(path) for path in sorted(folder_b.iterdir())} == before


def test_harmonize_analyze_pairs_by_order_and_refuses_mismatches(scanners: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    renamed = tmp_path / "renamed"
    for index, path in enumerate(sorted((scanners / "test" / "b").iterdir())):
        renamed.mkdir(exist_ok=True)
        (renamed / f"other{index}.nii.gz").write_bytes(path.read_bytes())
    assert main(["harmonize-analyze", str(scanners / "test" / "a"), str(renamed), "-o", str(tmp_path / "by-order")]) == 0
    assert json.loads((tmp_path / "by-order" / "summary.json").read_text())["paired_by"] == "order"
    (renamed / "other0.nii.gz").unlink()
    assert main(["harmonize-analyze", str(scanners / "test" / "a"), str(renamed), "-o", str(tmp_path / "x")]) == 2
    assert str(renamed) in capsys.readouterr().err
    assert main(["harmonize-analyze", str(scanners / "test" / "a"), str(scanners / "test" / "b"), "-o", str(scanners / "test" / "a")]) == 2


def test_hyperintensity_survival_is_one_for_gains_and_zero_for_erasure() -> None:
    source = torch.from_numpy(np.stack([brain_like(64, seed) for seed in range(3)]))
    identity = hyperintensity_survival(lambda x: x, source, 0.35, 0.08)
    assert identity["hyperintensity_survival"] == pytest.approx(1.0) and identity["hyperintensity_added"] > 0.2
    assert hyperintensity_survival(lambda x: 2.5 * x, source, 0.35, 0.08)["hyperintensity_survival"] == pytest.approx(1.0)
    bump = 1.0 + hyperintensity_map(brain_mask(source), 0.35, 0.08)
    erase = hyperintensity_survival(lambda x: x if torch.equal(x, source) else x / bump, source, 0.35, 0.08)
    assert abs(erase["hyperintensity_survival"]) < 1e-6


def test_harmonize_eval_writes_one_json_and_an_html_page(scanners: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    args = ["harmonize-eval", "-o", str(out), "--model", "histogram-matching", "--epochs", "3"]
    for split in ("train", "test"):
        for scanner in "ab":
            args += [f"--{split}-{scanner}", str(scanners / split / scanner)]
    assert main(args) == 0
    rows = json.loads((out / "metrics.json").read_text())["sections"]["harmonize_eval"]["rows"]
    assert [(row["method"], row["direction"]) for row in rows] == [
        ("identity", "b2a"), ("histogram-matching", "b2a"), ("identity", "a2b"), ("histogram-matching", "a2b")
    ]
    for row in rows:
        assert 0.0 <= row["classifier_accuracy"] <= 1.0 and row["psnr"] is not None and -1 <= row["ssim"] <= 1
        if row["method"] == "identity":
            assert row["jaccard_input"] == pytest.approx(1.0) and row["hyperintensity_survival"] == pytest.approx(1.0)
    assert "accuracy on its own training slices" in json.loads((out / "metrics.json").read_text())["provenance"]["judge"]
    html = (out / "report.html").read_text()
    assert "histogram-matching" in html and all((out / f"{d}-{m}.png").is_file() for d in ("a2b", "b2a") for m in ("identity", "histogram-matching"))


def test_l1_threshold_with_a_masked_background_comes_from_the_images_noise() -> None:
    """Skull-stripped inputs (exactly zero outside the brain) still get a noise threshold, and the L1 map keeps the bump."""
    generator = torch.Generator().manual_seed(0)
    clean = torch.from_numpy(np.stack([brain_like(64, seed) for seed in range(6)]))
    mask = clean > 0
    bump = hyperintensity_map(mask, 0.5, 0.08)
    slices_a = (clean + 0.02 * torch.randn(clean.shape, generator=generator)) * mask
    slices_b = (clean * (1 + bump) + 0.02 * torch.randn(clean.shape, generator=generator)) * mask
    maps = scanner_difference_maps(slices_a, slices_b)
    assert maps.l1_threshold > 0
    kept = maps.l1_difference != 0
    region = bump.mean(dim=0) > 0.25
    assert float(kept[region].float().mean()) > 0.9 and float(kept[~region].float().mean()) < 0.2
