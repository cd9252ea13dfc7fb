"""Degrade an image file with a catalogued degradation and record exactly how it was done.

The output image keeps the input's geometry (a blur-downsampled or gamma-camera image gets
the coarser affine that keeps world positions) and is written atomically; beside it a sidecar
``<output>.json`` holds::

    {
      "degradation": {"kind": "rician", "sigma": 0.03, "relative": true, "seed": 0},
      "input": "...", "input_sha256": "...", "input_shape": [...],
      "output": "...", "output_shape": [...], "output_dtype": "float32",
      "medrestore_version": "..."
    }

For a folder input (a DICOM series) ``input_sha256`` is :func:`input_digest` of its files.
``degradation`` is :meth:`~medrestore.physics.degradations.Degradation.record` of the transform
resolved against the image (a gamma-camera pixel size left to default is recorded as the
input's spacing, a count level left to default as the input's total counts), which
:func:`~medrestore.physics.degradations.degradation_from_record` rebuilds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import medrestore
from medrestore.core.errors import ConfigError, InputError
from medrestore.core.files import guard_output, sha256_file, sidecar_path, write_record
from medrestore.core.image import Image
from medrestore.io import read_image, write_image
from medrestore.io.values import clip_negative, value_changes
from medrestore.physics.degradations import (
    DEGRADATION_KINDS,
    Degradation,
    GammaCamera,
    ParameterValue,
    build_degradation,
    parameter_types,
    recorded_collimator,
)

__all__ = ["DEGRADATION_KINDS", "OUTPUT_DTYPES", "degrade_file", "input_digest", "parameter_names", "sidecar_path"]

OUTPUT_DTYPES = ("float32", "source")
"""``float32``: write the degraded values as they are; ``source``: cast back to the input file's dtype."""

MAXIMUM_SEED = 2**63 - 1
NONNEGATIVE_KINDS = ("poisson", "gamma-camera")
"""Kinds whose model is counts or activity: negative input values (a signed file's background) are clipped to 0."""


def parameter_names(kind: str) -> tuple[str, ...]:
    """Parameter names the degradation ``kind`` accepts (:class:`ConfigError` for an unknown kind)."""
    return tuple(parameter_types(kind))


def input_digest(path: Path) -> str:
    """SHA-256 of an input file; for a folder (a DICOM series), of its sorted ``"<name> <sha256>"`` lines."""
    if not path.is_dir():
        return sha256_file(path)
    lines = [
        f"{member.relative_to(path).as_posix()} {sha256_file(member)}\n"
        for member in sorted(path.rglob("*"))
        if member.is_file()
    ]
    return hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAXIMUM_SEED:
        raise ConfigError(f"seed must be an integer between 0 and {MAXIMUM_SEED}, got {seed!r}")
    return seed


def _output_dtype(choice: str | None, image: Image, input_path: Path) -> str:
    """The dtype name to write: ``float32``, or the dtype the input file stored."""
    if choice != "source":
        return "float32"
    source = image.metadata.get("dtype")
    if source is None:
        raise InputError(input_path, "its stored dtype is unknown, so it cannot be restored; use dtype float32")
    return str(source)


def _degrade(transform: Degradation, image: Image, seed: int, input_path: Path) -> tuple[Degradation, Image]:
    """Resolve ``transform`` against the image (e.g. its pixel size) and apply it.

    Returns the resolved transform (the one to record) and the degraded image; a problem with
    the pixel values is reported against the input file.
    """
    try:
        resolved = transform.resolve_for_image(image)
        return resolved, resolved.apply_image(image, seed)
    except InputError as error:
        if error.path is not None:
            raise
        raise InputError(input_path, error.problem) from error


def degrade_file(
    input_path: str | Path,
    output_path: str | Path,
    kind: str,
    parameters: Mapping[str, ParameterValue],
    seed: int = 0,
    dtype: str | None = None,
    nonfinite: str = "refuse",
) -> dict[str, Any]:
    """Read ``input_path``, degrade it, write ``output_path`` and its sidecar; return the sidecar dict.

    Args:
        input_path: any image file :func:`medrestore.io.read_image` reads (never modified).
        output_path: destination; the format follows its extension (:func:`medrestore.io.write_image`).
        kind: one of :data:`DEGRADATION_KINDS`.
        parameters: the kind's parameters by name (see :func:`parameter_names`).
        seed: seed of the noise generator, recorded in the sidecar.
        dtype: ``None``/``"float32"`` or ``"source"`` (the input file's stored dtype).
        nonfinite: NaN/±Inf policy of the reader (``"refuse"`` or ``"zero"``, :mod:`medrestore.io.values`).

    A kind in :data:`NONNEGATIVE_KINDS` clips negative input values to 0 first (with a warning);
    the sidecar then records ``clipped_negative``, and ``nonfinite_replaced`` when values were
    replaced on read.

    Raises:
        ConfigError: unknown kind, bad parameter, seed or dtype (checked before reading).
        InputError: the input cannot be read or degraded, or the output would overwrite it.
    """
    input_path, output_path = Path(input_path), Path(output_path)
    transform = build_degradation(kind, parameters)
    seed = _check_seed(seed)
    if dtype not in (None, *OUTPUT_DTYPES):
        raise ConfigError(f"output dtype must be one of {OUTPUT_DTYPES}, got {dtype!r}")
    guard_output(output_path, [input_path], sidecar=True)
    image = read_image(input_path, nonfinite=nonfinite)
    if kind in NONNEGATIVE_KINDS:
        image = clip_negative(image, input_path, f"--kind {kind} (counts are never negative)")
    input_sha256 = input_digest(input_path)
    requested = transform
    transform, degraded = _degrade(transform, image, seed, input_path)
    output_dtype = _output_dtype(dtype, image, input_path)
    written = write_image(degraded.with_metadata(derivation="Degraded"), output_path, dtype=output_dtype)
    record = {
        "degradation": transform.record(seed),
        "input": str(input_path),
        "input_sha256": input_sha256,
        "input_shape": list(image.shape),
        "output": str(written),
        "output_shape": list(degraded.shape),
        "output_dtype": output_dtype,
        **value_changes(image),
        "medrestore_version": medrestore.__version__,
    }
    if isinstance(requested, GammaCamera) and requested.collimator is None:
        record["collimator_source"] = recorded_collimator(image)[1]
    write_record(written, record)
    return record
