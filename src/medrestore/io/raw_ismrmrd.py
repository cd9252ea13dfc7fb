"""ISMRMRD raw data (Inati et al., MRM 77(1), 2017) through the ``ismrmrd`` package.

An ISMRMRD HDF5 file holds, in a group (default ``dataset``), the XML header (encoded and
reconstruction spaces, field of view) and one record per acquisition: ``(coils, samples)``
complex data, encoding counters (``kspace_encode_step_1`` = ky line, ``kspace_encode_step_2``
= kz, ``slice``), flags and, for non-Cartesian scans, a trajectory ``(samples, dims)``.

Reading: noise-measurement, navigator, phase-correction and dummy-scan acquisitions are
skipped. Cartesian data is placed on the encoded matrix by its counters (lines never acquired
stay zero and define the mask): ``slice``, ``average``, ``contrast`` and ``repetition`` become
batch axes ``(repetitions, contrasts, averages, slices, coils, ny, nx)`` — only the counters
with more than one value, named in ``metadata["batch_axes"]``
(:func:`~medrestore.io.raw_common.assemble_lines`). Averages are averaged only on request
(``average=True``); acquisitions with identical counters are averaged. Several ``phase`` or
``set`` values, or one line in several ``segment`` values, are refused naming the counter.
Data with trajectories becomes non-Cartesian :class:`KSpace` ``(coils, acquisitions, samples)``
with the trajectory in grid units; a 3-D trajectory on several ``kspace_encode_step_2``
partitions (stack-of-stars: radial in-plane, Cartesian ``kz``) becomes ``(coils, partitions,
spokes, samples)`` with a ``(partitions, spokes, samples, 3)`` trajectory; non-Cartesian data of
several slices, averages, contrasts or repetitions is refused. Writing stores Cartesian k-space
line by line (sampled lines only; batch axes named by ``metadata["batch_axes"]`` on their
counters, a single unnamed one as slices) or non-Cartesian k-space one readout per acquisition
(``kspace_encode_step_1`` = spoke, ``kspace_encode_step_2`` = partition).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from medrestore.core.errors import InputError
from medrestore.core.files import atomic_path
from medrestore.core.image import affine_from_spacing
from medrestore.core.kspace import KSpace
from medrestore.io.common import library_errors
from medrestore.io.raw_common import (
    BATCH_COUNTERS, REFUSED_COUNTERS, LineCounters, assemble_lines, build_kspace, build_non_cartesian_kspace,
    check_kspace_array,
)

_SKIPPED_FLAGS = ("ACQ_IS_NOISE_MEASUREMENT", "ACQ_IS_NAVIGATION_DATA", "ACQ_IS_PHASECORR_DATA", "ACQ_IS_DUMMYSCAN_DATA")


def _import_ismrmrd() -> Any:
    try:
        import ismrmrd
    except ImportError as error:
        raise InputError(None, "reading ISMRMRD files needs the 'ismrmrd' package (pip install ismrmrd)") from error
    return ismrmrd


def _encoding(header: Any) -> tuple[tuple[int, int, int], tuple[float, float, float]]:
    """Encoded matrix ``(x, y, z)`` and field of view (mm) of the first encoding."""
    space = header.encoding[0].encodedSpace
    matrix = (int(space.matrixSize.x), int(space.matrixSize.y), int(space.matrixSize.z or 1))
    fov = space.fieldOfView_mm
    return matrix, (float(fov.x), float(fov.y), float(fov.z or 1.0))


def _read_records(path: Path, group: str) -> tuple[Any, list[Any]]:
    ismrmrd = _import_ismrmrd()
    with library_errors(path, "read the ISMRMRD file"):
        dataset = ismrmrd.Dataset(str(path), group, create_if_needed=False)
        try:
            header = ismrmrd.xsd.CreateFromDocument(dataset.read_xml_header())
            records = [dataset.read_acquisition(index) for index in range(dataset.number_of_acquisitions())]
        finally:
            dataset.close()
    skipped = [getattr(ismrmrd, flag) for flag in _SKIPPED_FLAGS]
    kept = [record for record in records if not any(record.is_flag_set(flag) for flag in skipped)]
    if not kept:
        raise InputError(path, "the ISMRMRD file holds no imaging acquisitions")
    return header, kept


def _counters(record: Any) -> LineCounters:
    """The encoding counters of one acquisition."""
    index = record.idx
    return LineCounters(int(index.kspace_encode_step_1), int(index.kspace_encode_step_2), int(index.slice),
                        int(index.average), int(index.contrast), int(index.repetition), int(index.phase), int(index.set),
                        int(index.segment))


def _refuse_batches(path: Path, records: list[Any]) -> None:
    """Non-Cartesian reading keeps one series: refuse several slices, averages, contrasts or repetitions."""
    for name in (*BATCH_COUNTERS, *REFUSED_COUNTERS):
        values = {getattr(_counters(record), name) for record in records}
        if len(values) > 1:
            raise InputError(path, f"non-Cartesian acquisitions carry {len(values)} values of the {name} counter: "
                                   "only one series (one slice, average, contrast and repetition) is read")


def read_ismrmrd(path: str | Path, group: str = "dataset", average: bool = False) -> KSpace:
    """Read ISMRMRD k-space (see the module notes for the layout).

    Args:
        path: the ``.h5``/``.mrd`` file.
        group: the HDF5 group of the dataset.
        average: average the ``average`` counter's acquisitions instead of keeping them as a batch axis.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    header, records = _read_records(path, group)
    (nx, ny, nz), fov = _encoding(header)
    metadata = {"format": "ismrmrd", "encoded_matrix": (nx, ny, nz), "fov_mm": fov}
    if records[0].traj.size:
        _refuse_batches(path, records)
        recon = header.encoding[0].reconSpace.matrixSize
        if records[0].traj.shape[-1] >= 3 and int(recon.z or 1) > 1:
            return _stack_of_stars(path, records, (int(recon.z), int(recon.y), int(recon.x)), fov, metadata)
        return _non_cartesian(path, records, (int(recon.y), int(recon.x)), fov, metadata)
    assembled = assemble_lines(path, [(_counters(record), record.data) for record in records], (nz, ny), average)
    metadata = {**metadata, "batch_axes": list(assembled.batch_axes), "batch_values": assembled.batch_values}
    grid_ndim = 3 if nz > 1 else 2
    data = assembled.data if grid_ndim == 3 else assembled.data[..., 0, :, :]
    samples = data.shape[-1]
    spacing = (fov[1] / ny, fov[0] / samples, fov[2] / nz) if grid_ndim == 2 else (fov[2] / nz, fov[1] / ny, fov[0] / samples)
    return build_kspace(path, data.astype(np.complex64), spacing, metadata, None, grid_ndim)


def _non_cartesian(
    path: Path, records: list[Any], grid: tuple[int, int], fov: tuple[float, float, float], metadata: dict[str, Any]
) -> KSpace:
    """``(coils, acquisitions, samples)`` with trajectory ``(acquisitions, samples, dims)`` (ISMRMRD order y, x → ours)."""
    data = check_kspace_array(path, np.stack([record.data for record in records], axis=1), 2)
    trajectory = np.stack([record.traj for record in records]).astype(np.float32)
    trajectory = trajectory[..., :2][..., ::-1].copy()  # ISMRMRD stores (kx, ky); KSpace uses grid axis order (ky, kx)
    affine = affine_from_spacing((fov[1] / grid[0], fov[0] / grid[1]))
    return build_non_cartesian_kspace(path, data, grid, trajectory, affine, {"source_path": str(path), **metadata})


def _stack_of_stars(
    path: Path, records: list[Any], grid: tuple[int, int, int], fov: tuple[float, float, float], metadata: dict[str, Any]
) -> KSpace:
    """``(coils, partitions, spokes, samples)`` placed by the encoding counters; trajectory ``(kz, ky, kx)`` last."""
    partitions = 1 + max(int(record.idx.kspace_encode_step_2) for record in records)
    spokes = 1 + max(int(record.idx.kspace_encode_step_1) for record in records)
    coils, samples = records[0].data.shape
    if len(records) != partitions * spokes:
        raise InputError(path, f"stack-of-stars needs every spoke on every partition: {len(records)} acquisitions for "
                               f"{partitions} partitions × {spokes} spokes")
    data = np.zeros((coils, partitions, spokes, samples), dtype=np.complex64)
    trajectory = np.zeros((partitions, spokes, samples, 3), dtype=np.float32)
    for record in records:
        if record.data.shape != (coils, samples):
            raise InputError(path, f"acquisitions of different sizes: {record.data.shape} and {(coils, samples)}")
        partition, spoke = int(record.idx.kspace_encode_step_2), int(record.idx.kspace_encode_step_1)
        data[:, partition, spoke] = record.data
        trajectory[partition, spoke] = record.traj[:, :3][:, ::-1]
    data = check_kspace_array(path, data, 3)
    affine = affine_from_spacing((fov[2] / grid[0], fov[1] / grid[1], fov[0] / grid[2]))
    return build_non_cartesian_kspace(path, data, grid, trajectory, affine, {"source_path": str(path), **metadata})


_HEADER_TEMPLATE = """<?xml version="1.0" encoding="utf-8"?>
<ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD">
  <experimentalConditions><H1resonanceFrequency_Hz>{frequency}</H1resonanceFrequency_Hz></experimentalConditions>
  <encoding>
    <encodedSpace>
      <matrixSize><x>{samples}</x><y>{lines}</y><z>{partitions}</z></matrixSize>
      <fieldOfView_mm><x>{fov_x}</x><y>{fov_y}</y><z>{fov_z}</z></fieldOfView_mm>
    </encodedSpace>
    <reconSpace>
      <matrixSize><x>{nx}</x><y>{ny}</y><z>{nz}</z></matrixSize>
      <fieldOfView_mm><x>{fov_x}</x><y>{fov_y}</y><z>{fov_z}</z></fieldOfView_mm>
    </reconSpace>
    <encodingLimits>
      <kspace_encoding_step_1><minimum>0</minimum><maximum>{last_line}</maximum><center>{centre_line}</center></kspace_encoding_step_1>
    </encodingLimits>
    <trajectory>{trajectory}</trajectory>
  </encoding>
</ismrmrdHeader>
"""


def _xml_header(kspace: KSpace, samples: int, lines: int) -> str:
    """A minimal valid ISMRMRD header: one encoding, matrix and field of view from the k-space geometry."""
    spacing = np.linalg.norm(kspace.affine[:3, :3], axis=0)
    nz, (ny, nx) = (kspace.image_shape[0], kspace.image_shape[1:]) if len(kspace.image_shape) == 3 else (1, kspace.image_shape)
    if len(kspace.image_shape) == 3:  # stack-of-stars: spacing (z, y, x) → the template's (y, x) slots and z
        spacing = np.array([spacing[1], spacing[2], spacing[0] * nz])
    field_strength = float(kspace.metadata.get("field_strength_t") or 3.0)
    return _HEADER_TEMPLATE.format(
        frequency=int(round(42.577478518e6 * field_strength)),
        samples=samples,
        lines=lines,
        partitions=nz,
        nx=nx,
        ny=ny,
        nz=nz,
        fov_x=float(spacing[1]) * nx,
        fov_y=float(spacing[0]) * ny,
        fov_z=float(spacing[2]),
        last_line=lines - 1,
        centre_line=lines // 2,
        trajectory="cartesian" if kspace.is_cartesian else "other",
    )


def write_ismrmrd(kspace: KSpace, path: str | Path, group: str = "dataset") -> Path:
    """Write 2-D k-space ``(coils, ny, nx)`` (Cartesian: sampled lines only), radial ``(coils, spokes, samples)``
    or stack-of-stars ``(coils, partitions, spokes, samples)`` with a 3-D trajectory."""
    path = Path(path)
    ismrmrd = _import_ismrmrd()
    stars = not kspace.is_cartesian and kspace.data.ndim == 4 and kspace.trajectory.shape[-1] == 3
    cartesian = kspace.is_cartesian and len(kspace.image_shape) == 2
    if not stars and not cartesian and kspace.data.ndim != 3:
        raise InputError(path, "ISMRMRD output holds 2-D k-space (*batch, coils, ny, nx), radial (coils, spokes, samples) "
                               "or stack-of-stars (coils, partitions, spokes, samples)")
    counters = _batch_counters(path, kspace) if cartesian else []
    data = kspace.data.detach().cpu().numpy()
    with atomic_path(path) as temporary:
        temporary.unlink()
        dataset = ismrmrd.Dataset(str(temporary), group, create_if_needed=True)
        try:
            dataset.write_xml_header(_xml_header(kspace, data.shape[-1], data.shape[-2] if stars or cartesian else data.shape[1]))
            if cartesian:
                _append_lines(ismrmrd, dataset, kspace, data, counters)
            else:
                _append_acquisitions(ismrmrd, dataset, kspace, data)
        finally:
            dataset.close()
    return path


def _batch_counters(path: Path, kspace: KSpace) -> list[tuple[str, list[int]]]:
    """Counter name and counter values of every batch axis of Cartesian ``(*batch, coils, ny, nx)``."""
    batch = tuple(kspace.data.shape[: kspace.data.ndim - 3])
    names = list(kspace.metadata.get("batch_axes") or (["slice"] if len(batch) == 1 else []))
    if len(names) != len(batch) or any(name not in BATCH_COUNTERS for name in names):
        raise InputError(path, f"k-space of shape {tuple(kspace.data.shape)}: its batch axes {names} do not name ISMRMRD "
                               f"counters ({', '.join(BATCH_COUNTERS)}) one per axis")
    recorded = kspace.metadata.get("batch_values") or {}
    return [(name, [int(v) for v in recorded[name]] if len(recorded.get(name, ())) == size else list(range(size)))
            for name, size in zip(names, batch)]


def _append_lines(ismrmrd: Any, dataset: Any, kspace: KSpace, data: np.ndarray, counters: list[tuple[str, list[int]]]) -> None:
    """One acquisition per sampled line of every batch entry, its batch counters set."""
    lines = torch.broadcast_to(kspace.mask, kspace.samples_shape).any(dim=-1).numpy() if kspace.mask is not None else None
    for batch_index in np.ndindex(*data.shape[:-3]):
        for line in range(data.shape[-2]):
            if lines is not None and not lines[line]:
                continue
            record = ismrmrd.Acquisition.from_array(np.ascontiguousarray(data[batch_index][:, line]))
            record.idx.kspace_encode_step_1 = line
            for (name, values), position in zip(counters, batch_index):
                setattr(record.idx, name, values[position])
            record.center_sample = data.shape[-1] // 2
            dataset.append_acquisition(record)


def _append_acquisitions(ismrmrd: Any, dataset: Any, kspace: KSpace, data: np.ndarray) -> None:
    """Non-Cartesian k-space: one readout per acquisition with its trajectory."""
    trajectory = kspace.trajectory.numpy()[..., ::-1]  # back to ISMRMRD's (kx, ky[, kz])
    if data.ndim == 4:
        for partition in range(data.shape[1]):
            for spoke in range(data.shape[2]):
                record = ismrmrd.Acquisition.from_array(np.ascontiguousarray(data[:, partition, spoke]),
                                                        np.ascontiguousarray(trajectory[partition, spoke]))
                record.idx.kspace_encode_step_1 = spoke
                record.idx.kspace_encode_step_2 = partition
                dataset.append_acquisition(record)
        return
    for spoke in range(data.shape[1]):
        record = ismrmrd.Acquisition.from_array(np.ascontiguousarray(data[:, spoke]), np.ascontiguousarray(trajectory[spoke]))
        record.idx.kspace_encode_step_1 = spoke
        dataset.append_acquisition(record)
