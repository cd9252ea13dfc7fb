"""ISMRMRD files with several slices, repetitions, contrasts and averages, built with the `ismrmrd` package.

Every acquisition carries a value that says where it came from, so each test checks that it
lands on its own batch index (nothing is averaged unless asked for).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from medrestore.cli.main import main
from medrestore.core.errors import InputError
from medrestore.core.kspace import KSpace
from medrestore.io import read_kspace, write_kspace

ismrmrd = pytest.importorskip("ismrmrd", reason="the 'ismrmrd' package is not installed")

COILS, LINES, SAMPLES = 2, 6, 8
HEADER = """<?xml version="1.0" encoding="utf-8"?>
<ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD">
  <experimentalConditions><H1resonanceFrequency_Hz>123250000</H1resonanceFrequency_Hz></experimentalConditions>
  <encoding>
    <encodedSpace><matrixSize><x>8</x><y>6</y><z>1</z></matrixSize>
      <fieldOfView_mm><x>160</x><y>120</y><z>5</z></fieldOfView_mm></encodedSpace>
    <reconSpace><matrixSize><x>8</x><y>6</y><z>1</z></matrixSize>
      <fieldOfView_mm><x>160</x><y>120</y><z>5</z></fieldOfView_mm></reconSpace>
    <encodingLimits/>
    <trajectory>cartesian</trajectory>
  </encoding>
</ismrmrdHeader>
"""


def tag(slice_index: int = 0, repetition: int = 0, contrast: int = 0, average: int = 0) -> complex:
    """The value every sample of one (slice, repetition, contrast, average) carries."""
    return complex(1 + slice_index + 10 * repetition + 100 * contrast, 1000 * average)


def write_file(path: Path, counters: list[dict[str, int]], noise_scan: bool = True) -> Path:
    """One acquisition per line for every counter combination in ``counters``, plus a noise scan first."""
    dataset = ismrmrd.Dataset(str(path), "dataset", create_if_needed=True)
    dataset.write_xml_header(HEADER)
    if noise_scan:
        noise = ismrmrd.Acquisition.from_array(np.full((COILS, SAMPLES), 99.0, dtype=np.complex64))
        noise.set_flag(ismrmrd.ACQ_IS_NOISE_MEASUREMENT)
        dataset.append_acquisition(noise)
    for counter in counters:
        value = tag(counter.get("slice", 0), counter.get("repetition", 0), counter.get("contrast", 0), counter.get("average", 0))
        for line in range(LINES):
            record = ismrmrd.Acquisition.from_array(np.full((COILS, SAMPLES), value * (line + 1), dtype=np.complex64))
            record.idx.kspace_encode_step_1 = line
            for name, index in counter.items():
                setattr(record.idx, name, index)
            dataset.append_acquisition(record)
    dataset.close()
    return path


def grid(combinations: dict[str, range]) -> list[dict[str, int]]:
    """Every combination of the counter ranges, as counter dicts."""
    names = list(combinations)
    return [dict(zip(names, values)) for values in np.ndindex(*(len(combinations[name]) for name in names))]


def lines_of(value: complex) -> np.ndarray:
    """The expected ``(coils, ny, nx)`` of one tagged batch entry."""
    return np.broadcast_to(value * (np.arange(LINES) + 1)[None, :, None], (COILS, LINES, SAMPLES))


def test_slices_repetitions_contrasts_and_averages_land_apart(tmp_path: Path) -> None:
    """Batch order (repetition, contrast, average, slice); the noise scan is skipped; averages averaged on request."""
    path = write_file(tmp_path / "series.h5", grid({"repetition": range(2), "contrast": range(2), "average": range(2), "slice": range(3)}))
    kspace = read_kspace(path)
    assert tuple(kspace.data.shape) == (2, 2, 2, 3, COILS, LINES, SAMPLES)
    assert kspace.metadata["batch_axes"] == ["repetition", "contrast", "average", "slice"] and kspace.mask is None
    for repetition, contrast, average, slice_index in np.ndindex(2, 2, 2, 3):
        expected = lines_of(tag(slice_index, repetition, contrast, average))
        np.testing.assert_array_equal(kspace.data[repetition, contrast, average, slice_index].numpy(), expected)
    averaged = read_kspace(path, average=True)
    assert tuple(averaged.data.shape) == (2, 2, 3, COILS, LINES, SAMPLES)
    assert averaged.metadata["batch_axes"] == ["repetition", "contrast", "slice"]
    np.testing.assert_allclose(averaged.data[1, 0, 2].numpy(), lines_of(tag(2, 1, 0, 0) + 500j))
    np.testing.assert_allclose(np.diag(kspace.affine)[:3], [20.0, 20.0, 5.0])


def test_slices_make_a_stack_and_a_recon_volume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Three slices → (slices, coils, ny, nx) and a (slices, ny, nx) image; repetitions × slices → (slices, ny, nx, repetitions)."""
    stack = read_kspace(write_file(tmp_path / "stack.h5", grid({"slice": range(3)})))
    assert tuple(stack.data.shape) == (3, COILS, LINES, SAMPLES) and stack.metadata["batch_axes"] == ["slice"]
    assert main(["recon", str(tmp_path / "stack.h5"), "-o", str(tmp_path / "stack_image.npy"), "--method", "zero-filled"]) == 0
    assert np.load(tmp_path / "stack_image.npy").shape == (3, LINES, SAMPLES)
    write_file(tmp_path / "dynamic.h5", grid({"repetition": range(2), "slice": range(3), "average": range(2)}))
    output = tmp_path / "dynamic_image.npy"
    assert main(["recon", str(tmp_path / "dynamic.h5"), "-o", str(output), "--method", "zero-filled", "--average"]) == 0
    images = np.load(output)
    assert images.shape == (3, LINES, SAMPLES, 2)
    assert images[..., 1].sum() > images[..., 0].sum()  # repetition 1 carries larger values
    capsys.readouterr()


def test_unsupported_counters_are_named(tmp_path: Path) -> None:
    """Several phases or sets, a line in several segments, and radial data of several slices: one clear error each."""
    with pytest.raises(InputError, match=r"phases\.h5: acquisitions carry 2 values of the phase counter"):
        read_kspace(write_file(tmp_path / "phases.h5", grid({"phase": range(2)})))
    with pytest.raises(InputError, match=r"sets\.h5: acquisitions carry 3 values of the set counter"):
        read_kspace(write_file(tmp_path / "sets.h5", grid({"set": range(3)})))
    with pytest.raises(InputError, match=r"segments\.h5: line 0 is acquired in several segment counter values"):
        read_kspace(write_file(tmp_path / "segments.h5", grid({"segment": range(2)})))
    trajectory = torch.rand(4, SAMPLES, 2) * 6 - 3
    radial = KSpace(torch.ones(COILS, 4, SAMPLES, dtype=torch.complex64), (6, 6), None, trajectory)
    path = write_kspace(radial, tmp_path / "radial.h5")
    dataset = ismrmrd.Dataset(str(path), "dataset", create_if_needed=False)
    record = dataset.read_acquisition(0)
    record.idx.slice = 1
    dataset.append_acquisition(record)
    dataset.close()
    with pytest.raises(InputError, match=r"radial\.h5: non-Cartesian acquisitions carry 2 values of the slice counter"):
        read_kspace(path)


def test_echo_trains_place_lines_by_their_own_counter(tmp_path: Path) -> None:
    """Segments that only label acquisition order (each line once) are read as one image."""
    path = tmp_path / "trains.h5"
    dataset = ismrmrd.Dataset(str(path), "dataset", create_if_needed=True)
    dataset.write_xml_header(HEADER)
    for line in range(LINES):
        record = ismrmrd.Acquisition.from_array(np.full((COILS, SAMPLES), line + 1, dtype=np.complex64))
        record.idx.kspace_encode_step_1 = line
        record.idx.segment = line % 2
        dataset.append_acquisition(record)
    dataset.close()
    kspace = read_kspace(path)
    np.testing.assert_array_equal(kspace.data.numpy(), lines_of(1.0))


def test_stacks_round_trip_through_our_ismrmrd_writer(tmp_path: Path) -> None:
    """Written batch axes come back on the same counters, with the same counter values."""
    source = read_kspace(write_file(tmp_path / "source.h5", grid({"contrast": range(2), "slice": range(2)})))
    copy = read_kspace(write_kspace(source, tmp_path / "copy.mrd"))
    assert copy.metadata["batch_axes"] == ["contrast", "slice"]
    np.testing.assert_array_equal(copy.data.numpy(), source.data.numpy())
    unnamed = KSpace(torch.ones(4, COILS, LINES, SAMPLES, dtype=torch.complex64), (LINES, SAMPLES))
    assert read_kspace(write_kspace(unnamed, tmp_path / "unnamed.h5")).metadata["batch_axes"] == ["slice"]
    two_unnamed = KSpace(torch.ones(2, 2, COILS, LINES, SAMPLES, dtype=torch.complex64), (LINES, SAMPLES))
    with pytest.raises(InputError, match=r"batch axes \[\] do not name ISMRMRD counters"):
        write_kspace(two_unnamed, tmp_path / "two.h5")
