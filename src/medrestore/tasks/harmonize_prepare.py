"""Bring two scanners' volumes into one space, one brain mask and one intensity unit.

Unpaired harmonisers learn from slices of two scanners; the slices only compare if the volumes
are aligned and in the same unit. :func:`prepare_pair` (``medrestore harmonize-data register``):

1. **registration**: the ``moving`` volume (e.g. the 3 T scan) is registered to the ``static``
   one (e.g. the 1.5 T scan or a template) by dipy's affine registration — mutual information
   (Mattes et al., IEEE TMI 22(1), 2003), centre of mass → translation → rigid → affine at three
   scales (factors 4, 2, 1) — and resampled on the static grid (linear interpolation);
2. **one brain mask** (optional): when ``static`` is skull-stripped (zero outside the brain), both
   are multiplied by its mask (non-zero voxels, holes filled, dilated by ``dilation`` voxels), and
   the registered ``moving`` volume also by its own :func:`strip_skull` mask: mutual information
   between a head with its skull and a stripped brain tends to pull the skull inside the brain's
   outline, so the static mask alone leaves a ring of scalp;
3. **intensity normalisation**: each volume is divided by its robust white-matter level
   (:func:`~medrestore.physics.scanner.robust_level`, the 99.5th percentile of values above
   10 % of the maximum), the unit of the simulated scanner pair and of the shipped harmonisers.
"""

from __future__ import annotations

import importlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.ndimage
import torch

import medrestore
from medrestore.core.errors import InputError, MedrestoreError
from medrestore.core.files import atomic_write_text, guard_output
from medrestore.core.image import Image
from medrestore.io import read_image, write_image
from medrestore.physics.scanner import robust_level


def register_affine(moving: Image, static: Image) -> tuple[torch.Tensor, np.ndarray]:
    """``moving`` resampled on ``static``'s grid after affine MI registration: ``(volume (X, Y, Z) float32, 4 × 4 affine)``.

    The affine maps static world coordinates to moving ones (dipy's convention).

    Raises:
        MedrestoreError: dipy is not installed.
    """
    try:
        align = importlib.import_module("dipy.align")
    except ImportError as error:
        raise MedrestoreError(f"registration needs dipy: pip install 'medrestore[bench]' ({error})") from None
    resampled, affine = align.affine_registration(
        moving.data.numpy().astype(np.float32),
        static.data.numpy().astype(np.float32),
        moving_affine=moving.affine,
        static_affine=static.affine,
        nbins=32,
        pipeline=["center_of_mass", "translation", "rigid", "affine"],
        level_iters=[200, 50, 10],
        sigmas=[3.0, 1.0, 0.0],
        factors=[4, 2, 1],
    )
    return torch.from_numpy(np.asarray(resampled, dtype=np.float32)), np.asarray(affine)


def brain_mask_of(volume: torch.Tensor, dilation: int = 2) -> torch.Tensor:
    """Boolean mask of a skull-stripped volume: its non-zero voxels, holes filled, dilated by ``dilation`` voxels."""
    mask = scipy.ndimage.binary_fill_holes(volume.numpy() > 0)
    if dilation > 0:
        mask = scipy.ndimage.binary_dilation(mask, iterations=dilation)
    return torch.from_numpy(np.asarray(mask))


def strip_skull(volume: torch.Tensor, fraction: float = 0.22, erosion: int = 4) -> torch.Tensor:
    """Boolean brain mask of a T1 volume with its skull: the largest bright component once thin bridges are cut.

    ``m = fill(dilate_{e+1}(largest(erode_e(x > f·r))))`` with ``r`` the robust level, ``f`` =
    ``fraction`` (between CSF and grey matter) and ``e`` = ``erosion`` voxels: the dark CSF and
    bone between brain and scalp leave only thin bridges above ``f·r``, which the erosion cuts
    (the morphological core of brain extraction tools such as Smith's BET, HBM 17(3), 2002,
    without its surface model).
    """
    candidates = volume.numpy() > fraction * robust_level(volume)
    core = scipy.ndimage.binary_erosion(candidates, iterations=erosion)
    labels, count = scipy.ndimage.label(core)
    if count == 0:
        return torch.zeros(volume.shape, dtype=torch.bool)
    largest = 1 + int(np.argmax(scipy.ndimage.sum(core, labels, range(1, count + 1))))
    mask = scipy.ndimage.binary_dilation(labels == largest, iterations=erosion + 1)
    return torch.from_numpy(np.asarray(scipy.ndimage.binary_fill_holes(mask)))


def normalise_intensity(volume: torch.Tensor) -> tuple[torch.Tensor, float]:
    """``volume / robust_level(volume)`` and the level divided by."""
    level = robust_level(volume)
    return volume / level, level


def prepare_volumes(
    moving: Image,
    static: Image,
    mask: bool = True,
    dilation: int = 2,
    sources: tuple[str | Path | None, str | Path | None] = (None, None),
    registered: torch.Tensor | None = None,
) -> tuple[Image, Image, dict[str, Any]]:
    """Register, mask and normalise (module docstring): ``(moving on the static grid, static, record)``, both float32.

    ``sources``: the two images' paths, named in errors. ``registered``: ``moving`` already
    resampled on the static grid by an earlier run (the registration is then skipped; the masks
    and the normalisation do not depend on its intensity scale or on an earlier static mask).

    Raises:
        InputError: an image that is not one 3-D volume; with ``mask``, a static volume without a
            zero background (not skull-stripped) — checked before the registration runs.
    """
    for image, source in zip((moving, static), sources):
        if image.spatial_ndim != 3 or image.data.ndim != 3:
            raise InputError(source, f"must be one 3-D volume, got shape {tuple(image.data.shape)}")
    static_data = static.data.float()
    brain = brain_mask_of(static_data, dilation) if mask else None
    if brain is not None and (float((static_data == 0).float().mean()) < 0.05 or not bool(brain.any())):
        raise InputError(sources[1], "is not skull-stripped (less than 5 % zero background), so it gives no brain mask; "
                                     "skull-strip it or pass --no-mask")
    start = time.perf_counter()
    affine = None
    if registered is None:
        registered, affine = register_affine(moving, static)
    seconds = time.perf_counter() - start
    if brain is not None:
        registered, static_data = registered * brain, static_data * brain
        registered = registered * strip_skull(registered)
    registered, moving_level = normalise_intensity(registered)
    static_data, static_level = normalise_intensity(static_data)
    record = {
        "registration": "dipy affine_registration, mutual information, com > translation > rigid > affine, factors 4/2/1",
        "registration_seconds": round(seconds, 1) if affine is not None else None,
        "static_to_moving_affine": affine.round(6).tolist() if affine is not None else None,
        "brain_mask": f"static non-zero voxels, filled, dilated by {dilation}; moving also skull-stripped (strip_skull)" if mask else None,
        "intensity_levels": {"moving": moving_level, "static": static_level},
    }
    grid = {"affine": static.affine, "modality": "mri"}
    return Image.from_array(registered, **grid), Image.from_array(static_data, **grid), record


def prepare_pair(moving_path: str | Path, static_path: str | Path, out_dir: str | Path, mask: bool = True) -> dict[str, Any]:
    """:func:`prepare_volumes` on two files; writes ``out_dir/{moving,static}.nii.gz`` and ``prepare.json``."""
    out_dir = Path(out_dir)
    guard_output(out_dir, [moving_path, static_path])
    moving, static = read_image(moving_path), read_image(static_path)
    prepared_moving, prepared_static, record = prepare_volumes(moving, static, mask, sources=(moving_path, static_path))
    out_dir.mkdir(parents=True, exist_ok=True)
    write_image(prepared_moving, out_dir / "moving.nii.gz")
    write_image(prepared_static, out_dir / "static.nii.gz")
    record = {"moving": str(moving_path), "static": str(static_path), **record, "medrestore_version": medrestore.__version__}
    atomic_write_text(out_dir / "prepare.json", json.dumps(record, indent=2) + "\n")
    return record
