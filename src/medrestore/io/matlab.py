"""MATLAB ``.mat`` files: the image array a MAT-file holds (public OCT sets, research exports), read-only.

=========  ===================================  =====================================================
version    content                              read with
=========  ===================================  =====================================================
v4         no text header (numeric matrices)    ``scipy.io`` (by the ``.mat`` extension alone)
v5 – v7    ``MATLAB 5.0 MAT-file`` text header  ``scipy.io``
v7.3       the same text in a 512-byte HDF5     ``h5py`` (MATLAB's ``MATLAB_class`` attributes; each
           user block, then HDF5                array stored with its axes reversed)
=========  ===================================  =====================================================

**Which variable.** A MAT-file holds named arrays. The image is the only numeric array of two or more axes
with at least two of them longer than 1; among several, the one named like an image (``images``, ``image``,
``img``, ``im``, ``I``, ``data``, ``volume``, ``vol``, ``bscans``, ``oct``, ``scan``, ``stack``, ``raw``,
case-insensitive; the public Duke OCT sets name it ``images`` beside manual annotations of the same size),
else the one with strictly the most elements. Otherwise the file is refused with the arrays it holds listed.
The variable read and the others are recorded in ``metadata["mat"]``.

**Axes.** MATLAB's ``(rows, cols, frames[, t])`` becomes ``(frames, rows, cols[, t])``: the layout of a
multi-page TIFF of the same frames (:mod:`medrestore.io.raster`), so a stack of B-scans saved from MATLAB reads
as the TIFF export of the same scans does; a 2-D array is ``(rows, cols)``. A MAT-file stores no geometry:
the spacing is 1 mm (``metadata["spacing_source"] = "none"``) and the modality unknown unless given.

Sparse matrices, cells, structs and strings are not images and are passed over; complex arrays are refused as
elsewhere (take the magnitude first).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from medrestore.core.errors import InputError
from medrestore.core.image import affine_from_spacing
from medrestore.io.common import DecodedImage, check_claimed_bytes, check_source_dtype, library_errors

__all__ = ["is_mat_header", "read_mat"]

_V5_TEXT = b"MATLAB 5.0 MAT-file"
_V73_TEXT = b"MATLAB 7.3 MAT-file"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_IMAGE_NAMES = re.compile(r"(images?|img|im|i|data|volume|vol|bscans?|oct|scan|stack|raw)", re.IGNORECASE)
_CLASS_DTYPES = {
    "double": "float64", "single": "float32", "int8": "int8", "uint8": "uint8", "int16": "int16", "uint16": "uint16",
    "int32": "int32", "uint32": "uint32", "int64": "int64", "uint64": "uint64", "logical": "bool",
}  # fmt: skip
_NUMERIC_CLASSES = set(_CLASS_DTYPES)


def is_mat_header(head: bytes) -> bool:
    """Whether a file's first bytes open a v5–v7.3 MAT-file (its descriptive text; v4 has none)."""
    return head.startswith(b"MATLAB ") and b"MAT-file" in head[:128]


def _is_hdf5(path: Path) -> bool:
    with open(path, "rb") as stream:
        stream.seek(512)
        return stream.read(8) == _HDF5_MAGIC


def _image_like(shape: tuple[int, ...]) -> bool:
    return 2 <= len(shape) <= 4 and sum(size > 1 for size in shape) >= 2


def _choose(path: Path, arrays: dict[str, tuple[tuple[int, ...], str]]) -> str:
    """The variable to read among ``{name: (MATLAB shape, class)}`` (module docstring: the rule)."""
    candidates = {name: shape for name, (shape, kind) in arrays.items() if kind in _NUMERIC_CLASSES and _image_like(shape)}
    if len(candidates) == 1:
        return next(iter(candidates))
    named = [name for name in candidates if _IMAGE_NAMES.fullmatch(name)]
    if len(named) == 1:
        return named[0]
    pool = named or list(candidates)
    sizes = sorted(((int(np.prod(candidates[name])), name) for name in pool), reverse=True)
    if sizes and (len(sizes) == 1 or sizes[0][0] > sizes[1][0]):
        return sizes[0][1]
    listed = ", ".join(f"{name} ({'×'.join(map(str, shape))} {kind})" for name, (shape, kind) in arrays.items()) or "nothing"
    if not candidates:
        raise InputError(path, f"MAT-file holds no numeric image array (2 to 4 axes, two of them longer than 1): {listed}")
    raise InputError(path, f"MAT-file holds several image arrays of the same size and none is named like an image: "
                           f"{listed}; save the one to restore alone (or as 'images')")  # fmt: skip


def _check_size(path: Path, array: tuple[tuple[int, ...], str]) -> None:
    """Refuse a variable claiming more bytes than the file could decompress to (an HDF5 dataset never written reads
    as its fill value: a 2-kB file can claim gigabytes)."""
    shape, kind = array
    claimed = int(np.prod(shape, dtype=np.int64)) * np.dtype(_CLASS_DTYPES[kind]).itemsize
    check_claimed_bytes(path, claimed, path.stat().st_size, compressed=True, what="array data")


def _read_v5(path: Path) -> tuple[str, np.ndarray, dict[str, tuple[tuple[int, ...], str]]]:
    import scipy.io  # noqa: PLC0415 - only where a MAT-file is read

    with library_errors(path, "read the MAT-file with scipy.io"):
        arrays = {name: (tuple(int(n) for n in shape), kind) for name, shape, kind in scipy.io.whosmat(str(path))}
    name = _choose(path, arrays)
    _check_size(path, arrays[name])
    with library_errors(path, f"read the MAT-file variable {name!r} with scipy.io"):
        # mat_dtype=False: MATLAB's class dtype (mat_dtype=True) would drop a complex array's imaginary part
        value = np.asarray(scipy.io.loadmat(str(path), variable_names=[name], squeeze_me=False, mat_dtype=False)[name])
    check_source_dtype(path, value.dtype)
    return name, value.astype(_CLASS_DTYPES[arrays[name][1]]), arrays  # doubles may be stored as small integers


def _read_v73(path: Path) -> tuple[str, np.ndarray, dict[str, tuple[tuple[int, ...], str]]]:
    import h5py  # noqa: PLC0415 - only where a MAT-file is read

    with library_errors(path, "read the MAT-file (v7.3, HDF5) with h5py"), h5py.File(path, "r") as mat:
        arrays: dict[str, tuple[tuple[int, ...], str]] = {}
        for name, item in mat.items():
            if name.startswith("#"):  # MATLAB's references and empty-array bookkeeping
                continue
            kind = item.attrs.get("MATLAB_class", b"struct")
            kind = kind.decode("ascii", "replace") if isinstance(kind, bytes) else str(kind)
            if isinstance(item, h5py.Group):  # structs, cells and sparse matrices are groups
                arrays[name] = ((), kind)
            else:  # complex arrays are compound (real, imag) datasets
                arrays[name] = (tuple(int(n) for n in item.shape[::-1]), "complex" if item.dtype.names else kind)
        name = _choose(path, arrays)
        _check_size(path, arrays[name])
        value = np.asarray(mat[name][()]).transpose()  # HDF5 holds MATLAB's column-major array with axes reversed
    check_source_dtype(path, value.dtype)
    return name, value.astype(_CLASS_DTYPES[arrays[name][1]]), arrays  # logical is stored as uint8


def read_mat(path: str | Path) -> DecodedImage:
    """Read the image array of a MAT-file (module docstring: which variable, axes).

    Returns:
        ``DecodedImage`` with ``array`` ``(rows, cols)`` or ``(frames, rows, cols[, t])``, 1-mm spacing.
    """
    path = Path(path)
    name, value, arrays = _read_v73(path) if _is_hdf5(path) else _read_v5(path)
    source_dtype = value.dtype.newbyteorder("=")  # the MATLAB class (v4 and Solaris files are big-endian)
    if value.dtype == np.bool_:
        value = value.astype(np.uint8)
    while value.ndim > 2 and value.shape[-1] == 1:  # MATLAB keeps trailing singleton axes only to 2-D
        value = value[..., 0]
    if value.ndim == 2:
        array, spatial_ndim = value, 2
    else:
        array, spatial_ndim = np.moveaxis(value, 2, 0), 3
    others = sorted(set(arrays) - {name})
    return DecodedImage(
        array=np.ascontiguousarray(array), affine=affine_from_spacing([1.0] * spatial_ndim), spatial_ndim=spatial_ndim,
        source_dtype=source_dtype,
        metadata={"mat": {"variable": name, "matlab_shape": list(arrays[name][0]), "other_variables": others},
                  "spacing_source": "none"},
    )  # fmt: skip
