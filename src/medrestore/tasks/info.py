"""``medrestore info``: how medrestore reads a file — format, shape, geometry, stored type, values — before a workflow.

An image (any format of :mod:`medrestore.io`) is described by what :func:`~medrestore.io.read_image` returns: the
format found, the array's shape with its spatial axes and frames, the voxel size (mm) and each voxel axis's
direction as the nearest anatomical axis (``RAS`` codes of the RAS+ affine, as ``nib-ls`` and ``mrinfo`` print
them), the stored dtype, the modality inferred, the value range, and the format's own record (the MAT-file
variable read, NRRD's unquantisation, the DICOM series' files...). Raw k-space (twix, ISMRMRD, fastMRI, BART,
``.npz`` with ``kspace``) is described by :func:`~medrestore.io.read_kspace`: coils, samples, the reconstruction
matrix, Cartesian sampling fraction or the radial trajectory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from medrestore.core.errors import InputError
from medrestore.io import read_image, read_kspace
from medrestore.io.common import describe_exception
from medrestore.io.inventory import find_inputs, is_glob, is_series_folder

__all__ = ["KSPACE_SUFFIXES", "axis_codes", "describe_file", "describe_inputs", "info_text"]

KSPACE_SUFFIXES = (".dat", ".h5", ".hdf5", ".mrd", ".cfl")
"""Files read as raw k-space by default (``.npz``/``.npy``: an image unless ``kind="kspace"``)."""
_SKIPPED_METADATA = ("source_path", "format", "dtype", "nifti_header", "dicom_files")


def axis_codes(affine: np.ndarray, spatial_ndim: int) -> str:
    """Each voxel axis's direction as the nearest RAS+ world axis, e.g. ``"LAS"`` (the end the axis runs towards),
    with no world axis named twice: nibabel's ``aff2axcodes``; a 2-D image keeps its two in-plane axes' codes."""
    from nibabel.orientations import aff2axcodes  # noqa: PLC0415 - only where a file is described

    return "".join(code or "?" for code in aff2axcodes(np.asarray(affine, dtype=np.float64))[:spatial_ndim])


def _plain(value: Any, depth: int = 0) -> Any:
    """``value`` made printable as JSON: arrays summarised, long lists cut, bytes named by length."""
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(key): _plain(item, depth + 1) for key, item in value.items() if depth < 3}
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    if isinstance(value, np.ndarray):
        return value.tolist() if value.size <= 16 else f"<array {value.shape} {value.dtype}>"
    if isinstance(value, (list, tuple)):
        items = [_plain(item, depth + 1) for item in value[:12]]
        return items + [f"... {len(value) - 12} more"] if len(value) > 12 else items
    if isinstance(value, (np.generic,)):
        return value.item()
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)


def _describe_image(path: Path, nonfinite: str) -> dict[str, Any]:
    image = read_image(path, nonfinite=nonfinite)
    values = image.numpy()
    finite = values[np.isfinite(values)]
    extra = {key: _plain(value) for key, value in image.metadata.items() if key not in _SKIPPED_METADATA}
    if "dicom_files" in image.metadata:
        extra["dicom_files"] = len(image.metadata["dicom_files"])
    return {
        "path": str(path), "kind": "image", "format": image.metadata.get("format"), "shape": list(image.shape),
        "spatial_ndim": image.spatial_ndim, "frames": image.n_frames, "spacing_mm": list(image.spacing),
        "orientation": axis_codes(image.affine, image.spatial_ndim), "affine": np.round(image.affine, 6).tolist(),
        "stored_dtype": image.metadata.get("dtype"), "modality": image.modality,
        "values": {"min": float(finite.min()), "max": float(finite.max()), "mean": float(finite.mean())} if finite.size else None,
        "metadata": extra,
    }  # fmt: skip


def _describe_kspace(path: Path) -> dict[str, Any]:
    kspace = read_kspace(path)
    sampling: dict[str, Any]
    if kspace.is_cartesian:
        sampled = None if kspace.mask is None else float(kspace.mask.float().mean())
        sampling = {"trajectory": "cartesian", "sampled_fraction": sampled, "acceleration": float(kspace.acceleration)}
    else:
        assert kspace.trajectory is not None
        sampling = {"trajectory": "non-cartesian", "trajectory_shape": list(kspace.trajectory.shape)}
    extra = {key: _plain(value) for key, value in kspace.metadata.items() if key not in _SKIPPED_METADATA}
    return {
        "path": str(path), "kind": "kspace", "format": kspace.metadata.get("format"), "shape": list(kspace.data.shape),
        "coils": kspace.n_coils, "samples": list(kspace.samples_shape), "image_shape": list(kspace.image_shape),
        **sampling, "metadata": extra,
    }  # fmt: skip


def _error_record(path: str | Path, error: InputError) -> dict[str, Any]:
    """``{"path", "error"}``: the problem without the path the error already names."""
    return {"path": str(path), "error": error.problem if error.path is not None else str(error)}


def describe_file(path: str | Path, kind: str = "auto", nonfinite: str = "keep") -> dict[str, Any]:
    """How medrestore reads ``path`` (module docstring). ``kind``: ``auto`` (k-space for :data:`KSPACE_SUFFIXES`,
    else an image), ``image`` or ``kspace``. ``nonfinite`` defaults to ``"keep"``: NaN/±Inf are counted, not refused.

    Returns:
        A JSON-ready record; a file that cannot be read gives ``{"path", "error"}`` instead of raising.
    """
    path = Path(path)
    if kind not in ("auto", "image", "kspace"):
        raise InputError(path, f"unknown kind {kind!r}; use auto, image or kspace")
    as_kspace = kind == "kspace" or (kind == "auto" and path.name.lower().endswith(KSPACE_SUFFIXES))
    try:
        return _describe_kspace(path) if as_kspace else _describe_image(path, nonfinite)
    except InputError as error:
        return _error_record(path, error)
    except Exception as error:  # noqa: BLE001 - a file nobody here wrote: say what failed, keep describing the others
        return {"path": str(path), "error": f"cannot read: {describe_exception(error)}"}


def describe_inputs(entries: list[str], kind: str = "auto") -> list[dict[str, Any]]:
    """:func:`describe_file` for each entry: a file or DICOM series folder as itself, any other folder or a glob
    pattern as every input a batch would find there (images, and raw k-space files unless ``kind="image"``)."""
    records: list[dict[str, Any]] = []
    for entry in entries:
        path = Path(entry)
        if not is_glob(entry) and (path.is_file() or not path.exists() or is_series_folder(path)):
            records.append(describe_file(path, kind))
            continue
        kinds = ("image", "kspace") if kind == "auto" else (kind,)
        try:
            found = {item.path: item.problem for each in kinds for item in find_inputs([entry], each).inputs}
        except InputError as error:
            records.append(_error_record(entry, error))
            continue
        if not found:
            records.append({"path": entry, "error": "no image or k-space file found here"})
        records += [describe_file(item, kind) if problem is None else {"path": str(item), "error": problem} for item, problem in found.items()]
    return records


def info_text(record: dict[str, Any]) -> str:
    """The record as the lines ``medrestore info`` prints."""
    if "error" in record:
        return f"{record['path']}: {record['error']}\n"
    lines = [f"{record['path']}", f"  format       {record['format']} ({record['kind']})"]
    if record["kind"] == "image":
        spatial = record["shape"][: record["spatial_ndim"]]
        frames = f", {record['frames']} frames" if record["frames"] > 1 else ""
        lines += [
            f"  shape        {' × '.join(map(str, spatial))}{frames}",
            f"  voxel (mm)   {' × '.join(f'{value:.4g}' for value in record['spacing_mm'])}",
            f"  orientation  {record['orientation']}",
            f"  stored as    {record['stored_dtype']}",
            f"  modality     {record['modality']}",
        ]
        if record["values"] is not None:
            values = record["values"]
            lines.append(f"  values       {values['min']:.6g} to {values['max']:.6g} (mean {values['mean']:.6g})")
    else:
        lines += [f"  k-space      {' × '.join(map(str, record['shape']))} ({record['coils']} coils)",
                  f"  image        {' × '.join(map(str, record['image_shape']))}", f"  trajectory   {record['trajectory']}"]  # fmt: skip
        if record.get("sampled_fraction") is not None:
            lines.append(f"  sampled      {record['sampled_fraction']:.3f} of the grid (R = {record['acceleration']:.2f})")
    for key, value in record["metadata"].items():
        text = str(value)
        lines.append(f"  {key:<12} {text if len(text) <= 100 else text[:97] + '...'}")
    return "\n".join(lines) + "\n"
