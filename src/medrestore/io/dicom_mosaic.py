"""Siemens mosaic DICOM: the slices of one volume tiled into one image (EPI fMRI and diffusion from VB/VD/VE systems).

A mosaic file stores ``n`` slices of ``r × c`` pixels as one ``(m·r) × (m·c)`` image, ``m = ⌈√n⌉``, slice ``k`` in
tile row ``k // m``, tile column ``k % m``. ``n`` is ``NumberOfImagesInMosaic`` in the Siemens CSA image header.
``ImagePositionPatient`` names the corner of the whole mosaic, not of a slice; the first slice's corner and the
direction the slices follow (the CSA ``SliceNormalVector``) come from nibabel's ``MosaicWrapper`` (Brett et al.,
nibabel.nicom; the correction dcm2niix applies too), the slice distance from ``SpacingBetweenSlices`` (else
``SliceThickness``). The volume is laid out as every DICOM volume here, ``(slice, row, column)``. A file whose
image is not such a grid (some synthetic test files) is read as the image it stores, and the record says why.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from medrestore.io.common import library_errors

__all__ = ["mosaic_count", "mosaic_grid", "mosaic_origin_and_normal", "unmosaic"]


def _nicom() -> tuple[Any, Any]:
    with warnings.catch_warnings():  # nibabel.nicom announces its DICOM wrappers as experimental on import
        warnings.simplefilter("ignore")
        from nibabel.nicom import csareader, dicomwrappers  # noqa: PLC0415 - only for Siemens mosaics

    return csareader, dicomwrappers


def mosaic_count(dataset: Any) -> int | None:
    """Slices in a Siemens mosaic (``ImageType`` has ``MOSAIC`` and the CSA header a count), else ``None``."""
    image_type = [str(value).upper() for value in (dataset.get("ImageType") or [])]
    if "MOSAIC" not in image_type or "SIEMENS" not in str(dataset.get("Manufacturer", "")).upper():
        return None
    csareader, _ = _nicom()
    try:
        count = csareader.get_n_mosaic(csareader.get_csa_header(dataset, "image"))
    except Exception:  # noqa: BLE001 - no or unreadable CSA header: the file is read as the image it stores
        return None
    return int(count) if count else None


def mosaic_grid(count: int, shape: tuple[int, ...]) -> tuple[int, int, int] | None:
    """``(m, r, c)``: the ``m × m`` grid of ``r × c`` tiles a ``count``-slice mosaic of ``shape`` holds, or ``None``
    when ``shape`` is not such a grid (nibabel refuses those; the image is then read as stored)."""
    side = math.ceil(math.sqrt(count))
    rows, columns = shape
    if rows % side or columns % side or rows < side or columns < side:
        return None
    return side, rows // side, columns // side


def unmosaic(stored: np.ndarray, grid: tuple[int, int, int], count: int) -> np.ndarray:
    """``(count, r, c)`` slices of the mosaic ``stored`` laid out as ``grid`` (:func:`mosaic_grid`)."""
    side, tile_rows, tile_columns = grid
    tiles = stored.reshape(side, tile_rows, side, tile_columns).transpose(0, 2, 1, 3).reshape(side * side, tile_rows, tile_columns)
    return np.ascontiguousarray(tiles[:count])


def mosaic_origin_and_normal(path: Path, dataset: Any) -> tuple[np.ndarray, np.ndarray]:
    """The first slice's corner and the unit slice direction (LPS), from nibabel's ``MosaicWrapper``."""
    _, dicomwrappers = _nicom()
    with library_errors(path, "read the Siemens mosaic geometry"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wrapper = dicomwrappers.MosaicWrapper(dataset)
        origin = np.asarray(wrapper.image_position, dtype=np.float64)
        normal = np.asarray(wrapper.slice_normal, dtype=np.float64)
    return origin, normal / np.linalg.norm(normal)
