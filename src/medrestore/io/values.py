"""Value policies: what to do with pixel values a workflow cannot use as they are.

Real scanner files hold values that a strict reader or model would refuse:

* **NaN / ±Inf** (resampled or masked volumes, failed fits). :func:`to_float32` applies a
  reader policy, one of :data:`NONFINITE_POLICIES`: ``"refuse"`` (the default: an
  :class:`~medrestore.core.errors.InputError` naming the file, the counts and the
  ``--nonfinite zero`` option that accepts it), ``"zero"`` (each replaced by 0 and counted in
  ``metadata["nonfinite_replaced"]``) or ``"keep"`` (library use: the values stay).
* **Negative values** where the model is a non-negative quantity: gamma-camera counts stored
  as signed integers with a negative background, MRI magnitudes with a few negative voxels
  from resampling. :func:`clip_negative` sets them to 0, warns once on stderr and records
  ``metadata["clipped_negative"] = {"count": N, "minimum": v}``. Only the workflows whose
  model needs non-negative values call it; CT numbers, phase images and images scored by
  ``evaluate`` keep their negative values.

:func:`value_changes` collects both records for a workflow's JSON record.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medrestore.core.errors import InputError
from medrestore.core.image import Image

NONFINITE_POLICIES = ("refuse", "zero", "keep")
"""``refuse``: raise :class:`InputError`; ``zero``: replace NaN/±Inf by 0 and record how many;
``keep``: leave them (the caller handles them)."""
CLI_NONFINITE_POLICIES = ("refuse", "zero")
"""The policies the command line offers (``--nonfinite``)."""
NONFINITE_KEY = "nonfinite_replaced"
CLIPPED_KEY = "clipped_negative"
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def warn(path: str | Path | None, message: str) -> None:
    """One line ``medrestore: warning: <path>: <message>`` on stderr."""
    where = "" if path is None else f"{path}: "
    print(f"medrestore: warning: {where}{message}", file=sys.stderr)


def check_nonfinite_policy(policy: str) -> str:
    """``policy`` when it is one of :data:`NONFINITE_POLICIES`; :class:`InputError` otherwise."""
    if policy not in NONFINITE_POLICIES:
        raise InputError(None, f"unknown non-finite value policy {policy!r}; expected one of {NONFINITE_POLICIES}")
    return policy


def nonfinite_counts(array: np.ndarray) -> dict[str, int]:
    """``{"nan", "posinf", "neginf"}`` counts of a real array (all 0 for integer arrays)."""
    if array.dtype.kind != "f":
        return {"nan": 0, "posinf": 0, "neginf": 0}
    return {
        "nan": int(np.count_nonzero(np.isnan(array))),
        "posinf": int(np.count_nonzero(np.isposinf(array))),
        "neginf": int(np.count_nonzero(np.isneginf(array))),
    }


def _describe(counts: dict[str, int]) -> str:
    """``"3 NaN, 1 +Inf and 0 -Inf values"`` (plus values outside float32 when there are any)."""
    text = f"{counts['nan']} NaN, {counts['posinf']} +Inf and {counts['neginf']} -Inf values"
    if counts.get("float32_overflow"):
        text += f" and {counts['float32_overflow']} values outside the float32 range (|x| > 3.4e38)"
    return text


def to_float32(path: str | Path, array: np.ndarray, policy: str = "refuse") -> tuple[np.ndarray, dict[str, int] | None]:
    """Cast decoded pixels to float32 under a non-finite ``policy``.

    Finite values whose magnitude exceeds the float32 range would become ±Inf in the cast;
    they count as non-finite (``"float32_overflow"``).

    Args:
        path: the file, for messages.
        array: decoded pixels, any real dtype and shape.
        policy: one of :data:`NONFINITE_POLICIES`.

    Returns:
        ``(values, record)``: float32 values of ``array``'s shape, and for ``"zero"`` the
        record ``{"nan", "posinf", "neginf", "float32_overflow", "count"}`` of what was
        replaced (``None`` when nothing was, or the policy is ``"refuse"``/``"keep"``).

    Raises:
        InputError: ``"refuse"`` and any NaN/±Inf (or float32 overflow) in ``array``.
    """
    check_nonfinite_policy(policy)
    with np.errstate(over="ignore"):  # overflow is counted below
        values = array.astype(np.float32)
    if array.dtype.kind != "f" or policy == "keep" or bool(np.isfinite(values).all()):
        return values, None
    counts = nonfinite_counts(array)
    finite_source = np.isfinite(array)
    counts["float32_overflow"] = int(np.count_nonzero(finite_source & (np.abs(np.where(finite_source, array, 0)) > _FLOAT32_MAX)))
    if policy == "refuse":
        raise InputError(
            path,
            f"contains {_describe(counts)}; pass --nonfinite zero (Python: nonfinite=\"zero\") "
            "to read it with them replaced by 0",
        )
    values[~np.isfinite(values)] = 0.0
    counts["count"] = sum(counts[key] for key in ("nan", "posinf", "neginf", "float32_overflow"))
    warn(path, f"replaced {_describe(counts)} by 0 (--nonfinite zero)")
    return values, counts


def negative_record(data: torch.Tensor) -> dict[str, float | int] | None:
    """``{"count": N, "minimum": v}`` of the negative values of ``data`` (``None`` when there are none)."""
    negative = data < 0
    count = int(negative.sum())
    if count == 0:
        return None
    return {"count": count, "minimum": float(data.min())}


def clip_negative(image: Image, path: str | Path | None, purpose: str) -> Image:
    """``image`` with negative values set to 0, a one-line warning and a metadata record.

    For workflows whose model is a non-negative quantity (counts, activity, Rician
    magnitude): ``x ← max(x, 0)`` elementwise, any shape and dtype. NaN values are left for
    the workflow's own check. Returns ``image`` itself when nothing is negative.

    Args:
        image: the image as read.
        path: the input file, named in the warning.
        purpose: what needs the non-negative values, e.g. ``"gamma-camera counts"``.

    Returns:
        The clipped image with ``metadata["clipped_negative"] = {"count": N, "minimum": v}``.

    Raises:
        InputError: negative values and none above 0 (e.g. a CT image): clipping would leave nothing.
    """
    record = negative_record(image.data)
    if record is None:
        return image
    if not bool((image.data > 0).any()):
        raise InputError(path, f"holds no positive value (minimum {record['minimum']:.6g}); {purpose} needs non-negative values")
    warn(path, f"clipped {record['count']} negative values (minimum {record['minimum']:.6g}) to 0 for {purpose}")
    return image.with_data(image.data.clamp_min(0)).with_metadata(**{CLIPPED_KEY: record})


def value_changes(image: Image) -> dict[str, Any]:
    """The value records of ``image`` (``nonfinite_replaced``, ``clipped_negative``) that are present.

    Merge the result into a workflow's JSON record: ``{**record, **value_changes(image)}``.
    """
    return {key: image.metadata[key] for key in (NONFINITE_KEY, CLIPPED_KEY) if image.metadata.get(key) is not None}


def rescaled_on_read(image: Image) -> bool:
    """Whether the reader mapped the stored integers through a scale a file of the input's format would need again
    (NIfTI ``scl_slope``/``scl_inter``, NRRD ``oldmin``/``oldmax``). DICOM's rescale is not counted: its writer
    fits a new one to whatever values it is given."""
    metadata = image.metadata
    return (metadata.get("nifti") or {}).get("scl_slope") is not None or "unquantized" in (metadata.get("itk") or {})


def output_dtype(image: Image, values: np.ndarray) -> tuple[str, str | None]:
    """The dtype to store restored ``values`` of ``image`` in: the input's own, unless that would lose them — an
    integer type whose range they leave, or integers the reader had scaled (rounding restored values at the stored
    scale, or clipping a Philips volume scaled to 159 000 at int16's 32 767, destroys them) — then float32.

    Returns:
        ``(dtype name, why float32 was chosen or None)``.
    """
    source = str(image.metadata.get("dtype", "float32"))
    kind = np.dtype(source).kind
    if kind not in "iu":
        return source, None
    if rescaled_on_read(image):
        return "float32", f"the input's {source} values were scaled on reading; stored as float32 to keep them"
    info = np.iinfo(np.dtype(source))
    low, high = float(np.nanmin(values)), float(np.nanmax(values))
    if low < info.min - 0.5 or high > info.max + 0.5:
        return "float32", f"restored values {low:.6g} to {high:.6g} leave {source}'s range; stored as float32"
    return source, None
