"""k-space in NumPy files.

* ``.npy``: a bare complex array ``(coils, *grid)`` (or ``(*batch, coils, ny, nx)``): 2-D grid,
  1 mm spacing, mask inferred from all-zero lines.
* ``.npz``: ``kspace`` (required) plus optional ``mask`` (bool, broadcastable to the grid),
  ``trajectory`` (float, non-Cartesian), ``image_shape``, ``affine`` (4×4) and ``metadata``
  (a JSON string). :func:`write_npz_kspace` stores all of them, so a round trip is exact.

Pickled object arrays are refused (``allow_pickle=False``).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from medrestore.core.errors import InputError
from medrestore.core.files import atomic_path
from medrestore.core.kspace import KSpace
from medrestore.io.common import library_errors
from medrestore.io.raw_common import build_kspace, build_non_cartesian_kspace, check_kspace_array


def _json_safe(value: object) -> object:
    """Metadata values as JSON (tuples → lists, NumPy scalars → Python, the rest → str)."""
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def read_npy_kspace(path: str | Path) -> KSpace:
    """A bare complex ``.npy`` array ``(*batch, coils, ny, nx)``."""
    path = Path(path)
    with library_errors(path, "read the .npy file"):
        array = np.load(path, allow_pickle=False)
    return build_kspace(path, array, (1.0, 1.0), {"format": "npy"})


def read_npz_kspace(path: str | Path) -> KSpace:
    """A ``.npz`` written by :func:`write_npz_kspace` (or any with a complex ``kspace`` array)."""
    path = Path(path)
    with library_errors(path, "read the .npz file"), np.load(path, allow_pickle=False) as archive:
        if "kspace" not in archive.files:
            raise InputError(path, f"no 'kspace' array in the .npz (found: {archive.files})")
        arrays = {name: archive[name] for name in archive.files}
    metadata = json.loads(str(arrays["metadata"])) if "metadata" in arrays else {}
    metadata = {**metadata, "format": "npz", "source_path": str(path)}
    if "trajectory" in arrays:
        data = check_kspace_array(path, arrays["kspace"], 1)
        shape = tuple(int(n) for n in arrays["image_shape"]) if "image_shape" in arrays else None
        if shape is None:
            raise InputError(path, "non-Cartesian k-space needs 'image_shape'")
        affine = arrays.get("affine", np.eye(4))
        return build_non_cartesian_kspace(path, data, shape, arrays["trajectory"], affine, metadata)
    grid_ndim = len(arrays["image_shape"]) if "image_shape" in arrays else 2
    mask = arrays["mask"].astype(bool) if "mask" in arrays else None
    kspace = build_kspace(path, arrays["kspace"], (1.0,) * grid_ndim, metadata, mask, grid_ndim)
    if "affine" in arrays:
        affine = np.asarray(arrays["affine"], dtype=np.float64)
        if affine.shape != (4, 4) or not np.isfinite(affine).all():
            raise InputError(path, f"'affine' must be a finite 4x4 matrix, got shape {affine.shape}")
        kspace = kspace.with_data(kspace.data, affine=affine)
    return kspace


def write_npz_kspace(kspace: KSpace, path: str | Path) -> Path:
    """Store every field of ``kspace`` in a ``.npz`` (atomically); returns ``path``."""
    path = Path(path)
    arrays: dict[str, np.ndarray] = {
        "kspace": kspace.data.detach().cpu().numpy(),
        "image_shape": np.asarray(kspace.image_shape, dtype=np.int64),
        "affine": np.asarray(kspace.affine),
        "metadata": np.asarray(json.dumps(_json_safe(dict(kspace.metadata)))),
    }
    if kspace.mask is not None:
        arrays["mask"] = kspace.mask.detach().cpu().numpy()
    if kspace.trajectory is not None:
        arrays["trajectory"] = kspace.trajectory.detach().cpu().numpy()
    with atomic_path(path) as temporary, open(temporary, "wb") as stream:
        np.savez(stream, **arrays)
    return path


def is_zip(path: Path) -> bool:
    """Whether ``path`` is a zip archive (an ``.npz``)."""
    return zipfile.is_zipfile(path)
