"""Evaluate restored images against references, file by file or folder by folder.

A pair of files gives one set of metrics. A pair of folders of images gives one set per file
name found in the prediction folder (the reference folder must hold a file of the same name)
and their mean — how results are averaged over subjects (e.g. the OCT peers' convention).
A folder holding only DICOM files (or files without extension) is one DICOM series, i.e. one
image, not a folder of images.

Images are read with :func:`medrestore.io.read_image`. A trailing time/frame axis is scored as
a stack of separate images (moved to the front); the image's own ``spatial_ndim`` decides
between 2-D and 3-D SSIM where the convention lets the data decide. A ``nm`` volume is a stack of
planar frames (:func:`~medrestore.core.image.planar_frames`: a whole-body file's views, a dynamic
study's time frames), scored frame by frame with 2-D SSIM, as ``degrade`` and ``superres`` treat it.

A nuclear-medicine reference (modality ``nm``: DICOM NM or PT) holds counts, which are never
negative; scanners store some with a negative background (signed pixel data). Those negatives are
set to 0 with a one-line warning and recorded (:func:`medrestore.io.values.clip_negative`), as
``degrade`` and ``superres`` do to their inputs, so that a restoration is scored against the counts
its chain started from. Every other reference, and every prediction, is scored as it is.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import torch

from medrestore.core.errors import InputError
from medrestore.core.image import Image, planar_stack_axis
from medrestore.io import read_image
from medrestore.io.detect import format_from_extension
from medrestore.io.values import CLIPPED_KEY, NONFINITE_KEY, clip_negative
from medrestore.metrics import CONVENTION_NAMES, evaluate, get_convention

__all__ = ["CONVENTION_NAMES", "counts_reference", "evaluate_files", "evaluate_images", "evaluate_pair"]


def _natural_key(path: Path) -> list[int | str]:
    """Sort key putting ``2.tif`` before ``10.tif`` (digit runs compare as numbers)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def _visible_entries(folder: Path) -> list[Path]:
    """Entries of ``folder`` not starting with a dot, in natural name order."""
    return sorted((entry for entry in folder.iterdir() if not entry.name.startswith(".")), key=_natural_key)


def _is_image_folder(path: Path) -> bool:
    """``True`` for a folder of separately scored images; ``False`` for a file or one DICOM series."""
    if not path.is_dir():
        return False
    entries = _visible_entries(path)
    if not entries:
        raise InputError(path, "folder is empty")
    return any(entry.is_dir() or format_from_extension(entry) not in (None, "dicom") for entry in entries)


def _check_exists(path: Path, role: str) -> None:
    if not path.exists():
        raise InputError(path, f"{role} file or folder does not exist")


def _planar_stack(reference: Image) -> int | None:
    """The stack axis of a ``nm`` volume scored as planar frames (module docstring), else ``None``."""
    if reference.modality != "nm" or reference.spatial_ndim != 3 or reference.data.ndim != 3:
        return None
    return planar_stack_axis(reference)


def _metric_layout(image: Image, stack: int | None = None) -> torch.Tensor:
    """Pixel data as ``(*frames, *spatial)``: a trailing time axis, or the ``stack`` axis of planar frames, moves to
    the front."""
    if stack is not None and image.data.ndim == 3:
        return image.data.movedim(stack, 0)
    if image.data.ndim > image.spatial_ndim:
        return image.data.movedim(-1, 0)
    return image.data


def _read(path: Path, nonfinite: str, notes: dict[str, Any] | None) -> Image:
    """``read_image`` under the ``nonfinite`` policy; replaced values are noted under the file's path."""
    image = read_image(path, nonfinite=nonfinite)
    if notes is not None and image.metadata.get(NONFINITE_KEY) is not None:
        notes[str(path)] = image.metadata[NONFINITE_KEY]
    return image


def counts_reference(reference: Image, path: str | Path | None, clipped: dict[str, Any] | None = None) -> Image:
    """A ``nm`` reference with its negative values set to 0 (module docstring); others unchanged.

    The record of a clip goes into ``clipped`` (when given) under ``str(path)``.
    """
    if reference.modality != "nm":
        return reference
    reference = clip_negative(reference, path, "scoring against counts (never negative)")
    if clipped is not None and reference.metadata.get(CLIPPED_KEY) is not None:
        clipped[str(path)] = reference.metadata[CLIPPED_KEY]
    return reference


def _mask_region(mask: Image, reference: Image, mask_path: Path | None = None) -> torch.Tensor:
    """The mask (nonzero = inside) in the reference's metric layout; same spatial shape required."""
    if mask.spatial_shape != reference.spatial_shape or mask.n_frames not in (1, reference.n_frames):
        raise InputError(mask_path, f"mask of shape {mask.shape} does not fit the reference of shape {reference.shape}")
    return _metric_layout(mask, _planar_stack(reference)) != 0


def evaluate_images(prediction: Image, reference: Image, convention: str = "default", mask: Image | None = None) -> dict[str, float]:
    """Metrics of ``prediction`` against ``reference`` (the same shape) in memory, as for files.

    A trailing time/frame axis ``(*spatial, T)`` is scored as a stack of ``T`` images; the
    reference's ``spatial_ndim`` chooses 2-D or 3-D SSIM where the convention lets the data decide.
    ``mask``: nonzero = inside, the reference's spatial shape (one frame or one per frame).
    A ``nm`` reference's negative values are set to 0 first (module docstring).

    Raises:
        InputError: shapes that differ, or images the convention cannot score (no path named:
            the caller names its files).
    """
    if prediction.shape != reference.shape:
        raise InputError(None, f"prediction of shape {tuple(prediction.shape)} does not match the reference of shape {tuple(reference.shape)}")
    region = None if mask is None else _mask_region(mask, reference)
    reference = counts_reference(reference, None)
    stack = _planar_stack(reference)
    spatial_ndim = 2 if stack is not None else reference.spatial_ndim
    return evaluate(_metric_layout(prediction, stack), _metric_layout(reference, stack), convention, region, spatial_ndim=spatial_ndim)


def evaluate_pair(
    pred_path: Path,
    ref_path: Path,
    mask_path: Path | None,
    convention: str,
    nonfinite: str = "refuse",
    notes: dict[str, Any] | None = None,
    clipped: dict[str, Any] | None = None,
) -> dict[str, float]:
    """Metrics of one prediction file against one reference file (see :func:`evaluate_files`).

    ``nonfinite`` is the readers' NaN/±Inf policy; with ``"zero"`` the counts of replaced
    values are added to ``notes`` (when given) under each file's path. A ``nm`` reference with
    negative values is clipped (module docstring), recorded in ``clipped`` under its path.

    Raises:
        InputError: unreadable files, shapes that differ (both files and shapes named), or
            images the convention cannot score.
    """
    prediction = _read(pred_path, nonfinite, notes)
    reference = counts_reference(_read(ref_path, nonfinite, notes), ref_path, clipped)
    if prediction.shape != reference.shape:
        raise InputError(
            pred_path,
            f"prediction of shape {prediction.shape} does not match "
            f"the reference {ref_path} of shape {reference.shape}",
        )
    mask = None if mask_path is None else _read(mask_path, nonfinite, notes)
    if mask is not None:
        _mask_region(mask, reference, mask_path)  # a mask that does not fit is named
    try:
        return evaluate_images(prediction, reference, convention, mask)
    except InputError as error:
        if error.path is not None:
            raise
        raise InputError(pred_path, f"{error.problem} (reference {ref_path})") from error


def _mean_metrics(rows: list[dict[str, float]]) -> dict[str, float]:
    """Metric-wise mean of per-file results (all rows share their metric names)."""
    return {name: math.fsum(row[name] for row in rows) / len(rows) for name in rows[0]}


def _evaluate_folders(
    pred_dir: Path, ref_dir: Path, mask_path: Path | None, convention: str, nonfinite: str, notes: dict[str, Any],
    clipped: dict[str, Any],
) -> list[dict[str, Any]]:
    """Per-file results ``{"name", "metrics"}`` for every image in ``pred_dir``, matched by name."""
    mask_folder = mask_path if mask_path is not None and _is_image_folder(mask_path) else None
    rows: list[dict[str, Any]] = []
    for pred_file in _visible_entries(pred_dir):
        ref_file = ref_dir / pred_file.name
        if not ref_file.exists():
            raise InputError(pred_file, f"no reference of the same name in {ref_dir}")
        mask_file = mask_path if mask_folder is None else mask_folder / pred_file.name
        if mask_file is not None and not mask_file.exists():
            raise InputError(pred_file, f"no mask of the same name in {mask_folder}")
        metrics = evaluate_pair(pred_file, ref_file, mask_file, convention, nonfinite, notes, clipped)
        rows.append({"name": pred_file.name, "metrics": metrics})
    return rows


def evaluate_files(
    pred_path: str | Path,
    ref_path: str | Path,
    mask_path: str | Path | None = None,
    convention: str = "default",
    nonfinite: str = "refuse",
) -> dict[str, Any]:
    """Score a prediction against a reference under a named convention.

    Args:
        pred_path: prediction image file (any format :func:`medrestore.io.read_image` reads) or a
            folder of them.
        ref_path: reference file, or a folder holding a file of the same name for each prediction.
        mask_path: optional mask (nonzero = inside): one file for all, or a folder matched by name.
        convention: one of :data:`CONVENTION_NAMES` (``default``, ``fastmri``, ``oct``).
        nonfinite: NaN/±Inf policy of the readers, ``"refuse"`` or ``"zero"`` (:mod:`medrestore.io.values`).

    Returns:
        ``{"pred", "ref", "mask", "convention", "metrics": {name: value}}``; for folders also
        ``"files": [{"name", "metrics"}, ...]``, and ``"metrics"`` is their mean. With values
        replaced on read, ``"nonfinite_replaced": {path: counts}``. Negative values are scored
        as they are (CT numbers, phase and generic float images hold meaningful negatives), except
        in a ``nm`` reference (counts): set to 0, ``"clipped_negative": {path: {"count", "minimum"}}``.

    Raises:
        InputError: a missing or unreadable file, mismatched shapes or folder contents.
    """
    pred, ref = Path(pred_path), Path(ref_path)
    mask = None if mask_path is None else Path(mask_path)
    _check_exists(pred, "prediction")
    _check_exists(ref, "reference")
    if mask is not None:
        _check_exists(mask, "mask")
    chosen = get_convention(convention).name
    result: dict[str, Any] = {
        "pred": str(pred),
        "ref": str(ref),
        "mask": None if mask is None else str(mask),
        "convention": chosen,
    }
    pred_is_folder, ref_is_folder = _is_image_folder(pred), _is_image_folder(ref)
    if pred_is_folder != ref_is_folder:
        folder, other = (pred, ref) if pred_is_folder else (ref, pred)
        raise InputError(folder, f"is a folder of images but {other} is a single image; give two files or two folders")
    notes: dict[str, Any] = {}
    clipped: dict[str, Any] = {}
    if not pred_is_folder:
        result["metrics"] = evaluate_pair(pred, ref, mask, chosen, nonfinite, notes, clipped)
    else:
        rows = _evaluate_folders(pred, ref, mask, chosen, nonfinite, notes, clipped)
        result["metrics"] = _mean_metrics([row["metrics"] for row in rows])
        result["files"] = rows
    if notes:
        result[NONFINITE_KEY] = notes
    if clipped:
        result[CLIPPED_KEY] = clipped
    return result
