"""``read_kspace`` / ``write_kspace`` / ``read_coil_maps``: one entry point for raw MRI data.

=========  =================================  ==================================================
format     files                              reader
=========  =================================  ==================================================
twix       ``.dat``                           :func:`~medrestore.io.raw_twix.read_twix`
fastmri    ``.h5``/``.hdf5`` with ``kspace``  :func:`~medrestore.io.raw_fastmri.read_fastmri`
ismrmrd    ``.h5``/``.mrd`` with ``dataset``  :func:`~medrestore.io.raw_ismrmrd.read_ismrmrd`
bart       ``.cfl`` + ``.hdr``                :func:`~medrestore.io.raw_bart.read_bart_kspace`
npy / npz  ``.npy``, ``.npz``                 :mod:`~medrestore.io.raw_numpy`
=========  =================================  ==================================================

HDF5 files are told apart by content (a ``kspace`` dataset → fastMRI; a group holding
``data``/``xml`` → ISMRMRD); an HDF5 file with neither is refused naming the file.
Writing supports ``.npz`` (every field), ``.cfl``/``.hdr`` (BART) and ``.h5``/``.mrd`` (ISMRMRD).

Batch axes: slices, repetitions, contrasts (echoes) and averages of one scan stay apart as
batch axes ``(*batch, coils, *grid)``, named outermost first in ``metadata["batch_axes"]``
(twix/ISMRMRD: ``repetition, contrast, average, slice``; BART: reversed BART dimension order).
``average=True`` averages the averages instead (complex mean of the lines that differ only in
their average counter).

Non-Cartesian BART k-space ``[1, samples, spokes, coils]`` comes with its trajectory in a second
BART file: ``read_kspace("k.cfl", trajectory="t.cfl")`` (other formats carry their own trajectory).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import torch

from medrestore.core.errors import InputError
from medrestore.core.kspace import KSpace
from medrestore.io.common import library_errors
from medrestore.io.raw_bart import (
    COIL_DIMENSION, MAPS_DIMENSION, bart_stem, cartesian_layout, read_bart_array, read_bart_kspace, write_bart_kspace,
)
from medrestore.io.raw_fastmri import read_fastmri
from medrestore.io.raw_ismrmrd import read_ismrmrd, write_ismrmrd
from medrestore.io.raw_numpy import read_npy_kspace, read_npz_kspace, write_npz_kspace
from medrestore.io.raw_twix import read_twix

KSPACE_FORMATS = ("twix", "fastmri", "ismrmrd", "bart", "npy", "npz")


def _hdf5_flavour(path: Path) -> str:
    with library_errors(path, "open the HDF5 file"), h5py.File(path, "r") as handle:
        if "kspace" in handle:
            return "fastmri"
        for name, item in handle.items():
            if isinstance(item, h5py.Group) and ("data" in item or "xml" in item):
                return "ismrmrd"
        found = sorted(handle.keys())
    raise InputError(path, f"HDF5 file holds no k-space: neither a fastMRI 'kspace' dataset nor an ISMRMRD group (found: {found})")


def kspace_format(path: str | Path) -> str:
    """The raw format of ``path`` (one of :data:`KSPACE_FORMATS`)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".cfl", ".hdr"):
        return "bart"
    if not path.is_file():
        if bart_stem(path).with_suffix(".cfl").is_file():
            return "bart"
        raise InputError(path, "file not found")
    if suffix == ".dat":
        return "twix"
    if suffix in (".npy", ".npz"):
        return suffix[1:]
    if h5py.is_hdf5(path):
        return _hdf5_flavour(path)
    raise InputError(path, f"unknown raw k-space format {suffix!r}; expected one of .dat .h5 .hdf5 .mrd .cfl .npy .npz")


def read_kspace(path: str | Path, trajectory: str | Path | None = None, average: bool = False) -> KSpace:
    """Read raw k-space in any supported format (see the module table).

    Args:
        path: the k-space file.
        trajectory: BART trajectory ``.cfl``/``.hdr`` of non-Cartesian BART k-space (BART units
            and axes, converted to grid units: :mod:`medrestore.io.raw_bart`).
        average: twix, ISMRMRD and BART: average repeated acquisitions (the average counter /
            BART ``AVG``) instead of keeping them as a batch axis.

    Raises:
        InputError: unknown format, HDF5 without k-space, NaN/Inf samples, corrupt files, a
            trajectory given with a format other than BART; the message names the file.
    """
    path = Path(path)
    format_name = kspace_format(path)
    if trajectory is not None and format_name != "bart":
        raise InputError(trajectory, f"a separate trajectory goes with BART k-space (.cfl); {path.name} is {format_name}, "
                                     "which carries its own")
    if format_name == "twix":
        return read_twix(path, average)
    if format_name == "fastmri":
        return read_fastmri(path)
    if format_name == "ismrmrd":
        return read_ismrmrd(path, average=average)
    if format_name == "bart":
        return read_bart_kspace(path, trajectory, average)
    if format_name == "npy":
        return read_npy_kspace(path)
    return read_npz_kspace(path)


def write_kspace(kspace: KSpace, path: str | Path) -> Path:
    """Write ``kspace`` as ``.npz`` (all fields), BART ``.cfl``/``.hdr`` or ISMRMRD ``.h5``/``.mrd``."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return write_npz_kspace(kspace, path)
    if suffix in (".cfl", ".hdr"):
        return write_bart_kspace(kspace, path)
    if suffix in (".h5", ".hdf5", ".mrd"):
        return write_ismrmrd(kspace, path)
    raise InputError(path, f"cannot write k-space as {suffix!r}; use .npz, .cfl or .h5/.mrd (ISMRMRD)")


def _bart_coil_maps(path: Path, map_sets: int) -> np.ndarray:
    """BART maps ``[nx, ny, nz, coils, maps]`` (e.g. ``bart ecalib``) → ``(sets, coils, *grid)`` of the first ``map_sets`` sets.

    Spatial singletons are dropped as in :func:`~medrestore.io.raw_bart.read_bart_kspace`, so maps
    of a ``[1, ny, nz, coils]`` slice fit its ``(nz, ny)`` image.
    """
    values, dims = read_bart_array(path)
    if dims[MAPS_DIMENSION] < map_sets:
        raise InputError(path, f"holds {dims[MAPS_DIMENSION]} set(s) of coil maps; {map_sets} were asked for")
    values = values[(slice(None),) * (len(dims) - 1 - MAPS_DIMENSION) + (slice(0, map_sets),)]
    dims[MAPS_DIMENSION] = 1
    grid, batch = cartesian_layout(bart_stem(path).with_suffix(".hdr"), dims)
    if batch:
        raise InputError(path, f"coil maps of BART dims {dims} have batch dimensions; one set of maps is read")
    return values.reshape([map_sets] + [dims[dimension] for dimension in (COIL_DIMENSION, *grid)])


def _numpy_coil_maps(path: Path) -> np.ndarray:
    """``.npy`` or ``.npz`` (``coil_maps`` or the only array) as stored."""
    if not path.is_file():
        raise InputError(path, "file not found")
    with library_errors(path, "read the coil maps"):
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            return loaded
        with loaded:
            names = loaded.files
            return loaded["coil_maps"] if "coil_maps" in names else loaded[names[0]]


def read_coil_maps(path: str | Path, kspace: KSpace, map_sets: int = 1) -> torch.Tensor:
    """Coil sensitivity maps for ``kspace`` from ``.npy``/``.npz`` (``coil_maps`` or the only array) or BART ``.cfl``.

    Args:
        path: the maps file: ``(coils, *image)`` or ``(sets, coils, *image)`` (NumPy), BART
            ``[nx, ny, nz, coils, maps]`` (``bart ecalib``).
        kspace: the k-space the maps belong to (coil count and image shape are checked).
        map_sets: how many map sets to read (ESPIRiT soft-SENSE: 2).

    Returns:
        complex64 ``(coils, *image_shape)`` for one set, ``(sets, coils, *image_shape)`` for several.

    Raises:
        InputError: unreadable file, real or non-finite maps, fewer sets than asked for, or a
            shape that does not fit ``(kspace.n_coils, *kspace.image_shape)``.
    """
    path = Path(path)
    expected = (kspace.n_coils, *kspace.image_shape)
    if path.suffix.lower() in (".cfl", ".hdr"):
        maps = _bart_coil_maps(path, map_sets)
        stored_shape = tuple(maps.shape[1:]) if map_sets == 1 else tuple(maps.shape)
    else:
        maps = _numpy_coil_maps(path)
        stored_shape = tuple(maps.shape)
        if maps.ndim == len(expected):
            maps = maps[None]
        if maps.ndim == len(expected) + 1 and maps.shape[0] < map_sets:
            raise InputError(path, f"holds {maps.shape[0]} set(s) of coil maps; {map_sets} were asked for")
        maps = maps[:map_sets]
    if maps.dtype.kind != "c" or not np.isfinite(maps).all():
        raise InputError(path, "coil maps must be complex and finite")
    if tuple(maps.shape[1:]) != expected:
        raise InputError(path, f"coil maps of shape {stored_shape} do not match the k-space: expected {expected} (coils, *image)")
    maps = torch.from_numpy(np.ascontiguousarray(maps, dtype=np.complex64))
    return maps[0] if map_sets == 1 else maps
