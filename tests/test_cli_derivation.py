"""DICOM outputs of the commands say truthfully what made them and keep the input's modality."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from medrestore.cli.main import main

MR_SMALL = Path(pydicom.__file__).parent / "data" / "test_files" / "MR_small.dcm"


@pytest.fixture
def mr_file() -> Path:
    if not MR_SMALL.is_file():
        pytest.skip(f"pydicom's test file {MR_SMALL} is not installed")
    return MR_SMALL


@pytest.mark.parametrize(
    ("argv", "derivation"),
    [
        (["degrade", "{src}", "-o", "{out}", "--kind", "rician", "--sigma", "20"], "Degraded"),
        (["denoise", "--modality", "mri", "{src}", "-o", "{out}", "--method", "nlm"], "Restored"),
    ],
)
def test_dicom_output_records_its_derivation(mr_file: Path, tmp_path: Path, argv: list[str], derivation: str) -> None:
    output = tmp_path / "out.dcm"
    assert main([word.format(src=mr_file, out=output) for word in argv]) == 0
    written, source = pydicom.dcmread(output), pydicom.dcmread(mr_file)
    assert written.Modality == "MR" and "MR" in written.SOPClassUID.name
    assert written.ImageType[0] == "DERIVED"
    assert str(written.DerivationDescription).startswith(derivation)
    assert written.StudyInstanceUID == source.StudyInstanceUID and written.SeriesInstanceUID != source.SeriesInstanceUID
