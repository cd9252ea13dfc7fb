"""Real-valued pixels → DICOM integer pixels with a linear rescale, and the pixel modules.

Integer-valued data that fit the storage type are stored exactly with slope 1, intercept 0;
anything else is mapped linearly onto the full integer range,
``stored = round((x − intercept) / slope)``, so the error is at most ``slope / 2`` =
``(max − min) / (2 · 65535)`` for 16 bits. Reading applies ``x = stored · slope + intercept``
(PS3.3 C.7.6.16.2.9 / C.11.1 Modality LUT).

Each IOD restricts the storage types (``allowed``): MR and CT images are 16-bit (PS3.3
C.8.3.1, C.8.2.1), NM images unsigned (C.8.4.7), Secondary Capture 8 or 16 bit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.valuerep import format_number_as_ds

from medrestore.core.errors import InputError
from medrestore.core.image import Image
from medrestore.io.common import resolve_write_dtype

STORAGE_DTYPES = ("uint8", "int16", "uint16")


@dataclasses.dataclass(frozen=True)
class EncodedPixels:
    """Integer pixels with the linear map back to real values: ``x = stored · slope + intercept``."""

    stored: np.ndarray
    slope: float
    intercept: float


def ds_value(value: float) -> float:
    """``value`` as it will read back from a 16-character DS string."""
    return float(format_number_as_ds(float(value)))


def ds_list(values: Sequence[float] | np.ndarray) -> list[str]:
    """Numbers as DS strings (at most 16 characters each)."""
    return [format_number_as_ds(float(v)) for v in values]


def _requested_storage(
    path: Path, image: Image, dtype: str | np.dtype | None, allowed: Sequence[str]
) -> np.dtype | None:
    """The requested storage type, widened to what the IOD allows (uint8 → uint16, int16 →
    uint16 where only unsigned is allowed); ``None`` (automatic) for no request, a float
    request, or a ``"source"`` type DICOM cannot store."""
    if dtype is None:
        return None
    requested = resolve_write_dtype(path, image, dtype, np.dtype(np.uint16))
    if requested.name in STORAGE_DTYPES:
        if requested.name in allowed:
            return requested
        return np.dtype(np.uint16) if "uint16" in allowed else np.dtype(allowed[-1])
    if requested.kind == "f" or (isinstance(dtype, str) and dtype == "source"):
        return None
    raise InputError(path, f"DICOM writer stores {', '.join(allowed)} pixels, not {requested}")


def encode_pixels(
    path: Path,
    image: Image,
    values: np.ndarray,
    dtype: str | np.dtype | None,
    allowed: Sequence[str] = STORAGE_DTYPES,
) -> EncodedPixels:
    """Choose the storage type among ``allowed`` and the rescale (see the module docstring)."""
    if not np.all(np.isfinite(values)):
        raise InputError(path, "image holds NaN or infinite values, which DICOM integer pixels cannot store")
    low, high = float(values.min()), float(values.max())
    integer_valued = bool(np.array_equal(values, np.rint(values)))
    target = _requested_storage(path, image, dtype, allowed)
    if target is None:  # signed only when needed, exact and allowed; otherwise the full uint16 range
        signed = integer_valued and -32768 <= low < 0 and high <= 32767 and "int16" in allowed
        target = np.dtype(np.int16 if signed else np.uint16)
    info = np.iinfo(target)
    if integer_valued and low >= info.min and high <= info.max:
        return EncodedPixels(values.astype(target), 1.0, 0.0)
    slope = ds_value((high - low) / (float(info.max) - float(info.min))) if high > low else 1.0
    intercept = ds_value(low - float(info.min) * slope)
    stored = np.clip(np.rint((values.astype(np.float64) - intercept) / slope), info.min, info.max)
    return EncodedPixels(stored.astype(target), slope, intercept)


def set_image_pixel_module(dataset: Dataset, encoded: EncodedPixels, rows: int, columns: int) -> None:
    """Image Pixel module (PS3.3 C.7.6.3): monochrome, all allocated bits stored, little endian."""
    bits = encoded.stored.dtype.itemsize * 8
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.Rows, dataset.Columns = rows, columns
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = bits, bits, bits - 1
    dataset.PixelRepresentation = 1 if encoded.stored.dtype.kind == "i" else 0
    payload = encoded.stored.astype(encoded.stored.dtype.newbyteorder("<")).tobytes()
    dataset.PixelData = payload + (b"\x00" if len(payload) % 2 else b"")


def rescale_attributes(encoded: EncodedPixels, rescale_type: str) -> Dataset:
    """``RescaleIntercept``/``RescaleSlope``/``RescaleType`` (top level, or a Pixel Value
    Transformation item of an enhanced object)."""
    item = Dataset()
    item.RescaleIntercept = format_number_as_ds(encoded.intercept)
    item.RescaleSlope = format_number_as_ds(encoded.slope)
    item.RescaleType = rescale_type
    return item


def window_attributes(encoded: EncodedPixels) -> Dataset:
    """``WindowCenter``/``WindowWidth`` spanning the stored real values (VOI LUT, C.11.2)."""
    real = encoded.stored.astype(np.float64) * encoded.slope + encoded.intercept
    low, high = float(real.min()), float(real.max())
    item = Dataset()
    item.WindowCenter = format_number_as_ds((low + high) / 2)
    item.WindowWidth = format_number_as_ds(max(high - low, 1.0))
    return item


def copy_elements(target: Dataset, source: Dataset) -> None:
    """Copy every element of ``source`` into ``target``."""
    for element in source:
        target[element.tag] = element
