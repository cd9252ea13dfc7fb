"""A real whole-body bone scan nobody here made, through the whole ×4 chain with the default method.

pydicom ships one as a test file (``JPEG2000.dcm``: NM, "Whole Body Bone", 1024 × 256, 2.26-mm pixels,
signed int16 with 39 921 negative background values down to −30, about 3.5 M counts). The chain is the
one of the gamma-camera targets: the scan as stored → ``degrade --kind gamma-camera`` (camera defaults;
negatives clipped with a warning) → ``superres`` (default, and bicubic) → ``evaluate`` against the stored
scan, whose negatives ``evaluate`` sets to 0 because an NM image holds counts. Targets: ≥ +2.0 dB over
bicubic, ``(1 − SSIM) ≤ 0.6 × bicubic's``, total counts within 1 %. ``benchmarks/nm_bone_scan.py`` runs the
same chain over more seeds and methods. The file is taken from the installed pydicom (a missing one skips).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from dicom_helpers import available
from medrestore import api
from medrestore.io import read_image, write_image

BONE_SCAN = Path(pydicom.__file__).parent / "data" / "test_files" / "JPEG2000.dcm"


@pytest.fixture(scope="module")
def scan() -> Path:
    return available(BONE_SCAN, "pydicom test file (a real whole-body bone scan)")


def test_evaluate_scores_an_nm_reference_as_counts(scan: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stored = read_image(scan)
    assert stored.modality == "nm" and int((stored.data < 0).sum()) == 39921
    prediction = stored.with_data(stored.data.clamp_min(0) + 1.0)
    scored = api.evaluate(prediction, scan)
    assert scored.record["clipped_negative"] == {str(scan): {"count": 39921, "minimum": -30.0}}
    assert "clipped 39921 negative values (minimum -30) to 0 for scoring against counts" in capsys.readouterr().err
    value_range = float(stored.data.max())  # 245: the clipped reference's max − min
    assert scored.output["psnr"] == pytest.approx(20 * np.log10(value_range), abs=1e-6)  # every error is exactly 1
    assert scored.output["mae"] == pytest.approx(1.0, abs=1e-6)
    written = write_image(prediction, tmp_path / "prediction.nii.gz")  # files: the command's path
    from_files = api.evaluate(written, scan)
    assert from_files.record["clipped_negative"] == scored.record["clipped_negative"]
    assert from_files.output["mae"] == pytest.approx(1.0, abs=1e-5)
    # a reference of another modality keeps its negatives (CT numbers, phase): scored as stored
    other = api.evaluate(prediction, stored.with_data(stored.data, modality="ct"))
    assert "clipped_negative" not in other.record and other.output["mae"] > 1.0


def test_the_default_meets_the_bone_scan_targets_on_a_real_scan(scan: Path, tmp_path: Path) -> None:
    stored_total = float(read_image(scan).data.clamp_min(0).sum())
    for seed in (0, 1):
        coarse = api.degrade(scan, "gamma-camera", seed=seed, output=tmp_path / f"coarse-{seed}.nii.gz")
        assert coarse.record["clipped_negative"] == {"count": 39921, "minimum": -30.0}
        assert read_image(coarse.output).shape == (256, 64)
        scores = {}
        for method in (None, "bicubic"):
            restored = api.superres(tmp_path / f"coarse-{seed}.nii.gz", method=method)
            assert restored.output.data.shape == (1024, 256)
            total = float(restored.output.data.double().sum())
            assert abs(total - stored_total) / stored_total < 0.01
            scores[method or "default"] = api.evaluate(restored.output, scan).output
        gain = scores["default"]["psnr"] - scores["bicubic"]["psnr"]
        ratio = (1 - scores["default"]["ssim"]) / (1 - scores["bicubic"]["ssim"])
        assert gain >= 2.0 and ratio <= 0.6, (seed, gain, ratio)
