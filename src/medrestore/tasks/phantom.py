"""Paper phantoms from image files, and count calibration of a teacher against a measurement.

``build_paper_phantoms(IN, OUTDIR, config, seed, output_format)``: IN is one image file or a
folder of them (CT, MRI, photographs; colour is read as luma; a 3-D volume gives one slice).
For each image ``<name>`` it writes into OUTDIR::

    <name>_teacher.<ext>         ink activity, Bq per high-resolution pixel
    <name>_teacher_counts.<ext>  the teacher calibrated to counts (unless calibrate_to="none")
    <name>_low.<ext>             low-resolution acquisition (counts)
    <name>_high.<ext>            high-resolution acquisition (counts)
    <name>.json                  the full record (configuration, timing, LUT, files, seed)

and a ``manifest.json`` listing every phantom. Image ``<name>`` is simulated with the seed
:func:`phantom_seed` ``(seed, name)``, so a phantom does not change when other images are
added to the folder. Geometry: the high-resolution images are centred on the print with the
camera's pixel size; the low-resolution image's affine is
:func:`~medrestore.physics.blur.downsample_affine` of it, so all four overlay in world space.

``calibrate_files(TEACHER, MEASURED, OUT, config)``: the study's LUT + mean/std calibration
(:func:`~medrestore.physics.calibration.calibrate_teacher`) of any teacher image against a
measured acquisition whose grid is an integer fraction of the teacher's.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

import medrestore
from medrestore.core.errors import ConfigError, InputError
from medrestore.core.files import atomic_write_text, sha256_file
from medrestore.core.image import Image, affine_from_spacing, planar_stack_axis
from medrestore.core.random import make_generator
from medrestore.io import read_image, write_image
from medrestore.io.values import clip_negative, value_changes
from medrestore.physics.blur import downsample_affine
from medrestore.physics.calibration import STD_TARGETS, CalibrationConfig, calibrate_teacher
from medrestore.physics.gamma_camera import COLLIMATORS, ISOTOPES, CameraHead, CountLevel
from medrestore.physics.paper_phantom import (
    CALIBRATION_TARGETS,
    POLARITIES,
    AcquisitionProtocol,
    InkRecipe,
    PaperPhantom,
    PaperPhantomConfig,
    PrinterModel,
    build_paper_phantom,
)

__all__ = [
    "CALIBRATION_TARGETS", "COLLIMATORS", "ISOTOPES", "OUTPUT_FORMATS", "POLARITIES", "STD_TARGETS",
    "AcquisitionProtocol", "CalibrationConfig", "CameraHead", "CountLevel", "InkRecipe", "PaperPhantomConfig",
    "PrinterModel", "build_paper_phantoms", "calibrate_files", "phantom_inputs", "phantom_seed",
]  # fmt: skip

OUTPUT_FORMATS = ("nii.gz", "nii", "npy", "npz", "tif", "dcm")
IMAGE_SUFFIXES = (".nii.gz", ".nii", ".dcm", ".dicom", ".ima", ".tif", ".tiff", ".png", ".jpg", ".jpeg", ".npy", ".npz")
MANIFEST_NAME = "manifest.json"
MAXIMUM_SEED = 2**63 - 1


def _image_stem(path: Path) -> str | None:
    """The name without its image suffix, or None when the suffix is not an image's."""
    lowered = path.name.lower()
    for suffix in IMAGE_SUFFIXES:
        if lowered.endswith(suffix) and len(lowered) > len(suffix):
            return path.name[: -len(suffix)]
    return None


def phantom_inputs(input_path: str | Path) -> list[tuple[str, Path]]:
    """``[(name, path), ...]``: the file itself, or the image files of a folder (sorted, not hidden).

    Raises:
        InputError: missing path, a file that is not an image, an empty folder, or two files
            of one folder with the same name (``a.png`` and ``a.jpg``).
    """
    path = Path(input_path)
    if not path.exists():
        raise InputError(path, "no such file or folder")
    if path.is_file():
        stem = _image_stem(path)
        if stem is None:
            raise InputError(path, f"not an image file (expected one of {', '.join(IMAGE_SUFFIXES)})")
        return [(stem, path)]
    members = [p for p in sorted(path.iterdir()) if p.is_file() and not p.name.startswith(".") and _image_stem(p)]
    if not members:
        raise InputError(path, f"the folder holds no image files ({', '.join(IMAGE_SUFFIXES)})")
    names = [str(_image_stem(p)) for p in members]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InputError(path, f"several files share the name(s) {', '.join(duplicates)}; rename them")
    return list(zip(names, members, strict=True))


def phantom_seed(seed: int, name: str) -> int:
    """Seed of the phantom made from image ``name``: the first 63 bits of ``SHA-256("<seed>:<name>")``."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & MAXIMUM_SEED


def _plane(image: Image, path: Path, slice_index: int | None) -> tuple[torch.Tensor, dict[str, Any]]:
    """The 2-D plane to print: the image itself, or slice ``slice_index`` (default middle) of a volume: across its last
    axis, or for a scintigram (``nm``) one of its planar frames (:func:`~medrestore.core.image.planar_stack_axis`)."""
    if image.data.ndim > image.spatial_ndim:
        raise InputError(path, f"has {image.n_frames} frames; print one frame or a single image")
    if image.spatial_ndim == 2:
        if slice_index not in (None, 0):
            raise InputError(path, f"is a 2-D image; there is no slice {slice_index}")
        return image.data, {}
    axis = planar_stack_axis(image) if image.modality == "nm" else image.spatial_ndim - 1  # a scintigram: one frame
    depth = image.data.shape[axis]
    index = depth // 2 if slice_index is None else slice_index
    if not 0 <= index < depth:
        raise InputError(path, f"slice {index} is outside 0..{depth - 1} of axis {axis}")
    return image.data.select(axis, index), {"slice_index": index, "slice_axis": axis}


def _phantom_images(phantom: PaperPhantom, config: PaperPhantomConfig) -> dict[str, Image]:
    """The phantom's tensors as images with overlaying geometry (modality nm)."""
    pixel = config.pixel_size_mm
    high_affine = affine_from_spacing((pixel, pixel), origin=phantom.high_origin_mm)
    low_affine = downsample_affine(high_affine, config.scale, 2)
    images = {
        "teacher": Image(phantom.teacher.float(), high_affine, 2, "nm", {"units": "Bq"}),
        "low": Image(phantom.low.counts.float(), low_affine, 2, "nm", {"units": "counts"}),
        "high": Image(phantom.high.counts.float(), high_affine, 2, "nm", {"units": "counts"}),
    }
    if phantom.teacher_counts is not None:
        images["teacher_counts"] = Image(phantom.teacher_counts.float(), high_affine, 2, "nm", {"units": "counts"})
    return images


def _check_common(seed: int, output_format: str) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAXIMUM_SEED:
        raise ConfigError(f"seed must be an integer between 0 and {MAXIMUM_SEED}, got {seed!r}")
    if output_format not in OUTPUT_FORMATS:
        raise ConfigError(f"output format must be one of {OUTPUT_FORMATS}, got {output_format!r}")


def _build_one(
    name: str, path: Path, output_dir: Path, config: PaperPhantomConfig, seed: int, output_format: str,
    slice_index: int | None,
) -> dict[str, Any]:  # fmt: skip
    image = read_image(path)
    plane, plane_record = _plane(image, path, slice_index)
    own_seed = phantom_seed(seed, name)
    try:
        phantom = build_paper_phantom(plane, config, make_generator(own_seed))
    except InputError as error:
        raise InputError(path, error.problem) from error
    written = {
        role: str(write_image(picture, output_dir / f"{name}_{role}.{output_format}"))
        for role, picture in _phantom_images(phantom, config).items()
    }
    record = {
        "input": str(path), "input_sha256": sha256_file(path), "input_shape": list(image.shape), **plane_record,
        "seed": seed, "phantom_seed": own_seed, "outputs": written, "phantom": phantom.record,
        "medrestore_version": medrestore.__version__,
    }  # fmt: skip
    atomic_write_text(output_dir / f"{name}.json", json.dumps(record, indent=2) + "\n")
    return record


def build_paper_phantoms(
    input_path: str | Path,
    output_dir: str | Path,
    config: PaperPhantomConfig = PaperPhantomConfig(),
    seed: int = 0,
    output_format: str = "nii.gz",
    slice_index: int | None = None,
) -> list[dict[str, Any]]:
    """Make a paper phantom of every input image and write them (module docstring).

    Args:
        input_path: one image file or a folder of image files (never modified).
        output_dir: destination folder (created).
        config: the phantom's printing, ink, cameras and protocol.
        seed: base seed (each image uses :func:`phantom_seed`).
        output_format: one of :data:`OUTPUT_FORMATS` (file extension of the images).
        slice_index: slice of the last axis printed from a 3-D volume, or frame of an NM stack (default: the middle).

    Returns:
        The per-image records, in input order (also written as ``manifest.json``).

    Raises:
        ConfigError: bad seed or format. InputError: unreadable, non-2-D, constant image,
            or a print larger than the camera's field of view (the message names the file).
    """
    _check_common(seed, output_format)
    inputs = phantom_inputs(input_path)
    destination = Path(output_dir)
    if destination.exists() and not destination.is_dir():
        raise InputError(destination, "exists and is not a folder")
    records = [_build_one(n, p, destination, config, seed, output_format, slice_index) for n, p in inputs]
    entries = [{"name": n, "record": f"{n}.json", **r["outputs"]} for (n, _), r in zip(inputs, records, strict=True)]
    manifest = {
        "input": str(input_path), "seed": seed, "format": output_format, "phantoms": entries,
        "medrestore_version": medrestore.__version__,
    }  # fmt: skip
    atomic_write_text(destination / MANIFEST_NAME, json.dumps(manifest, indent=2) + "\n")
    return records


def _plane_of_file(path: Path) -> Image:
    if path.is_dir():
        raise InputError(path, "is a folder; calibration reads one image file")
    image = read_image(path)
    if image.spatial_ndim != 2 or image.data.ndim != 2:
        raise InputError(path, f"calibration needs a single 2-D image, got shape {image.shape}")
    return image


def calibrate_files(
    teacher_path: str | Path,
    measured_path: str | Path,
    output_path: str | Path,
    config: CalibrationConfig = CalibrationConfig(),
) -> dict[str, Any]:
    """Calibrate a teacher image to the counts of a measured one; write it and ``<output>.json``.

    The output keeps the teacher's geometry, holds counts per teacher pixel, and (with
    ``preserve_total``) the measured image's total counts. Negative measured values (a signed NM
    file's background) are set to 0 with a warning and counted in the record (``clipped_negative``).

    Raises:
        InputError: unreadable files, not 2-D, grids that are not integer multiples, or the
            output would overwrite an input.
    """
    teacher_path, measured_path, output_path = Path(teacher_path), Path(measured_path), Path(output_path)
    if output_path.resolve() in (teacher_path.resolve(), measured_path.resolve()):
        raise InputError(output_path, "the output would overwrite an input; choose another output path")
    teacher = _plane_of_file(teacher_path)
    measured = clip_negative(_plane_of_file(measured_path), measured_path, "a measured acquisition in counts")
    try:
        calibration = calibrate_teacher(teacher.data, measured.data, config)
    except InputError as error:
        raise InputError(measured_path, error.problem) from error
    result = teacher.with_data(calibration.teacher_counts.float(), modality="nm")
    written = write_image(result, output_path)
    record = {
        "teacher": str(teacher_path), "teacher_sha256": sha256_file(teacher_path),
        "measured": str(measured_path), "measured_sha256": sha256_file(measured_path),
        "output": str(written), "calibration": calibration.record, **value_changes(measured),
        "medrestore_version": medrestore.__version__,
    }  # fmt: skip
    atomic_write_text(Path(f"{written}.json"), json.dumps(record, indent=2) + "\n")
    return record

