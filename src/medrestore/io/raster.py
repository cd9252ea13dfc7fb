"""Raster formats: TIFF (tifffile), PNG and JPEG (Pillow; JPEG is read-only).

Array order is the file's: ``(rows, cols)`` for one plane, ``(pages, rows, cols)`` for a
multi-page TIFF (``spatial_ndim`` 3). Colour pixels (RGB, RGBA, palette, CMYK) become luma
``Y = 0.299 R + 0.587 G + 0.114 B`` with ``metadata["converted_from"]`` naming the mode.

Pixel spacing (mm) comes from the resolution tags: TIFF ``XResolution``/``YResolution`` with
``ResolutionUnit`` (inch, cm; ImageJ's ``unit`` when the TIFF unit is NONE), PNG ``pHYs`` and
JPEG JFIF density (through Pillow's ``dpi``); 1 mm when absent. Where it came from is kept
as ``metadata["spacing_source"]``. The TIFF page spacing comes from ImageJ's ``spacing``.

Files written here also carry the exact affine, ``spatial_ndim`` and modality as JSON (the
TIFF ImageDescription of tifffile's shaped series; a PNG ``tEXt`` chunk keyed
``medrestore``), so an oblique geometry survives a round trip.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image
import PIL.PngImagePlugin
import tifffile

from medrestore.core.errors import InputError
from medrestore.core.files import atomic_path
from medrestore.core.image import MODALITIES, Image, affine_from_spacing
from medrestore.io.common import (
    MAX_EXPANSION,
    DecodedImage,
    cast_to_dtype,
    image_values,
    library_errors,
    quiet_library_logs,
    resolve_write_dtype,
    rgb_to_luminance,
)

METADATA_KEY = "medrestore"
MM_PER_UNIT = {
    "mm": 1.0, "millimeter": 1.0, "millimetre": 1.0, "cm": 10.0, "centimeter": 10.0, "m": 1000.0,
    "micron": 1e-3, "um": 1e-3, "\u00b5m": 1e-3, "\u03bcm": 1e-3, "nm": 1e-6, "inch": 25.4, "in": 25.4,
}  # fmt: skip
_TIFF_UNIT_MM = {2: 25.4, 3: 10.0}  # ResolutionUnit INCH, CENTIMETER
# Screen densities that imaging software writes by default when it knows no physical size
# (OCT exports, screenshots): they say nothing about the anatomy, so they read as "unknown".
_PLACEHOLDER_DPI = (72.0, 96.0)


def _is_placeholder_dpi(row_mm: float, col_mm: float) -> bool:
    """True when both spacings are the same software-default screen density."""
    return any(abs(row_mm - 25.4 / dpi) < 1e-9 and abs(col_mm - 25.4 / dpi) < 1e-9 for dpi in _PLACEHOLDER_DPI)


def _stored_geometry(path: Path, stored: Any, ndim: int) -> tuple[np.ndarray, int, str, bool] | None:
    """``(affine, spatial_ndim, modality, time_axis_first)`` from our JSON, validated."""
    if not isinstance(stored, Mapping):
        return None
    try:
        affine = np.asarray(stored["affine"], dtype=np.float64)
        spatial_ndim = int(stored["spatial_ndim"])
        modality = str(stored.get("modality", "unknown"))
        time_axis_first = bool(stored.get("time_axis_first", False))
    except (KeyError, TypeError, ValueError) as error:
        raise InputError(path, f"corrupt '{METADATA_KEY}' geometry metadata: {error}") from error
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)) or ndim not in (spatial_ndim, spatial_ndim + 1):
        raise InputError(path, f"'{METADATA_KEY}' geometry metadata does not fit the {ndim}-D pixel array")
    return affine, spatial_ndim, (modality if modality in MODALITIES else "unknown"), time_axis_first


def _plane_affine(spatial_ndim: int, row_spacing: float, col_spacing: float, page_spacing: float) -> np.ndarray:
    """Diagonal affine for ``(rows, cols)`` or ``(pages, rows, cols)``."""
    if spatial_ndim == 2:
        return affine_from_spacing((row_spacing, col_spacing))
    return affine_from_spacing((page_spacing, row_spacing, col_spacing))


# -- TIFF ----------------------------------------------------------------------------------------
def _tiff_resolution_mm(page: Any, imagej: Mapping[str, Any]) -> tuple[float, float, str]:
    """``(row_spacing, col_spacing, source)`` in mm from the first page's resolution tags."""
    tags = page.tags
    if "XResolution" not in tags or "YResolution" not in tags:
        return 1.0, 1.0, "default 1 mm (no resolution tags)"
    unit_code = int(tags["ResolutionUnit"].value) if "ResolutionUnit" in tags else 2
    unit_name = str(imagej.get("unit", "")).strip().lower() if unit_code == 1 else ""
    mm_per_unit = _TIFF_UNIT_MM.get(unit_code) or MM_PER_UNIT.get(unit_name)
    numerator_x, denominator_x = tags["XResolution"].value
    numerator_y, denominator_y = tags["YResolution"].value
    if mm_per_unit is None or min(numerator_x, numerator_y, denominator_x, denominator_y) <= 0:
        return 1.0, 1.0, "default 1 mm (resolution without a physical unit)"
    label = {2: "inch", 3: "cm"}.get(unit_code, unit_name)
    row = mm_per_unit * denominator_y / numerator_y
    col = mm_per_unit * denominator_x / numerator_x
    if _is_placeholder_dpi(row, col):
        return 1.0, 1.0, "default 1 mm (resolution tags hold a software-default screen density)"
    return row, col, f"XResolution/YResolution ({label})"


def _check_tiff_complete(path: Path, tiff: tifffile.TiffFile, size: int) -> None:
    """Every strip/tile of the first series must lie inside the file, and hold the pixels its page claims.

    A page's tags can claim any size: a 100-byte file whose ``ImageLength`` says 1.4 billion rows would have
    the decoder allocate gigabytes. Uncompressed strips must hold every row they claim; compressed ones may
    expand at most :data:`~medrestore.io.common.MAX_EXPANSION` times.
    """
    for index, page in enumerate(tiff.series[0].pages):
        if page is None:
            raise InputError(path, f"corrupt TIFF: page {index} cannot be parsed")
        for offset, count in zip(page.dataoffsets, page.databytecounts, strict=False):
            if offset + count > size:
                raise InputError(
                    path, f"file is truncated: page {index} needs bytes up to {offset + count}, the file has {size}"
                )
        tags = page.keyframe  # a TiffFrame's shape and layout tags are its key frame's
        stored = sum(int(count) for count in page.databytecounts)
        row_bytes = -(-int(tags.imagewidth) * int(tags.bitspersample) * int(tags.samplesperpixel) // 8)
        needed = row_bytes * int(tags.imagelength) * max(1, int(tags.imagedepth or 1))
        uncompressed = int(tags.compression) == 1
        if (uncompressed and stored < needed) or (not uncompressed and needed > MAX_EXPANSION * max(stored, 1)):
            raise InputError(
                path, f"corrupt TIFF: page {index} claims {tags.imagelength} × {tags.imagewidth} pixels "
                f"({needed} bytes) from {stored} stored bytes{'' if uncompressed else ' of compressed data'}",
            )


def _tiff_samples_to_gray(array: np.ndarray, axes: str, photometric: str) -> tuple[np.ndarray, str, dict[str, Any]]:
    """Turn a trailing samples axis (RGB/RGBA) into luma."""
    if "S" not in axes:
        return array, axes, {}
    if not axes.endswith("S"):
        array = np.moveaxis(array, axes.index("S"), -1)
        axes = axes.replace("S", "") + "S"
    return rgb_to_luminance(array), axes[:-1], {"converted_from": photometric.upper()}


def read_tiff(path: str | Path) -> DecodedImage:
    """Read the first series of a TIFF: one page → 2-D, several → ``(pages, rows, cols)``."""
    path = Path(path)
    size = path.stat().st_size
    with library_errors(path, "read TIFF"), quiet_library_logs("tifffile"), tifffile.TiffFile(path) as tiff:
        if not tiff.series:
            raise InputError(path, "corrupt TIFF: no readable image (invalid or missing first page)")
        _check_tiff_complete(path, tiff, size)
        series = tiff.series[0]
        array, axes, n_pages = series.asarray(), series.axes, len(series.pages)
        first_page = series.pages[0]
        photometric = first_page.photometric.name.lower()
        colormap = first_page.colormap if photometric == "palette" else None
        shaped = tiff.shaped_metadata[0] if tiff.is_shaped and tiff.shaped_metadata else {}
        imagej = tiff.imagej_metadata or {}
        row_mm, col_mm, source = _tiff_resolution_mm(first_page, imagej)
    if colormap is not None:  # palette indices → (..., 3) colours
        array, axes = np.moveaxis(np.asarray(colormap)[:, array], 0, -1), axes + "S"
    source_dtype = array.dtype
    array, axes, converted = _tiff_samples_to_gray(array, axes, photometric)
    stored = _stored_geometry(path, shaped.get(METADATA_KEY), array.ndim)
    metadata: dict[str, Any] = {"tiff": {"pages": int(n_pages), "axes": axes, "photometric": photometric}}
    metadata.update(converted)
    if stored is not None:
        affine, spatial_ndim, modality, time_axis_first = stored
        if time_axis_first:
            array = np.moveaxis(array, 0, -1)
        return DecodedImage(
            array, affine, spatial_ndim, source_dtype, modality, {**metadata, "spacing_source": "stored affine"}
        )
    while array.ndim > 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim not in (2, 3):
        raise InputError(
            path, f"TIFF series with axes {axes!r} and shape {array.shape} is not supported (2-D or pages × 2-D)"
        )
    unit = MM_PER_UNIT.get(str(imagej.get("unit", "")).strip().lower(), 1.0)
    page_mm = float(imagej.get("spacing", 1.0)) * unit if imagej.get("spacing") else 1.0
    affine = _plane_affine(array.ndim, row_mm, col_mm, page_mm)
    return DecodedImage(array, affine, array.ndim, source_dtype, "unknown", {**metadata, "spacing_source": source})


def _in_plane_spacing(image: Image) -> tuple[float, float]:
    """``(row_spacing, col_spacing)``: the last two spatial axes' spacing (mm)."""
    spacing = image.spacing
    return spacing[-2], spacing[-1]


def write_tiff(image: Image, path: str | Path, dtype: str | np.dtype | None = None) -> Path:
    """Write a (multi-page) TIFF; ``dtype=None`` stores float32, ``"source"`` the read dtype.

    A trailing time axis is stored first (``(T, *spatial)``) so every page stays an image plane.
    """
    path = Path(path)
    target = resolve_write_dtype(path, image, dtype, np.dtype(np.float32))
    if target.kind == "b" or target.itemsize > 8:
        raise InputError(path, f"TIFF writer stores integer or float pixels, not {target}")
    data = cast_to_dtype(image_values(image), target)
    time_axis_first = data.ndim > image.spatial_ndim
    if time_axis_first:
        data = np.moveaxis(data, -1, 0)
    row_mm, col_mm = _in_plane_spacing(image)
    geometry = {
        "affine": np.asarray(image.affine).tolist(),
        "spatial_ndim": image.spatial_ndim,
        "modality": image.modality,
        "time_axis_first": time_axis_first,
    }
    with library_errors(path, "write TIFF"), atomic_path(path, suffix=".tif") as temporary:
        tifffile.imwrite(
            temporary,
            np.ascontiguousarray(data),
            photometric="minisblack",
            resolution=(10.0 / col_mm, 10.0 / row_mm),
            resolutionunit="CENTIMETER",
            metadata={METADATA_KEY: geometry},
        )
    return path


# -- PNG / JPEG ----------------------------------------------------------------------------------
def _pillow_pixels(picture: PIL.Image.Image) -> tuple[np.ndarray, np.dtype, dict[str, Any]]:
    """``(gray array, source dtype, metadata)`` for any Pillow mode."""
    mode = picture.mode
    if mode in ("L", "I", "F") or mode.startswith("I;16"):
        array = np.array(picture)
        return array, array.dtype, {}
    if mode == "1":
        return np.array(picture.convert("L")), np.dtype(np.uint8), {"converted_from": "1"}
    if mode == "LA":
        return np.array(picture)[..., 0], np.dtype(np.uint8), {"converted_from": "LA"}
    rgb = picture if mode in ("RGB", "RGBA") else picture.convert("RGBA" if "A" in mode else "RGB")
    return rgb_to_luminance(np.array(rgb)), np.dtype(np.uint8), {"converted_from": mode}


def _pillow_spacing(info: Mapping[str, Any]) -> tuple[float, float, str]:
    """``(row_spacing, col_spacing, source)`` (mm) from Pillow's ``dpi``."""
    dpi = info.get("dpi")
    if dpi is None or len(dpi) != 2 or min(float(dpi[0]), float(dpi[1])) <= 0:
        return 1.0, 1.0, "default 1 mm (no physical resolution)"
    row, col = 25.4 / float(dpi[1]), 25.4 / float(dpi[0])
    if _is_placeholder_dpi(row, col):
        return 1.0, 1.0, "default 1 mm (a software-default screen density)"
    return row, col, "dpi"


def read_pillow(path: str | Path, format_name: str) -> DecodedImage:
    """Read a PNG or JPEG as a 2-D gray image (``format_name`` names it in errors)."""
    path = Path(path)
    with library_errors(path, f"read {format_name}"), PIL.Image.open(path) as picture:
        picture.load()
        array, source_dtype, metadata = _pillow_pixels(picture)
        info = dict(picture.info)
        n_frames = int(getattr(picture, "n_frames", 1))
    stored_text = info.get(METADATA_KEY)
    stored = None
    if isinstance(stored_text, str):
        try:
            stored = _stored_geometry(path, json.loads(stored_text), array.ndim)
        except json.JSONDecodeError as error:
            raise InputError(path, f"corrupt '{METADATA_KEY}' text chunk: {error}") from error
    if n_frames > 1:
        metadata["frames_ignored"] = n_frames - 1
    if stored is not None:
        affine, spatial_ndim, modality, _ = stored
        return DecodedImage(
            array, affine, spatial_ndim, source_dtype, modality, {**metadata, "spacing_source": "stored affine"}
        )
    row_mm, col_mm, source = _pillow_spacing(info)
    affine = affine_from_spacing((row_mm, col_mm))
    return DecodedImage(array, affine, 2, source_dtype, "unknown", {**metadata, "spacing_source": source})


def read_png(path: str | Path) -> DecodedImage:
    """Read a PNG (8/16-bit gray; colour → luma)."""
    return read_pillow(path, "PNG")


def read_jpeg(path: str | Path) -> DecodedImage:
    """Read a JPEG (8-bit gray; colour → luma)."""
    return read_pillow(path, "JPEG")


def _png_dtype(path: Path, image: Image, dtype: str | np.dtype | None) -> np.dtype:
    """uint8/uint16 target: the source dtype by default."""
    if dtype is None:
        source = str(image.metadata.get("dtype", ""))
        if source not in ("uint8", "uint16"):
            raise InputError(
                path,
                f"PNG stores 8/16-bit unsigned gray values but the image's source dtype is {source or 'unknown'}; "
                'pass dtype="uint8" or "uint16" (values are clipped and rounded), or write TIFF/NIfTI for floats',
            )
        dtype = source
    target = resolve_write_dtype(path, image, dtype, np.dtype(np.uint8))
    if target not in (np.dtype(np.uint8), np.dtype(np.uint16)):
        raise InputError(path, f"PNG stores uint8 or uint16 gray values, not {target}; write TIFF or NIfTI instead")
    return target


def write_png(image: Image, path: str | Path, dtype: str | np.dtype | None = None) -> Path:
    """Write a 2-D image as 8/16-bit gray PNG (``dtype=None``: the source dtype)."""
    path = Path(path)
    if image.spatial_ndim != 2 or image.data.ndim != 2:
        raise InputError(path, f"PNG holds one 2-D plane; this image has shape {image.shape} (write TIFF or NIfTI)")
    target = _png_dtype(path, image, dtype)
    data = cast_to_dtype(image_values(image), target)
    row_mm, col_mm = _in_plane_spacing(image)
    text = PIL.PngImagePlugin.PngInfo()
    geometry = {"affine": np.asarray(image.affine).tolist(), "spatial_ndim": 2, "modality": image.modality}
    text.add_text(METADATA_KEY, json.dumps(geometry))
    with library_errors(path, "write PNG"), atomic_path(path, suffix=".png") as temporary:
        PIL.Image.fromarray(data).save(temporary, format="PNG", pnginfo=text, dpi=(25.4 / col_mm, 25.4 / row_mm))
    return path


def write_jpeg(image: Image, path: str | Path, dtype: str | np.dtype | None = None) -> Path:
    """JPEG is lossy and 8-bit only: refused with a pointer to PNG."""
    raise InputError(path, "writing JPEG is not supported (lossy, 8-bit); write PNG (lossless) instead")
