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
import importlib
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from medrestore.core.image import Image
from medrestore.io.common import DecodedImage, finish_image
from medrestore.io.detect import detect_format, output_format
from medrestore.io.values import check_nonfinite_policy

READERS: dict[str, str] = {
    "nifti": "medrestore.io.nifti:read_nifti",
    "dicom": "medrestore.io.dicom:read_dicom_file",
    "dicom-series": "medrestore.io.dicom_series:read_dicom_series",
    "tiff": "medrestore.io.raster:read_tiff",
    "png": "medrestore.io.raster:read_png",
    "jpeg": "medrestore.io.raster:read_jpeg",
    "npy": "medrestore.io.numpy_io:read_npy",
    "npz": "medrestore.io.numpy_io:read_npz",
    "interfile": "medrestore.io.interfile:read_interfile",
    **{name: "medrestore.io.neuro:read_neuro" for name in ("nifti-pair", "mgh", "minc", "parrec", "afni")},
    "nrrd": "medrestore.io.itk:read_itk",
    "metaimage": "medrestore.io.itk:read_itk",
    "mat": "medrestore.io.matlab:read_mat",
}
"""Each format's reader as ``module:function``, imported on first use (a NIfTI call does not load pydicom)."""

WRITERS: dict[str, str] = {
    "nifti": "medrestore.io.nifti:write_nifti",
    "dicom": "medrestore.io.dicom_write:write_dicom_file",
    "dicom-series": "medrestore.io.dicom_write:write_dicom_series",
    "tiff": "medrestore.io.raster:write_tiff",
    "png": "medrestore.io.raster:write_png",
    "jpeg": "medrestore.io.raster:write_jpeg",
    "npy": "medrestore.io.numpy_io:write_npy",
    "npz": "medrestore.io.numpy_io:write_npz",
    "nrrd": "medrestore.io.itk:write_itk",
    "metaimage": "medrestore.io.itk:write_itk",
}
"""Each format's writer as ``module:function``, imported on first use."""


def _resolve(entry: str) -> Callable[..., object]:
    """The function named ``module:function`` (an entry of :data:`READERS` or :data:`WRITERS`), imported now."""
    module, function = entry.split(":")
    return getattr(importlib.import_module(module), function)  # type: ignore[no-any-return]


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
        decoded: DecodedImage = _resolve(READERS[format_name])(path)  # type: ignore[assignment]
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
    return _resolve(WRITERS[format_name])(image, Path(path), dtype)  # type: ignore[return-value]
