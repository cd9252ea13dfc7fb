"""Interfile 3.3 headers as SIMIND, STIR, CASToR and camera exports write them, read into counts and geometry.

Each header below uses the keys, comment lines and layout of one of those writers (a SIMIND planar static
image with ``;#`` comments, a camera export with the standard's default byte order and two energy windows,
a CASToR volume as ``.hdr``/``.img``); the pixels are written here with NumPy in the byte order and number
format the header states, so that the reader must honour each key to get them back.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medrestore.cli.batch import default_image_ext
from medrestore.cli.main import main
from medrestore.core.errors import InputError
from medrestore.io import detect_format, read_image

SIMIND = """!INTERFILE :=
!imaging modality := nucmed
!originating system := simind
!version of keys := 3.3
program author := M Ljungberg, Lund University

!GENERAL DATA :=
!data offset in bytes := 0
!name of data file := {data}
patient name := line phantom
;# Radionuclide (Therapy) := none
exam type := STATIC

!GENERAL IMAGE DATA :=
!type of data := static
imagedata byte order := LITTLEENDIAN
!total number of images := 1
!number of energy windows := 1
;# Units of data (ECT) := counts
!STATIC STUDY (General) :=
!number of images/energy window := 1
image duration (sec) := 300.000
!static study (each frame) :=
!image number := 1
!matrix size [1] := {columns}
!matrix size [2] := {rows}
!number format := short float
!number of bytes per pixel := 4
scaling factor (mm/pixel) [1] := 2.2100
scaling factor (mm/pixel) [2] := 2.2100
;# Collimator := ge-legp
!END OF INTERFILE :=
"""

CAMERA = """!INTERFILE :=
!imaging modality := nucmed
!version of keys := 3.3
!GENERAL DATA :=
!data starting block := {blocks}
!name of data file := raw/{data}
!GENERAL IMAGE DATA :=
!type of data := Static
!total number of images := 2
!number of energy windows := 2
energy window [1] := Tc99m
!matrix size [1] := 32
!matrix size [2] := 24
!number format := unsigned integer
!number of bytes per pixel := 2
scaling factor (mm/pixel) [1] := 4.7952
scaling factor (mm/pixel) [2] := 4.7952
energy window [2] := scatter
!matrix size [1] := 32
!matrix size [2] := 24
!number format := unsigned integer
!number of bytes per pixel := 2
!END OF INTERFILE :=
"""

CASTOR = """!INTERFILE :=
!imaging modality := nucmed
!version of keys := CASToRv3.1
!GENERAL DATA :=
!data offset in bytes := 0
!name of data file := {data}
!GENERAL IMAGE DATA
!type of data := Static
!total number of images := 6
imagedata byte order := LITTLEENDIAN
!STATIC STUDY (General) :=
number of dimensions := 3
!matrix size [1] := 10
!matrix size [2] := 12
!matrix size [3] := 6
!number format := short float
!number of bytes per pixel := 4
scaling factor (mm/pixel) [1] := 2
scaling factor (mm/pixel) [2] := 2.5
scaling factor (mm/pixel) [3] := 3
data rescale offset := 1
data rescale slope := 0.5
!END OF INTERFILE :=
"""


def test_a_simind_planar_image_reads_as_counts_with_its_pixel_size(tmp_path: Path) -> None:
    counts = np.random.default_rng(0).poisson(50.0, (80, 40)).astype("<f4")
    counts.tofile(tmp_path / "line.a00")
    header = tmp_path / "line.h00"
    header.write_text(SIMIND.format(data="line.a00", columns=40, rows=80), encoding="ascii")
    assert detect_format(header) == "interfile"
    image = read_image(header)
    assert image.shape == (80, 40) and image.spatial_ndim == 2 and image.modality == "nm"
    assert image.spacing == pytest.approx((2.21, 2.21))
    assert np.array_equal(image.data.numpy(), counts)
    assert image.metadata["format"] == "interfile" and image.metadata["interfile"]["type_of_data"] == "static"


def test_a_camera_export_big_endian_by_default_with_energy_windows_and_a_block_offset(tmp_path: Path) -> None:
    windows = (np.arange(2 * 24 * 32).reshape(2, 24, 32) * 7).astype(">u2")  # the header names no byte order: big-endian
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "scan.img").write_bytes(b"\xff" * 2048 + windows.tobytes())  # one block before the pixels
    header = tmp_path / "scan.hdr"  # .hdr: told from Analyze/NIfTI by its content
    header.write_text(CAMERA.format(blocks=1, data="scan.img"), encoding="ascii")
    assert detect_format(header) == "interfile"
    image = read_image(header)
    assert image.shape == (2, 24, 32) and image.spatial_ndim == 3
    assert image.spacing == pytest.approx((1.0, 4.7952, 4.7952))
    assert np.array_equal(image.data.numpy(), windows.astype(np.float32))
    assert str(image.metadata["dtype"]) == "uint16"


def test_a_castor_volume_keeps_its_slice_spacing_and_rescale(tmp_path: Path) -> None:
    stored = np.random.default_rng(1).uniform(0, 100, (6, 12, 10)).astype("<f4")
    stored.tofile(tmp_path / "volume.img")
    header = tmp_path / "volume.hdr"
    header.write_text(CASTOR.format(data="volume.img"), encoding="ascii")
    image = read_image(header)
    assert image.shape == (6, 12, 10) and image.spatial_ndim == 3
    assert image.spacing == pytest.approx((3.0, 2.5, 2.0))
    assert np.allclose(image.data.numpy(), stored.astype(np.float64) * 0.5 + 1.0, rtol=1e-6)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("!number format := short float", "!number format := bit"), "number format 'bit' is not read"),
        (("!matrix size [2] := 80", ""), "no 'matrix size [2]' key"),
        (("!name of data file := line.a00", "!name of data file := elsewhere.a00"), "elsewhere.a00, does not exist"),
        (("imagedata byte order := LITTLEENDIAN", "imagedata byte order := MIDDLEENDIAN"), "neither BIGENDIAN nor LITTLEENDIAN"),
        (("!matrix size [1] := 40", "!matrix size [1] := 40\n!matrix size [1] := 41"), "differ in 'matrix size [1]'"),
    ],
)
def test_bad_headers_are_named(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    np.zeros((80, 40), "<f4").tofile(tmp_path / "line.a00")
    header = tmp_path / "line.h00"
    header.write_text(SIMIND.format(data="line.a00", columns=40, rows=80).replace(*change), encoding="ascii")
    with pytest.raises(InputError) as caught:
        read_image(header)
    assert message in str(caught.value) and caught.value.path == header


def test_a_truncated_data_file_is_named(tmp_path: Path) -> None:
    np.zeros((79, 40), "<f4").tofile(tmp_path / "line.a00")
    header = tmp_path / "line.h00"
    header.write_text(SIMIND.format(data="line.a00", columns=40, rows=80), encoding="ascii")
    with pytest.raises(InputError) as caught:
        read_image(header)
    assert caught.value.path == tmp_path / "line.a00" and "12640 bytes" in str(caught.value) and "12800 bytes" in str(caught.value)


def test_superres_takes_an_interfile_scan_and_never_writes_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    counts = np.random.default_rng(2).poisson(80.0, (32, 16)).astype("<f4")
    counts.tofile(tmp_path / "scan.a00")
    header = tmp_path / "scan.h00"
    header.write_text(SIMIND.format(data="scan.a00", columns=16, rows=32), encoding="ascii")
    output = tmp_path / "scan-x4.nii.gz"
    assert main(["superres", str(header), "-o", str(output)]) == 0
    restored = read_image(output)
    assert restored.shape == (128, 64) and restored.spacing == pytest.approx((2.21 / 4, 2.21 / 4))
    assert float(restored.data.double().sum()) == pytest.approx(float(counts.sum()), rel=1e-6)
    record = json.loads(Path(f"{output}.json").read_text())
    assert record["system_response"]["pixel_size_mm"] == pytest.approx(2.21 / 4)
    assert main(["superres", str(header), "-o", str(tmp_path / "scan-x4.h33")]) == 2
    assert "Interfile files are read, not written" in capsys.readouterr().err
    assert default_image_ext(header) == ".nii.gz"


STIR = """!INTERFILE  :=
!imaging modality := NM
name of data file := {data}
!version of keys := STIR4.0
!GENERAL DATA :=
!GENERAL IMAGE DATA :=
!type of data := Tomographic
imagedata byte order := BIGENDIAN
!SPECT STUDY (General) :=
!number format := float
!number of bytes per pixel := 4
number of dimensions := 3
matrix axis label [3] := z
!matrix size [3] := 3
scaling factor (mm/pixel) [3] := 4.42
matrix axis label [2] := y
!matrix size [2] := 5
scaling factor (mm/pixel) [2] := 4.42
matrix axis label [1] := x
!matrix size [1] := 4
scaling factor (mm/pixel) [1] := 4.42
number of time frames := 1
image scaling factor[1] := 2
data offset in bytes[1] := 16
!END OF INTERFILE :=
"""


def test_a_stir_volume_with_keys_written_without_spaces_before_brackets(tmp_path: Path) -> None:
    stored = np.arange(60, dtype=">f4").reshape(3, 5, 4)
    (tmp_path / "recon.v").write_bytes(b"\0" * 16 + stored.tobytes())  # data offset in bytes[1] := 16
    header = tmp_path / "recon.hv"
    header.write_text(STIR.format(data="recon.v"), encoding="ascii")
    image = read_image(header)
    assert image.shape == (3, 5, 4) and image.spacing == pytest.approx((4.42, 4.42, 4.42))
    assert np.array_equal(image.data.numpy(), stored.astype(np.float32) * 2)  # image scaling factor[1] := 2
