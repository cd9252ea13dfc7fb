"""NumPy ``.npy`` and ``.npz`` files.

``.npy`` holds a bare array: spacing 1 mm, identity orientation, ``spatial_ndim =
min(ndim, 3)`` (a 4-D array is 3 spatial axes + time).

``.npz`` holds ``data`` (or its only array) plus optional ``affine`` (4×4 float),
``spatial_ndim`` (int scalar, 2 or 3) and ``modality`` (str scalar); the writer stores all four.

Pickled object arrays are refused (``allow_pickle=False``): unpickling runs arbitrary code.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from medrestore.core.errors import InputError
from medrestore.core.files import atomic_path
from medrestore.core.image import MODALITIES, Image, affine_from_spacing
from medrestore.io.common import (
    DecodedImage,
    cast_to_dtype,
    check_source_dtype,
    image_values,
    library_errors,
    resolve_write_dtype,
)

_PICKLE_PROBLEM = "holds pickled Python objects (dtype object); refusing to load them (allow_pickle=False)"


def _spatial_ndim_for(path: Path, shape: tuple[int, ...]) -> int:
    """``min(ndim, 3)`` for 2–4 axes; anything else is refused."""
    if not 2 <= len(shape) <= 4:
        raise InputError(path, f"array of shape {shape} is not an image (need 2 to 4 axes: 2-D, 3-D or 3-D + time)")
    return min(len(shape), 3)


def _npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """``(shape, dtype, data_offset)`` from the ``.npy`` header, without reading the data."""
    with library_errors(path, "parse the .npy header"), open(path, "rb") as stream:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
        return tuple(int(n) for n in shape), np.dtype(dtype), stream.tell()


def read_npy(path: str | Path) -> DecodedImage:
    """Read a ``.npy`` array (checks: no objects, supported dtype, not truncated)."""
    path = Path(path)
    shape, dtype, offset = _npy_header(path)
    if dtype.hasobject:
        raise InputError(path, _PICKLE_PROBLEM)
    check_source_dtype(path, dtype)
    expected = offset + int(np.prod(shape)) * dtype.itemsize
    size = path.stat().st_size
    if size < expected:
        raise InputError(path, f"file is truncated: the header promises {expected} bytes, the file holds {size}")
    with library_errors(path, "read .npy data"):
        array = np.load(path, allow_pickle=False)
    spatial_ndim = _spatial_ndim_for(path, array.shape)
    return DecodedImage(array, affine_from_spacing((1.0,) * spatial_ndim), spatial_ndim, array.dtype, "unknown", {})


def _member(path: Path, archive: Any, key: str) -> np.ndarray:
    """One array of an open ``NpzFile``, with pickled/corrupt members reported clearly."""
    try:
        return np.asarray(archive[key])
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise InputError(path, f"member {key!r} {_PICKLE_PROBLEM}") from error
        raise InputError(path, f"cannot read member {key!r}: {error}") from error


def _data_key(path: Path, keys: list[str]) -> str:
    """``"data"`` if present, else the only member."""
    if "data" in keys:
        return "data"
    arrays = [key for key in keys if key not in ("affine", "spatial_ndim", "modality")]
    if len(arrays) == 1:
        return arrays[0]
    raise InputError(path, f"no 'data' array and not exactly one array to choose from (members: {sorted(keys)})")


def _npz_geometry(path: Path, archive: Any, keys: list[str], shape: tuple[int, ...]) -> tuple[np.ndarray, int]:
    """Validated ``(affine, spatial_ndim)`` from the optional members."""
    spatial_ndim = _spatial_ndim_for(path, shape)
    if "spatial_ndim" in keys:
        stored = _member(path, archive, "spatial_ndim")
        if stored.size != 1 or stored.dtype.kind not in "iu" or int(stored) not in (2, 3):
            raise InputError(path, f"member 'spatial_ndim' must be the integer 2 or 3, got {stored!r}")
        spatial_ndim = int(stored)
        if len(shape) not in (spatial_ndim, spatial_ndim + 1):
            raise InputError(path, f"'data' has shape {shape} but spatial_ndim is {spatial_ndim}")
    affine = affine_from_spacing((1.0,) * spatial_ndim)
    if "affine" in keys:
        affine = _member(path, archive, "affine")
        if affine.shape != (4, 4) or affine.dtype.kind not in "iuf" or not np.all(np.isfinite(affine)):
            raise InputError(path, f"member 'affine' must be a finite 4x4 matrix, got shape {affine.shape}")
    return affine.astype(np.float64), spatial_ndim


def _npz_modality(path: Path, archive: Any, keys: list[str]) -> str:
    if "modality" not in keys:
        return "unknown"
    stored = _member(path, archive, "modality")
    if stored.size != 1 or stored.dtype.kind not in "US" or str(stored.item()) not in MODALITIES:
        raise InputError(path, f"member 'modality' must be one of {MODALITIES}, got {stored!r}")
    return str(stored.item())


def read_npz(path: str | Path) -> DecodedImage:
    """Read ``data`` (or the only array) and optional geometry from a ``.npz`` archive."""
    path = Path(path)
    with open(path, "rb") as stream:
        try:
            archive = np.load(stream, allow_pickle=False)
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as error:
            raise InputError(path, f"corrupt or truncated .npz (zip) archive: {error}") from error
        with archive, library_errors(path, "read .npz"):
            keys = list(archive.files)
            key = _data_key(path, keys)
            data = _member(path, archive, key)
            if data.dtype.hasobject:
                raise InputError(path, f"member {key!r} {_PICKLE_PROBLEM}")
            check_source_dtype(path, data.dtype)
            affine, spatial_ndim = _npz_geometry(path, archive, keys, data.shape)
            modality = _npz_modality(path, archive, keys)
    return DecodedImage(data, affine, spatial_ndim, data.dtype, modality, {"npz_members": sorted(keys)})


def write_npy(image: Image, path: str | Path, dtype: str | np.dtype | None = None) -> Path:
    """Save the pixel array only (no geometry) as ``.npy``; ``dtype=None`` is float32."""
    path = Path(path)
    target = resolve_write_dtype(path, image, dtype, np.dtype(np.float32))
    data = cast_to_dtype(image_values(image), target)
    with atomic_path(path, suffix=".npy") as temporary, open(temporary, "wb") as stream:
        np.save(stream, data, allow_pickle=False)
    return path


def write_npz(image: Image, path: str | Path, dtype: str | np.dtype | None = None) -> Path:
    """Save ``data``, ``affine``, ``spatial_ndim`` and ``modality`` (compressed ``.npz``)."""
    path = Path(path)
    target = resolve_write_dtype(path, image, dtype, np.dtype(np.float32))
    data = cast_to_dtype(image_values(image), target)
    with atomic_path(path, suffix=".npz") as temporary, open(temporary, "wb") as stream:
        np.savez_compressed(
            stream,
            data=data,
            affine=np.asarray(image.affine, dtype=np.float64),
            spatial_ndim=np.int64(image.spatial_ndim),
            modality=np.str_(image.modality),
        )
    return path
