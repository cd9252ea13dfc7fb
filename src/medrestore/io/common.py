"""Pieces every reader and writer shares: dtype checks and casts, the decoded-image record,
the step that turns decoded pixels into an :class:`~medrestore.core.image.Image`, and the
wrapper that turns library exceptions into :class:`~medrestore.core.errors.InputError`.

Pixel convention on read: ``Image.data`` is always ``torch.float32``; the dtype the file
stored is kept as ``metadata["dtype"]`` (e.g. ``"uint8"``) so a writer can restore it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medrestore.core.errors import InputError, MedrestoreError
from medrestore.core.image import MODALITIES, Image
from medrestore.io.values import NONFINITE_KEY, to_float32

# Errors a library's parser makes when a header field holds a value it never expected (a zero
# divisor, a string for a number, a missing key): they mean a corrupt file, not a bug to report.
_PARSER_SLIPS = (ZeroDivisionError, TypeError, AttributeError, IndexError, KeyError, OverflowError, struct.error)

# ITU-R BT.601 luma weights (the ones Pillow's ``convert("L")`` uses).
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


@dataclasses.dataclass(frozen=True)
class DecodedImage:
    """What a format reader hands back before the shared checks.

    Attributes:
        array: pixel values after any rescale the format defines (NIfTI scl_slope,
            DICOM RescaleSlope), any real dtype, shape ``(*spatial)`` or ``(*spatial, T)``.
        affine: 4×4 voxel→world (mm, RAS+) matrix.
        spatial_ndim: 2 or 3.
        source_dtype: dtype of the values as stored in the file (before rescale).
        modality: modality inferred from the file (``"unknown"`` when nothing says).
        metadata: format-specific metadata entries (JSON-friendly, except NIfTI header bytes).
    """

    array: np.ndarray
    affine: np.ndarray
    spatial_ndim: int
    source_dtype: np.dtype
    modality: str = "unknown"
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)


def describe_exception(error: BaseException) -> str:
    """``"ValueError: message"`` (message shortened to one line of at most 300 characters)."""
    message = " ".join(str(error).split()) or "no details"
    if len(message) > 300:
        message = message[:297] + "..."
    return f"{type(error).__name__}: {message}"


@contextlib.contextmanager
def library_errors(path: str | Path, action: str) -> Iterator[None]:
    """Re-raise any non-medrestore exception from a library as ``InputError(path, ...)``.

    ``action`` completes the sentence "cannot <action>", e.g. ``"read NIfTI"``.
    """
    try:
        yield
    except MedrestoreError:
        raise
    except MemoryError as error:
        raise InputError(path, f"cannot {action}: not enough memory") from error
    except _PARSER_SLIPS as error:
        raise InputError(path, f"cannot {action}: corrupt or unsupported layout ({describe_exception(error)})") from error
    except Exception as error:  # noqa: BLE001 - the edge where library errors become user errors
        raise InputError(path, f"cannot {action}: {describe_exception(error)}") from error


@contextlib.contextmanager
def quiet_library_logs(*names: str) -> Iterator[None]:
    """Silence the named libraries' loggers (e.g. ``"nibabel"``, ``"tifffile"``) while reading.

    Their notes about odd headers ("qform_code 70 not valid; setting to 0") would otherwise
    reach stderr beside the one-line result or :class:`InputError` of the command.
    """
    loggers = [logging.getLogger(name) for name in names]
    previous = [logger.disabled for logger in loggers]
    for logger in loggers:
        logger.disabled = True
    try:
        yield
    finally:
        for logger, disabled in zip(loggers, previous, strict=True):
            logger.disabled = disabled


def check_source_dtype(path: str | Path, dtype: np.dtype) -> None:
    """Raise ``InputError`` unless ``dtype`` is bool, an integer or a real float."""
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        raise InputError(
            path,
            f"complex-valued data ({dtype}) is not supported as an image; "
            "take the magnitude first, or load it as k-space",
        )
    if dtype.fields is not None:
        raise InputError(path, f"structured pixel type {dtype} (e.g. RGB NIfTI) is not supported")
    if dtype.kind not in "biuf":
        raise InputError(path, f"unsupported pixel data type {dtype} (kind {dtype.kind!r})")


MAX_EXPANSION = 4096
"""Largest ratio of decoded to stored bytes a compressed payload may claim (deflate tops out near 1032:1)."""


def check_claimed_bytes(path: str | Path, claimed: int, stored: int, compressed: bool, what: str = "voxels") -> None:
    """Refuse a header claiming more decoded bytes than its stored data can give, before anything is allocated.

    A header's sizes can claim anything: a 1-kB file whose header says 1500³ voxels would have a decoder allocate
    gigabytes before finding its data missing. Uncompressed data must hold every byte claimed; compressed data may
    expand at most :data:`MAX_EXPANSION` times.
    """
    limit = stored * (MAX_EXPANSION if compressed else 1)
    if claimed > limit:
        raise InputError(path, f"the header claims {claimed:,} bytes of {what} but the data hold {stored:,} bytes"
                               f"{' (compressed)' if compressed else ''}: truncated or corrupt")  # fmt: skip


def resolve_modality(path: str | Path, requested: str | None, inferred: str) -> str:
    """The requested modality (validated) or, when ``None``, the inferred one."""
    if requested is None:
        return inferred if inferred in MODALITIES else "unknown"
    if requested not in MODALITIES:
        raise InputError(path, f"unknown modality {requested!r}; expected one of {MODALITIES}")
    return requested


def squeeze_single_slice(
    array: np.ndarray, affine: np.ndarray, spatial_ndim: int
) -> tuple[np.ndarray, np.ndarray, int, int | None]:
    """Make a one-slice volume a 2-D image: ``(X, Y, 1)`` → ``(X, Y)``, ``(X, Y, 1, T)`` → ``(X, Y, T)``.

    A 3-D image with exactly one spatial axis of length 1 (any of the three: NIfTI stores the
    slice last, a DICOM series first) is a single slice, and every 2-D workflow (SSIM
    windows, planar counts, the viewer) must see it as one. The affine keeps the kept axes'
    columns in order and moves the squeezed axis's column (its slice direction and
    thickness) to the third place, where :class:`~medrestore.core.image.Image` keeps a 2-D
    image's slice vector; the translation is unchanged because the squeezed index is 0.
    Writing the image back as NIfTI therefore gives the same voxel-to-world mapping.

    Returns:
        ``(array, affine, spatial_ndim, squeezed_axis)``; ``squeezed_axis`` is ``None`` and
        the inputs come back unchanged when the image is not a single slice.
    """
    if spatial_ndim != 3:
        return array, affine, spatial_ndim, None
    singletons = [axis for axis in range(3) if array.shape[axis] == 1]
    if len(singletons) != 1:
        return array, affine, spatial_ndim, None
    axis = singletons[0]
    kept = [a for a in range(3) if a != axis]
    squeezed_affine = np.array(affine, dtype=np.float64)
    squeezed_affine[:, :3] = np.asarray(affine, dtype=np.float64)[:, [*kept, axis]]
    return np.squeeze(array, axis=axis), squeezed_affine, 2, axis


def single_slice_affine(affine: np.ndarray, squeezed_axis: int) -> np.ndarray:
    """The 3-D affine of a squeezed one-slice image with its slice axis put back at ``squeezed_axis``.

    The inverse of the column move in :func:`squeeze_single_slice`: pair it with
    ``np.expand_dims(data, squeezed_axis)`` to get the volume's layout back.
    """
    if squeezed_axis not in (0, 1, 2):
        raise InputError(None, f"squeezed axis must be 0, 1 or 2, got {squeezed_axis!r}")
    kept = [a for a in range(3) if a != squeezed_axis]
    source = np.asarray(affine, dtype=np.float64)
    restored = source.copy()
    restored[:, [*kept, squeezed_axis]] = source[:, :3]
    return restored


def finish_image(
    path: str | Path,
    format_name: str,
    decoded: DecodedImage,
    modality: str | None,
    nonfinite: str = "refuse",
) -> Image:
    """Run the shared checks on ``decoded`` and wrap it as a float32 :class:`Image`.

    Checks: supported dtype, at least one pixel, NaN/Inf and values outside the float32
    range under the ``nonfinite`` policy (:func:`medrestore.io.values.to_float32`). A
    single-slice volume becomes 2-D (:func:`squeeze_single_slice`). Sets ``metadata`` keys
    ``source_path``, ``format`` and ``dtype`` on top of the reader's own entries, plus
    ``nonfinite_replaced`` (values replaced by 0) and ``squeezed_axis`` (the array axis of
    length 1 that was removed) when they apply.
    """
    check_source_dtype(path, decoded.source_dtype)
    check_source_dtype(path, decoded.array.dtype)
    if decoded.array.size == 0:
        raise InputError(path, f"image has no pixels (shape {decoded.array.shape})")
    values, replaced = to_float32(path, decoded.array, nonfinite)
    values, affine, spatial_ndim, squeezed_axis = squeeze_single_slice(values, decoded.affine, decoded.spatial_ndim)
    metadata = {
        **decoded.metadata,
        "source_path": str(path),
        "format": format_name,
        "dtype": str(np.dtype(decoded.source_dtype)),
    }
    if replaced is not None:
        metadata[NONFINITE_KEY] = replaced
    if squeezed_axis is not None:
        metadata["squeezed_axis"] = squeezed_axis
    chosen_modality = resolve_modality(path, modality, decoded.modality)
    try:
        return Image(torch.from_numpy(np.ascontiguousarray(values)), affine, spatial_ndim, chosen_modality, metadata)
    except InputError as error:  # the Image's own checks (e.g. a non-finite affine) name no file
        if error.path is not None:
            raise
        raise InputError(path, error.problem) from error


def image_values(image: Image) -> np.ndarray:
    """Pixel data as a CPU NumPy array; dtypes NumPy lacks (bfloat16) become float32."""
    data = image.data.detach().cpu()
    if data.dtype == torch.bfloat16:
        data = data.to(torch.float32)
    return data.numpy()


def rgb_to_luminance(pixels: np.ndarray) -> np.ndarray:
    """Luma ``Y = 0.299 R + 0.587 G + 0.114 B`` of ``(..., 3|4)`` pixels (alpha dropped), float32.

    When the three colour channels are equal the first channel is returned exactly (as float32);
    one or two samples per pixel (grey, grey + alpha, as a mislabelled file may hold) give the first.
    """
    if pixels.shape[-1] < 3:
        return pixels[..., 0].astype(np.float32)
    colour = pixels[..., :3]
    if np.array_equal(colour[..., 0], colour[..., 1]) and np.array_equal(colour[..., 0], colour[..., 2]):
        return colour[..., 0].astype(np.float32)
    weights = np.asarray(LUMA_WEIGHTS, dtype=np.float64)
    return (colour.astype(np.float64) @ weights).astype(np.float32)


def cast_to_dtype(array: np.ndarray, dtype: str | np.dtype | type) -> np.ndarray:
    """Cast to ``dtype``, clipping to its range; integer targets are rounded half-to-even first.

    Float targets keep NaN/±Inf and clip finite values to ``±finfo(dtype).max``; integer
    targets clip to ``[iinfo.min, iinfo.max]`` (±Inf saturate; for 64-bit targets float
    inputs stop at the largest float64 inside the range) and refuse NaN; a bool target
    is ``array != 0``. Always returns a new array.

    Example:
        >>> cast_to_dtype(np.array([-3.0, 2.5, 3.5, 300.0]), "uint8")
        array([  0,   2,   4, 255], dtype=uint8)
    """
    try:
        target = np.dtype(dtype)
    except TypeError as error:
        raise InputError(None, f"unknown dtype {dtype!r}") from error
    values = np.asarray(array)
    check_source_dtype("array", values.dtype)
    if target.kind not in "biuf":
        raise InputError(None, f"cannot cast image data to {target}: only bool, integer and float types")
    if target.kind == "b":
        return values != 0
    if target.kind == "f":
        return _cast_to_float(values, target)
    return _cast_to_integer(values, target)


def _cast_to_float(values: np.ndarray, target: np.dtype) -> np.ndarray:
    """Float cast with finite values clipped to the target's largest magnitude."""
    if values.dtype.kind == "f" and values.dtype.itemsize > target.itemsize:
        limit = float(np.finfo(target).max)
        finite = np.isfinite(values)
        values = np.where(finite, np.clip(values, -limit, limit), values)
    return values.astype(target)


def _cast_to_integer(values: np.ndarray, target: np.dtype) -> np.ndarray:
    """Integer cast: round (floats), clip to ``iinfo(target)``, refuse NaN."""
    info = np.iinfo(target)
    if values.dtype.kind == "b":
        return values.astype(target)
    if values.dtype.kind in "iu":
        source = np.iinfo(values.dtype)
        low, high = max(info.min, source.min), min(info.max, source.max)
        return np.clip(values, np.asarray(low, values.dtype), np.asarray(high, values.dtype)).astype(target)
    if np.isnan(values).any():
        raise InputError(None, f"cannot cast NaN values to {target}")
    rounded = np.rint(values.astype(np.float64))
    # float64 cannot hold iinfo(int64).max exactly; step just inside the range.
    high = float(info.max) if info.bits < 64 else float(np.nextafter(float(info.max), 0.0))
    low = float(info.min)
    return np.clip(rounded, low, high).astype(target)


def resolve_write_dtype(path: str | Path, image: Image, dtype: str | np.dtype | None, default: np.dtype) -> np.dtype:
    """The dtype to store: ``default`` for ``None``, ``metadata["dtype"]`` for ``"source"``."""
    if dtype is None:
        return np.dtype(default)
    if isinstance(dtype, str) and dtype == "source":
        source = image.metadata.get("dtype")
        if source is None:
            raise InputError(path, 'dtype="source" but the image has no recorded source dtype (metadata["dtype"])')
        dtype = source
    try:
        resolved = np.dtype(dtype)
    except TypeError as error:
        raise InputError(path, f"unknown dtype {dtype!r}") from error
    if resolved.kind not in "biuf":
        raise InputError(path, f"cannot store pixels as {resolved}: only bool, integer and float types")
    return resolved


MODALITY_FROM_DICOM = {
    "MR": "mri", "CT": "ct", "NM": "nm", "PT": "nm", "OPT": "oct", "OCT": "oct",
    "XC": "photo", "ES": "photo", "GM": "photo", "SM": "photo", "OP": "photo",
}  # fmt: skip
"""medrestore's modality of each DICOM ``Modality`` code (DICOM files and the JSON dcm2niix writes beside a NIfTI)."""


def modality_from_dicom(code: object) -> str:
    """Map the DICOM ``Modality`` code to a medrestore modality (``"unknown"`` if unmapped)."""
    return MODALITY_FROM_DICOM.get(str(code or "").strip().upper(), "unknown")
