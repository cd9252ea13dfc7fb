"""NEMA NU 1 quality-control measures of a gamma-camera acquisition, for ``medrestore nema``.

A physicist's numbers from a planar QC image in counts (:mod:`medrestore.metrics.nema`), with the pixel size the
file stores:

* ``lines`` — the FWHM and FWTM (mm) of ``lines`` parallel line sources (profiles across them summed over 30-mm
  strips), per line and their mean. The mean FWHM is the system resolution to give ``medrestore superres --fwhm``
  for acquisitions at the same distance. The lines run vertically (down the first axis) or horizontally;
  ``along="auto"`` takes the direction whose summed profile across the lines is the sharper (largest maximum
  over mean).
* ``flood`` — integral and differential uniformity (%) over the useful and central fields of view.
* ``bars`` — a four-quadrant bar image, quadrant by quadrant (:mod:`medrestore.metrics.nema_bars`): the bars'
  direction and width, contrast and modulation, and whether they are resolved; with the phantom's four widths given,
  each quadrant is measured at its own bar frequency.

Counts are never negative: a signed file's negative background is set to 0 with a warning first, as ``degrade``
and ``superres`` do. Planar images are measured frame by frame: one plane ``(H, W)``, a plane with trailing frames,
or a stack of planes (:func:`~medrestore.core.image.planar_frames`: an NM multi-frame file, both heads of a dual-head
camera, energy windows);
with several frames the record holds each frame's measures under ``frames``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from medrestore.core.errors import InputError
from medrestore.core.image import Image, planar_frames
from medrestore.io.values import clip_negative, value_changes
from medrestore.metrics.nema import flood_uniformity, line_source_widths
from medrestore.metrics.nema_bars import quadrant_bars

MEASURES = ("lines", "flood", "bars")
ALONG = ("auto", "vertical", "horizontal")
"""The lines' direction as displayed: vertical lines run down the rows (the first axis), horizontal ones along a row."""
SQUARE_TOLERANCE = 0.01
"""Largest relative difference of the two pixel sides measured as one pixel size."""


def _planes(image: Image, path: str | Path | None) -> tuple[list[torch.Tensor], float]:
    """The image's planar frames ``(H, W)`` float64 (:func:`~medrestore.core.image.planar_frames`: one plane, a plane
    with frames, or a stack of them such as a dual-head flood) and their (square) pixel size in mm."""
    try:
        frames, axes = planar_frames(image)
    except InputError as error:
        raise InputError(path, f"NEMA measures take planar frames; {error.problem}") from error
    rows, columns = (float(image.spacing[axis]) for axis in axes)
    if abs(rows - columns) > SQUARE_TOLERANCE * max(rows, columns):
        raise InputError(path, f"pixels of {rows:g} × {columns:g} mm are not square; NEMA widths need one pixel size")
    return list(frames.to(torch.float64)), rows


def _line_axis(plane: torch.Tensor, along: str) -> int:
    """0 for vertical lines (running down the first axis: their profile is the sum over axis 0), 1 for horizontal."""
    if along != "auto":
        return 0 if along == "vertical" else 1
    sharpness = []
    for axis in (0, 1):
        profile = plane.sum(dim=axis)
        sharpness.append(float(profile.max()) / max(float(profile.mean()), np.finfo(float).tiny))
    return int(np.argmax(sharpness))


def _per_frame(measure: str, pixel: float, frames: list[dict[str, Any]], image: Image) -> dict[str, Any]:
    """One frame's measures at the record's top level; several frames' as ``frames`` (numbered from 1)."""
    common = {"measure": measure, "pixel_size_mm": pixel}
    if len(frames) == 1:
        return {**common, **frames[0], **value_changes(image)}
    return {**common, "frames": [{"frame": index, **frame} for index, frame in enumerate(frames, start=1)], **value_changes(image)}


def _lines_of_plane(plane: torch.Tensor, pixel: float, path: str | Path | None, lines: int, along: str, strip_mm: float) -> dict[str, Any]:
    axis = _line_axis(plane, along)
    try:
        widths = line_source_widths(plane, pixel, lines=lines, line_axis=axis, strip_mm=strip_mm)
    except InputError as error:
        direction = ("vertical", "horizontal")[axis]
        raise InputError(path, f"{lines} {direction} line source(s) not found: {error.problem}") from error
    return {
        "lines_run": ("vertical", "horizontal")[axis], "strip_mm": strip_mm, "strips": int(widths.fwhm_mm.shape[1]),
        "lines": [
            {"position_px": float(position), "fwhm_mm": float(fwhm.mean()), "fwtm_mm": float(fwtm.mean())}
            for position, fwhm, fwtm in zip(widths.positions, widths.fwhm_mm, widths.fwtm_mm, strict=True)
        ],
        "fwhm_mm": widths.mean_fwhm_mm, "fwtm_mm": widths.mean_fwtm_mm,
    }  # fmt: skip


def line_measure(image: Image, path: str | Path | None, lines: int = 1, along: str = "auto", strip_mm: float = 30.0) -> dict[str, Any]:
    """FWHM/FWTM of the line sources in ``image`` (module docstring): the record ``medrestore nema lines`` prints."""
    if along not in ALONG:
        raise InputError(path, f"--along is one of {', '.join(ALONG)}, not {along!r}")
    if isinstance(lines, bool) or not isinstance(lines, int) or lines < 1:
        raise InputError(path, f"the number of lines must be an integer >= 1, got {lines!r}")
    image = clip_negative(image, path, "NEMA measures in counts")
    planes, pixel = _planes(image, path)
    measured = [_lines_of_plane(plane, pixel, path, lines, along, strip_mm) for plane in planes]
    return _per_frame("lines", pixel, measured, image)


def flood_measure(image: Image, path: str | Path | None) -> dict[str, Any]:
    """Integral and differential uniformity of a flood (module docstring): the record ``medrestore nema flood`` prints."""
    image = clip_negative(image, path, "NEMA measures in counts")
    planes, pixel = _planes(image, path)
    try:
        measured = [{"uniformity": flood_uniformity(plane, pixel).record()} for plane in planes]
    except InputError as error:
        raise InputError(path, error.problem) from error
    return _per_frame("flood", pixel, measured, image)


def bar_measure(image: Image, path: str | Path | None, bar_widths_mm: tuple[float, ...] | None = None) -> dict[str, Any]:
    """Each quadrant of a four-quadrant bar image (module docstring): the record ``medrestore nema bars`` prints."""
    image = clip_negative(image, path, "NEMA measures in counts")
    planes, pixel = _planes(image, path)
    try:
        measured = [{"quadrants": [bars.record() for bars in quadrant_bars(plane, pixel, bar_widths_mm)]} for plane in planes]
    except InputError as error:
        raise InputError(path, error.problem) from error
    record = _per_frame("bars", pixel, measured, image)
    return {**record, "bar_widths_mm": list(bar_widths_mm) if bar_widths_mm is not None else None}


__all__ = ["ALONG", "MEASURES", "bar_measure", "flood_measure", "line_measure"]
