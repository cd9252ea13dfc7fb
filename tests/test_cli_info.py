"""``medrestore info``: what each file reads as, checked against nibabel's own reading (orientation codes, zooms)."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel
import numpy as np
import pytest
from nibabel.orientations import aff2axcodes

from medrestore.cli.main import main
from medrestore.tasks.info import axis_codes, describe_file

NIBABEL_DATA = Path(nibabel.__file__).parent / "tests" / "data"
TWIX = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mri-raw-pulseq" / "2024-02-06-164128.dat"


def test_orientation_codes() -> None:
    """Closed forms: an axial volume whose x runs towards the left is LAS; a stack whose axes run posterior, inferior,
    right is PIR; a 2-D image keeps its two in-plane codes."""
    assert axis_codes(np.diag([-1.0, 1.0, 1.0, 1.0]), 3) == "LAS"
    sagittal = np.array([[0, 0, 1.0, 0], [-1.0, 0, 0, 0], [0, -1.0, 0, 0], [0, 0, 0, 1]])
    assert axis_codes(sagittal, 3) == "PIR"
    assert axis_codes(np.diag([0.5, -0.5, 1.0, 1.0]), 2) == "RP"


@pytest.mark.parametrize("name", ["example4d.nii.gz", "anatomical.nii", "minc1_4d.mnc", "reoriented_anat_moved.nii"])
def test_a_nibabel_file_is_described_as_nibabel_reads_it(name: str) -> None:
    reference = nibabel.load(NIBABEL_DATA / name)
    record = describe_file(NIBABEL_DATA / name)
    assert record["kind"] == "image" and "error" not in record
    assert record["orientation"] == "".join(aff2axcodes(reference.affine))
    np.testing.assert_allclose(record["spacing_mm"], reference.header.get_zooms()[:3], rtol=1e-5)
    assert record["stored_dtype"] == str(reference.get_data_dtype())
    values = np.asarray(reference.dataobj, dtype=np.float64)
    assert record["values"]["max"] == pytest.approx(values.max(), rel=1e-6)
    if name == "example4d.nii.gz":
        assert record["shape"] == [128, 96, 24, 2] and record["frames"] == 2


@pytest.mark.shared_data
def test_raw_kspace_is_described_by_its_coils_and_matrix() -> None:
    if not TWIX.exists():
        pytest.skip(f"{TWIX} is not present")
    record = describe_file(TWIX)
    assert record["kind"] == "kspace" and record["format"] == "twix" and record["coils"] == 16
    assert record["image_shape"] == [128, 128] and record["trajectory"] == "cartesian"


def test_the_command_describes_every_input_and_fails_on_any_unreadable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.nii"
    broken.write_bytes(b"\0" * 10)
    assert main(["info", str(NIBABEL_DATA / "anatomical.nii"), str(broken), "--json"]) == 1
    records = json.loads(capsys.readouterr().out)
    assert records[0]["format"] == "nifti" and records[0]["shape"] == [33, 41, 25]
    assert records[1]["path"] == str(broken) and "NIfTI" in records[1]["error"]
    assert main(["info", str(NIBABEL_DATA / "anatomical.nii")]) == 0
    out = capsys.readouterr().out
    assert "orientation  " + "".join(aff2axcodes(nibabel.load(NIBABEL_DATA / "anatomical.nii").affine)) in out
    assert "shape        33 × 41 × 25" in out


def test_a_folder_is_described_input_by_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A folder that is not one DICOM series lists what a batch would find there; an empty one is named."""
    nibabel.save(nibabel.Nifti1Pair(np.zeros((4, 5, 6), np.int16), np.eye(4)), tmp_path / "pair.img")
    np.save(tmp_path / "plane.npy", np.ones((8, 9), np.float32))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "empty").mkdir()
    assert main(["info", str(tmp_path), str(tmp_path / "empty"), "--json"]) == 1
    records = json.loads(capsys.readouterr().out)
    assert [Path(record["path"]).name for record in records] == ["pair.hdr", "plane.npy", "empty"]
    assert records[0]["shape"] == [4, 5, 6] and records[1]["shape"] == [8, 9] and "no image" in records[2]["error"]
