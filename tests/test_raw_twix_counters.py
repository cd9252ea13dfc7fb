"""Siemens twix: the real pulseq files read as before, and files rewritten from one of them with twixtools
(several slices, averages, cardiac phases; several measurements in one file) land where they should."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from medrestore.core.errors import InputError
from medrestore.io import read_kspace

twixtools = pytest.importorskip("twixtools", reason="reading twix needs the 'twixtools' package")

pytestmark = pytest.mark.shared_data
BODY_COIL = "2024-02-06-164120.dat"  # 2 coils, 128 lines × 128 samples: the smallest real file


def _measurement(path: Path) -> dict[str, Any]:
    """The (only) measurement of a real file, its readouts made editable (counters and data)."""
    with contextlib.redirect_stdout(io.StringIO()):
        measurement = twixtools.read_twix(str(path), verbose=False, keep_syncdata_and_acqend=True)[-1]
    measurement["mdb"] = [mdb.convert_to_local() for mdb in measurement["mdb"]]
    return measurement


def _image_lines(measurement: dict[str, Any]) -> list[Any]:
    return [mdb for mdb in measurement["mdb"] if mdb.is_image_scan()]


def _write(path: Path, measurements: list[dict[str, Any]]) -> Path:
    with contextlib.redirect_stdout(io.StringIO()):
        twixtools.write_twix(measurements, str(path), version_is_ve=True)
    return path


def _copies(source: Path, counter: str, scales: list[float]) -> dict[str, Any]:
    """One measurement holding every image line once per entry of ``scales``, counter ``counter`` = entry index."""
    copies = [_measurement(source) for _ in scales]
    first = copies[0]
    lines = []
    for index, (copy, scale) in enumerate(zip(copies, scales)):
        for mdb in _image_lines(copy):
            setattr(mdb.mdh.Counter, counter, index)
            mdb.data = mdb.data * scale
            lines.append(mdb)
    first["mdb"] = lines + [mdb for mdb in first["mdb"] if not mdb.is_image_scan()]
    return first


@pytest.mark.parametrize("name", ["2024-02-06-160052.dat", "2024-02-06-160115.dat", "2024-02-06-161542.dat",
                                  "2024-02-06-163514.dat", "2024-02-06-164120.dat", "2024-02-06-164128.dat"])
def test_real_files_read_as_before(shared_data: Path, name: str) -> None:
    """One measurement, only Lin varies: (coils, lines, samples), every line where twixtools says."""
    path = shared_data / "mri-raw-pulseq" / name
    kspace = read_kspace(path)
    lines = _image_lines(_measurement(path))
    coils, samples = lines[0].data.shape
    expected = np.zeros((coils, 1 + max(mdb.cLin for mdb in lines), samples), dtype=np.complex64)
    for mdb in lines:
        expected[:, mdb.cLin] = mdb.data
    assert kspace.metadata["measurements"] == 1 and kspace.metadata["batch_axes"] == []
    np.testing.assert_array_equal(kspace.data.numpy(), expected)


def test_slices_make_a_stack_and_averages_stay_apart(shared_data: Path, tmp_path: Path) -> None:
    """Sli → (slices, coils, ny, nx); Ave → a batch axis, averaged only on request."""
    source = shared_data / "mri-raw-pulseq" / BODY_COIL
    original = read_kspace(source).data.numpy()
    stack = read_kspace(_write(tmp_path / "slices.dat", [_copies(source, "Sli", [1.0, 2.0, 3.0])]))
    assert tuple(stack.data.shape) == (3, 2, 128, 128) and stack.metadata["batch_axes"] == ["slice"]
    for index, scale in enumerate([1.0, 2.0, 3.0]):
        np.testing.assert_allclose(stack.data[index].numpy(), scale * original, rtol=1e-6)
    averages = _write(tmp_path / "averages.dat", [_copies(source, "Ave", [1.0, 2.0])])
    kept = read_kspace(averages)
    assert tuple(kept.data.shape) == (2, 2, 128, 128) and kept.metadata["batch_axes"] == ["average"]
    np.testing.assert_allclose(read_kspace(averages, average=True).data.numpy(), 1.5 * original, rtol=1e-6)


def test_several_measurements_use_the_last(shared_data: Path, tmp_path: Path) -> None:
    """An adjustment measurement before the image scan (a multi-raid file) changes nothing."""
    source = shared_data / "mri-raw-pulseq" / BODY_COIL
    adjustment = _measurement(source)
    adjustment["mdb"] = _image_lines(adjustment)[:10] + adjustment["mdb"][-1:]
    for mdb in adjustment["mdb"][:10]:
        mdb.data = np.ones_like(mdb.data)
    path = _write(tmp_path / "multi_raid.dat", [adjustment, _measurement(source)])
    kspace = read_kspace(path)
    assert kspace.metadata["measurements"] == 2
    np.testing.assert_array_equal(kspace.data.numpy(), read_kspace(source).data.numpy())


def test_cardiac_phases_are_refused_naming_the_counter(shared_data: Path, tmp_path: Path) -> None:
    path = _write(tmp_path / "phases.dat", [_copies(shared_data / "mri-raw-pulseq" / BODY_COIL, "Phs", [1.0, 1.0])])
    with pytest.raises(InputError, match=r"phases\.dat: acquisitions carry 2 values of the Phs counter"):
        read_kspace(path)
