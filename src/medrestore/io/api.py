"""``read_image`` / ``write_image``: one entry point for every supported format.

Reading detects the format (:func:`~medrestore.io.detect.detect_format`), decodes it, then
applies the same checks to every format (dtype, NaN/Inf policy, at least one pixel), makes a
one-slice volume 2-D, and returns a float32 :class:`~medrestore.core.image.Image` with
``metadata`` keys ``source_path``, ``format`` and ``dtype`` (the stored dtype) plus the
format's own entries. Reading never modifies the input.

Writing picks the format from the destination (:func:`~medrestore.io.detect.output_format`)
and always writes atomically.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from medrestore.core.image import Image
from medrestore.io.common import DecodedImage, finish_image
from medrestore.io.detect import detect_format, output_format
from medrestore.io.dicom import read_dicom_file
from medrestore.io.dicom_series import read_dicom_series
from medrestore.io.dicom_write import write_dicom_file, write_dicom_series
from medrestore.io.nifti import read_nifti, write_nifti
from medrestore.io.numpy_io import read_npy, read_npz, write_npy, write_npz
from medrestore.io.raster import read_jpeg, read_png, read_tiff, write_jpeg, write_png, write_tiff
from medrestore.io.values import check_nonfinite_policy

Reader = Callable[[Path], DecodedImage]
Writer = Callable[[Image, Path, str | np.dtype | None], Path]

READERS: dict[str, Reader] = {
    "nifti": read_nifti,
    "dicom": read_dicom_file,
    "dicom-series": read_dicom_series,
    "tiff": read_tiff,
    "png": read_png,
    "jpeg": read_jpeg,
    "npy": read_npy,
    "npz": read_npz,
}

WRITERS: dict[str, Writer] = {
    "nifti": write_nifti,
    "dicom": write_dicom_file,
    "dicom-series": write_dicom_series,
    "tiff": write_tiff,
    "png": write_png,
    "jpeg": write_jpeg,
    "npy": write_npy,
    "npz": write_npz,
}


def read_image(path: str | Path, modality: str | None = None, nonfinite: str = "refuse") -> Image:
    """Read any supported image file (or DICOM series folder) as a float32 :class:`Image`.

    Args:
        path: file, or folder holding one DICOM series.
        modality: one of :data:`~medrestore.core.image.MODALITIES`; ``None`` infers it
            (DICOM ``Modality``; NIfTI → ``"mri"``; ``.npz`` ``modality``; else ``"unknown"``).
        nonfinite: what to do with NaN/±Inf values (:mod:`medrestore.io.values`):
            ``"refuse"`` (default) raises, ``"zero"`` replaces them by 0 and records the
            counts as ``metadata["nonfinite_replaced"]``, ``"keep"`` leaves them.

    Returns:
        ``Image`` with ``data`` float32 of shape ``(*spatial)`` or ``(*spatial, T)``. Warnings
        the decoding libraries raise (e.g. pydicom's about excess padding) are kept as
        ``metadata["reader_warnings"]`` instead of being printed, so a failed read prints one
        line, the :class:`InputError`. A volume
        of one slice (``(X, Y, 1)``, ``(X, Y, 1, T)``, ``(1, Y, Z)``...) is 2-D, its slice
        axis removed and recorded as ``metadata["squeezed_axis"]``; the affine keeps its
        slice direction (:func:`~medrestore.io.common.squeeze_single_slice`).

    Raises:
        InputError: the file is missing, empty, truncated, corrupt, of an unsupported pixel
            type, misnamed, or holds NaN/Inf under ``"refuse"``; the message names the file.

    Example:
        >>> image = read_image("brain.nii.gz")  # doctest: +SKIP
        >>> image.metadata["format"], image.metadata["dtype"]  # doctest: +SKIP
        ('nifti', 'float32')
    """
    path = Path(path)
    check_nonfinite_policy(nonfinite)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        format_name = detect_format(path)
        decoded = READERS[format_name](path)
    notes = list(dict.fromkeys(" ".join(str(warning.message).split()) for warning in caught))
    if notes:
        decoded = dataclasses.replace(decoded, metadata={**decoded.metadata, "reader_warnings": notes})
    return finish_image(path, format_name, decoded, modality, nonfinite)


def write_image(image: Image, path: str | Path, dtype: str | np.dtype | None = None) -> Path:
    """Write ``image`` in the format named by ``path``; return the written path.

    Args:
        image: the image to store.
        path: ``.nii``/``.nii.gz``, ``.dcm`` (one file), a folder name or a path ending in
            ``/`` (DICOM series), ``.tif``/``.tiff``, ``.png``, ``.npy``, ``.npz``.
        dtype: ``None`` stores float32 (NIfTI, NumPy, TIFF), the source dtype (PNG) or 16-bit
            integers with RescaleSlope/Intercept (DICOM); ``"source"`` stores
            ``image.metadata["dtype"]``; any NumPy dtype stores that. Integer targets are
            rounded and clipped to range.

    Raises:
        InputError: unknown extension, a dtype or shape the format cannot hold, JPEG output.
    """
    format_name = output_format(path)
    return WRITERS[format_name](image, Path(path), dtype)
