"""fastMRI HDF5 files (Zbontar et al., arXiv:1811.08839; fastmri.org data layout).

A file holds ``kspace`` — complex64 ``(slices, coils, height, width)`` (multi-coil) or
``(slices, height, width)`` (single-coil) — plus optionally ``reconstruction_rss`` /
``reconstruction_esc`` ``(slices, 320, 320)`` references, ``mask`` ``(width,)`` for
undersampled test data, the ISMRMRD XML header ``ismrmrd_header`` and attributes
(``acquisition``, ``max``, ``norm``, ``patient_id``...).

The width (last) axis is phase-encoded; the height is the oversampled readout. Images keep
fastMRI's orientation, so ``metadata["phase_encode_axis"] = -1`` and the reconstruction is the
full ``height × width`` image; ``metadata["recon_shape"]`` (the header's ``reconSpace``
matrix, e.g. 320 × 320) is the centre crop fastMRI's references use. Spacing comes from the
header's ``reconSpace`` field of view.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from medrestore.core.errors import InputError
from medrestore.core.image import Image, affine_from_spacing
from medrestore.core.kspace import KSpace
from medrestore.io.common import library_errors
from medrestore.io.raw_common import build_kspace


def _xml_block(xml: str, section: str, field: str) -> tuple[float, ...] | None:
    """``(x, y, z)`` of ``<section><field><x>..</x><y>..</y><z>..</z>`` in an ISMRMRD header, or ``None``."""
    block = re.search(rf"<{section}>(.*?)</{section}>", xml, re.S)
    inner = block and re.search(rf"<{field}>(.*?)</{field}>", block.group(1), re.S)
    if not inner:
        return None
    values = [re.search(rf"<{axis}>\s*([-+0-9.eE]+)\s*</{axis}>", inner.group(1)) for axis in ("x", "y", "z")]
    return tuple(float(value.group(1)) for value in values if value)


def _header_fields(handle: h5py.File) -> dict[str, Any]:
    metadata: dict[str, Any] = {"format": "fastmri", "phase_encode_axis": -1}
    for key, value in handle.attrs.items():
        metadata[str(key)] = value.item() if isinstance(value, np.generic) else (str(value) if isinstance(value, bytes) else value)
    if "ismrmrd_header" in handle:
        raw = handle["ismrmrd_header"][()]
        xml = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        recon_matrix = _xml_block(xml, "reconSpace", "matrixSize")
        recon_fov = _xml_block(xml, "reconSpace", "fieldOfView_mm")
        encoded_fov = _xml_block(xml, "encodedSpace", "fieldOfView_mm")
        if recon_matrix:
            metadata["recon_shape"] = (int(recon_matrix[1]), int(recon_matrix[0]))
        if recon_fov and recon_matrix:
            metadata["recon_spacing_mm"] = (recon_fov[1] / recon_matrix[1], recon_fov[0] / recon_matrix[0])
        if encoded_fov:
            metadata["encoded_fov_mm"] = encoded_fov
    return metadata


def read_fastmri(path: str | Path) -> KSpace:
    """Read a fastMRI file's k-space: ``(slices, coils, height, width)`` (a single slice drops its axis).

    The mask is the file's ``mask`` dataset (along the width) when present, else inferred from
    all-zero columns.

    Raises:
        InputError: no ``kspace`` dataset, real-valued or NaN k-space, a mask of the wrong length.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    with library_errors(path, "read the fastMRI HDF5 file"), h5py.File(path, "r") as handle:
        if "kspace" not in handle:
            raise InputError(path, f"HDF5 file has no 'kspace' dataset (found: {sorted(handle.keys())})")
        data = np.asarray(handle["kspace"][()])
        file_mask = np.asarray(handle["mask"][()]) if "mask" in handle else None
        metadata = _header_fields(handle)
    if data.ndim == 3:
        data = data[:, None]
    if data.ndim != 4:
        raise InputError(path, f"'kspace' of shape {data.shape}: expected (slices, coils, height, width)")
    mask = None
    if file_mask is not None:
        if file_mask.size != data.shape[-1]:
            raise InputError(path, f"'mask' has {file_mask.size} entries but k-space has width {data.shape[-1]}")
        mask = file_mask.reshape(1, -1).astype(bool)
    data = data[0] if data.shape[0] == 1 else data
    spacing = metadata.get("recon_spacing_mm", (1.0, 1.0))
    return build_kspace(path, data, tuple(spacing), metadata, mask)


def read_fastmri_reference(path: str | Path, name: str = "reconstruction_rss") -> Image:
    """The reference image stored in a fastMRI file (``(slices, 320, 320)``; one slice drops its axis)."""
    path = Path(path)
    with library_errors(path, "read the fastMRI HDF5 file"), h5py.File(path, "r") as handle:
        if name not in handle:
            raise InputError(path, f"HDF5 file has no {name!r} dataset")
        values = np.asarray(handle[name][()], dtype=np.float32)
        metadata = _header_fields(handle)
    if values.ndim == 3 and values.shape[0] == 1:
        values = values[0]
    spacing = metadata.get("recon_spacing_mm", (1.0, 1.0))
    affine = affine_from_spacing(spacing)
    return Image(values, affine, 2 if values.ndim == 2 else 3, "mri", {"source_path": str(path), "format": "fastmri"})
