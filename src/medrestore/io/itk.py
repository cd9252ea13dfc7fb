"""NRRD and MetaImage, the formats of 3D Slicer and the ITK world, read and written through SimpleITK.

=============  ===========================  ==========================================================
format         files                        written by
=============  ===========================  ==========================================================
nrrd           ``.nrrd`` (one file),        3D Slicer, dcm2niix ``-e y``, teem/unu, ITK; the DWI
               ``.nhdr`` + its data file    volumes of Slicer's diffusion tools
metaimage      ``.mha`` (one file),         ITK/SimpleITK, elastix, MeVisLab, grand-challenge.org
               ``.mhd`` + ``.raw``/``.zraw``
=============  ===========================  ==========================================================

ITK's readers are the reference implementations of both formats (Slicer reads NRRD through them), so the
header's every variant (``space`` names, gzip/bzip2 encodings, detached and multi-file data, byte order)
is taken as ITK takes it. ITK keeps geometry in LPS+: a voxel index ``n = (i, j, k)`` lies at

    p_LPS = origin + D · diag(spacing) · n,

with ``D`` the direction cosines (columns = axis directions). medrestore's affine is RAS+, so

    A = diag(−1, −1, 1, 1) · [[D · diag(spacing), origin], [0, 1]].

The array is in the file's voxel order ``(i, j, k)`` (ITK's ``GetArrayFromImage`` returns it reversed);
a 4th image axis, or the components of a vector image (a NRRD ``list``/``vector`` axis: DWI gradients,
echoes, time points), trails as the time axis. A 2-D image gets a 3-D affine with a 1-mm slice axis. The
integer values of a NRRD with ``oldmin``/``oldmax`` (dcm2niix's way of keeping a DICOM rescale) are mapped back
onto that range (:func:`_unquantize`). The modality comes from the header where it says one (dcm2niix's ``DICOM_0008_0060_Modality``, MetaImage's
``Modality = MET_MOD_CT``), else ``mri``.

Written files are single-file ``.nrrd`` / ``.mha``, gzip-compressed, with the image's geometry. A detached
header (``.nhdr``, ``.mhd``) names its data file by name, which an atomic write (a temporary file renamed
into place) cannot keep: those are read, not written. The affine must be a rotation times a scaling (ITK
stores no shear).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from medrestore.core.errors import InputError
from medrestore.core.files import atomic_path
from medrestore.core.image import Image
from medrestore.io.common import (
    DecodedImage,
    cast_to_dtype,
    check_claimed_bytes,
    check_source_dtype,
    library_errors,
    resolve_write_dtype,
)

__all__ = ["ITK_FORMATS", "ITK_FORMAT_NAMES", "detached_data_file", "itk_content", "read_itk", "write_itk"]

ITK_FORMATS = ("nrrd", "metaimage")
ITK_FORMAT_NAMES = {"nrrd": "NRRD", "metaimage": "MetaImage"}
_IMAGE_IO = {"nrrd": "NrrdImageIO", "metaimage": "MetaImageIO"}
_SINGLE_FILE = {"nrrd": ".nrrd", "metaimage": ".mha"}
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
_MODALITY_CODES = {"MR": "mri", "CT": "ct", "NM": "nm", "PT": "nm", "OCT": "oct", "OPT": "oct"}
_MODALITY_KEY = "DICOM_0008_0060_Modality"
"""The key dcm2niix gives a DICOM series' ``Modality`` in NRRD; written in both formats."""
_MODALITY_NAMES = {"mri": "MR", "ct": "CT", "nm": "NM", "oct": "OCT"}
_WRITABLE = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64")
_HEADER_BYTES = 65536
MAX_METAIMAGE_DIMS = 10
"""MetaIO's own limit on a header's dimensions."""
MAX_METAIMAGE_CHANNELS = 4096
_FIELD_NAMES = {"ndims": "NDims", "dimsize": "DimSize", "elementnumberofchannels": "ElementNumberOfChannels"}


def _header_text(path: Path) -> str:
    """The text header of a NRRD or MetaImage file (up to the first blank line or ``ElementDataFile``), read once per
    version of the file however many checks look at it."""
    status = path.stat()
    return _cached_header(str(path), status.st_mtime_ns, status.st_size)


@functools.lru_cache(maxsize=32)
def _cached_header(path: str, modified: int, size: int) -> str:
    with open(path, "rb") as stream:
        head = stream.read(_HEADER_BYTES)
    end = head.find(b"\n\n")
    return head[: end if end >= 0 else len(head)].decode("latin-1")


def itk_content(head: bytes) -> str | None:
    """``"nrrd"`` or ``"metaimage"`` when a file's first bytes open that header, else ``None``."""
    if re.match(rb"NRRD000[1-9]\r?\n", head):
        return "nrrd"
    keys = {line.split(b"=")[0].strip().lower() for line in head[:4096].splitlines() if b"=" in line}
    if {b"ndims", b"dimsize"} <= keys and (b"elementtype" in keys or b"objecttype" in keys):
        return "metaimage"
    return None


def detached_data_file(path: str | Path, format_name: str) -> Path | None:
    """The one data file a detached header names (``None`` for data inside the header's own file,
    a file list or a name pattern, which ITK resolves itself)."""
    path = Path(path)
    text = _header_text(path)
    if format_name == "nrrd":
        match = re.search(r"^data ?file:[ \t]*(.+?)[ \t]*$", text, re.MULTILINE | re.IGNORECASE)
    else:
        match = re.search(r"^ElementDataFile[ \t]*=[ \t]*(.+?)[ \t]*$", text, re.MULTILINE)
    if match is None:
        return None
    name = match.group(1)
    if name.upper() in ("LOCAL", "LIST") or name.upper().startswith("LIST") or "%" in name or " " in name:
        return None
    data = Path(name)
    return data if data.is_absolute() else path.parent / data


def _available_bytes(path: Path, format_name: str) -> int:
    """Bytes the header's file and its data can hold: the file, plus its one detached data file (or, for a list or
    pattern of files, everything beside it)."""
    size = path.stat().st_size
    data = detached_data_file(path, format_name)
    if data is not None:
        return size + (data.stat().st_size if data.is_file() else 0)
    text = _header_text(path)
    listed = re.search(r"^(data ?file:|ElementDataFile[ \t]*=)", text, re.MULTILINE | re.IGNORECASE)
    if listed is not None and not re.search(r"LOCAL\s*$", text[listed.start() : listed.start() + 80].splitlines()[0]):
        return size + sum(entry.stat().st_size for entry in path.parent.iterdir() if entry.is_file())
    return size


def _compressed(path: Path, format_name: str) -> bool:
    text = _header_text(path)
    if format_name == "nrrd":
        encoding = re.search(r"^encoding:[ \t]*(\S+)", text, re.MULTILINE | re.IGNORECASE)
        return encoding is None or encoding.group(1).lower() not in ("raw",)
    return re.search(r"^CompressedData[ \t]*=[ \t]*True", text, re.MULTILINE | re.IGNORECASE) is not None


def _metaimage_fields(path: Path) -> dict[str, str]:
    """A MetaImage header's ``Key = value`` fields, up to ``ElementDataFile`` (the last one)."""
    fields = {}
    for line in _header_text(path).splitlines():
        key, separator, value = line.partition("=")
        if separator:
            fields[key.strip().lower()] = value.strip()
        if key.strip().lower() == "elementdatafile":
            break
    return fields


def _check_metaimage_header(path: Path) -> None:
    """The fields ITK's MetaIO trusts without bounds: ``NDims`` outside 1–10 (or not a number) crashes it, so the
    counts are checked here first."""
    fields = _metaimage_fields(path)

    def integers(key: str) -> list[int]:
        try:
            return [int(value) for value in fields.get(key, "").split()]
        except ValueError:
            raise InputError(path, f"MetaImage {_FIELD_NAMES[key]} is not a list of integers ({fields[key][:40]!r})") from None

    dims = integers("ndims")
    if len(dims) != 1 or not 1 <= dims[0] <= MAX_METAIMAGE_DIMS:
        raise InputError(path, f"MetaImage NDims must be one integer from 1 to {MAX_METAIMAGE_DIMS} "
                               f"(found {fields.get('ndims', 'none')[:40]!r})")  # fmt: skip
    sizes = integers("dimsize")
    if len(sizes) != dims[0] or min(sizes) < 1:
        raise InputError(path, f"MetaImage DimSize must hold {dims[0]} sizes of at least 1 (found {fields.get('dimsize', 'none')[:40]!r})")
    channels = integers("elementnumberofchannels") or [1]
    if len(channels) != 1 or not 1 <= channels[0] <= MAX_METAIMAGE_CHANNELS:
        raise InputError(path, f"MetaImage ElementNumberOfChannels must be from 1 to {MAX_METAIMAGE_CHANNELS}")


def check_itk_file(path: str | Path, format_name: str) -> str:
    """``format_name`` when the file's bytes open its header and a detached data file lies where it says.

    Raises:
        InputError: not that format's header, or the named data file is missing.
    """
    path = Path(path)
    with open(path, "rb") as stream:
        head = stream.read(4096)
    if itk_content(head) != format_name:
        raise InputError(path, f"content is not valid {ITK_FORMAT_NAMES[format_name]} (no {ITK_FORMAT_NAMES[format_name]} "
                               "header); the file is corrupt, truncated or misnamed")  # fmt: skip
    if format_name == "metaimage":
        _check_metaimage_header(path)
    data = detached_data_file(path, format_name)
    if data is not None and not data.is_file():
        raise InputError(path, f"is a detached {ITK_FORMAT_NAMES[format_name]} header; its data file {data.name} is not "
                               f"beside it ({data})")  # fmt: skip
    return format_name


@contextlib.contextmanager
def _quiet_itk(messages: list[str] | None = None) -> Iterator[Any]:
    """SimpleITK with nothing reaching stderr while inside: ITK's warnings are switched off, and what MetaIO and teem
    print to the C stream themselves ("M_ReadElementsData: file stream is fail after read") is caught by pointing
    file descriptor 2 at a temporary file, its lines appended to ``messages``. (Another thread's stderr output in
    that moment is caught too.)"""
    import SimpleITK as sitk  # noqa: PLC0415 - SimpleITK only where a file of these formats is read or written

    previous = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield sitk
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sitk.ProcessObject.SetGlobalWarningDisplay(previous)
            sink.seek(0)
            if messages is not None:
                messages.extend(line for line in sink.read().decode("utf-8", "replace").splitlines() if line.strip())


def _format_of(path: Path) -> str:
    with open(path, "rb") as stream:
        found = itk_content(stream.read(4096))
    if found is None:
        raise InputError(path, "content is neither NRRD nor MetaImage")
    return found


def _modality(reader: Any) -> str:
    """The modality the header names (a DICOM ``Modality`` copied by dcm2niix or by :func:`write_itk`, MetaImage's
    ``Modality = MET_MOD_CT``), else ``mri``."""
    keys = {key.lower(): key for key in reader.GetMetaDataKeys()}
    for name in (_MODALITY_KEY.lower(), "modality"):
        if name in keys:
            code = reader.GetMetaData(keys[name]).strip().upper().removeprefix("MET_MOD_")
            if code not in ("", "UNKNOWN"):
                return _MODALITY_CODES.get(code, "unknown")
    return "mri"


def _nrrd_quantization(path: Path) -> tuple[float, float] | None:
    """A NRRD header's ``oldmin``/``oldmax``, the range integer values were quantized from, else ``None``."""
    text = _header_text(path)
    found = [re.search(rf"^old ?{end}:[ \t]*(\S+)", text, re.MULTILINE | re.IGNORECASE) for end in ("min", "max")]
    if found[0] is None or found[1] is None:
        return None
    try:
        low, high = float(found[0].group(1)), float(found[1].group(1))
    except ValueError as error:
        raise InputError(path, f"NRRD oldmin/oldmax are not numbers ({found[0].group(1)!r}, {found[1].group(1)!r})") from error
    return (low, high) if np.isfinite(low) and np.isfinite(high) and high > low else None


def _unquantize(array: np.ndarray, low: float, high: float) -> np.ndarray:
    """Integers mapped linearly from the type's range onto ``[low, high]`` (teem's node-centred unquantize):

        v = low + (n − n_min) · (high − low) / (n_max − n_min).

    dcm2niix ``-e y`` stores a DICOM rescale this way (``oldmin = b + m·n_min``, ``oldmax = b + m·n_max``), so the
    values equal its NIfTI output's scaled values.
    """
    info = np.iinfo(array.dtype)
    slope = (high - low) / (float(info.max) - float(info.min))
    return (low + (array.astype(np.float64) - float(info.min)) * slope).astype(np.float32)


def _itemsize(sitk: Any, reader: Any) -> int:
    """Bytes per component of the pixel type ``reader`` found in the header."""
    name = sitk.GetPixelIDValueAsString(reader.GetPixelID()).lower()
    for token, size in (("64-bit", 8), ("32-bit", 4), ("16-bit", 2), ("8-bit", 1)):
        if token in name:
            return size * (2 if "complex" in name else 1)
    return 8


def read_itk(path: str | Path) -> DecodedImage:
    """Read a NRRD (``.nrrd``/``.nhdr``) or MetaImage (``.mha``/``.mhd``) file (module docstring: conventions).

    Returns:
        ``DecodedImage`` with ``array`` of shape ``(X, Y[, Z][, T])`` in the file's voxel order and the RAS+ affine.
    """
    path = Path(path)
    format_name = check_itk_file(path, _format_of(path))
    messages: list[str] = []
    with _quiet_itk(messages) as sitk, library_errors(path, f"read {ITK_FORMAT_NAMES[format_name]} with ITK"):
        reader = sitk.ImageFileReader()
        reader.SetImageIO(_IMAGE_IO[format_name])
        reader.SetFileName(str(path))
        reader.ReadImageInformation()
        dimension, components = reader.GetDimension(), reader.GetNumberOfComponents()
        pixel = sitk.GetPixelIDValueAsString(reader.GetPixelID())
        if "complex" in pixel:
            check_source_dtype(path, np.dtype(np.complex64))
        if dimension not in (2, 3, 4) or (dimension == 4 and components > 1):
            raise InputError(path, f"{dimension}-D image with {components} component(s) per voxel is not supported; at most "
                                   "3 spatial axes + time")  # fmt: skip
        claimed = int(np.prod(reader.GetSize(), dtype=np.int64)) * components * _itemsize(sitk, reader)
        check_claimed_bytes(path, claimed, _available_bytes(path, format_name), _compressed(path, format_name))
        image = reader.Execute()
        array = sitk.GetArrayFromImage(image)  # (k, j, i[, components]) or (t, k, j, i)
        spacing = np.asarray(image.GetSpacing(), dtype=np.float64)
        origin = np.asarray(image.GetOrigin(), dtype=np.float64)
        direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(dimension, dimension)
        modality = _modality(reader)
    check_source_dtype(path, array.dtype)
    source_dtype = array.dtype
    metadata: dict[str, Any] = {"format": format_name, "components": components, "spacing": spacing.tolist()}
    if messages:
        metadata["messages"] = messages[:20]
    quantized = _nrrd_quantization(path) if format_name == "nrrd" and array.dtype.kind in "iu" else None
    if quantized is not None:
        array = _unquantize(array, *quantized)
        metadata["unquantized"] = {"oldmin": quantized[0], "oldmax": quantized[1]}
    axes = list(range(dimension))[::-1]
    array = np.transpose(array, axes + [dimension] if components > 1 else axes)
    spatial = min(dimension, 3)
    if dimension == 4 and array.shape[-1] == 1:
        array = array[..., 0]
    lps = np.eye(4)
    lps[:spatial, :spatial] = direction[:spatial, :spatial] * spacing[:spatial]
    lps[:spatial, 3] = origin[:spatial]
    return DecodedImage(
        array=array, affine=_LPS_TO_RAS @ lps, spatial_ndim=2 if dimension == 2 else 3, source_dtype=source_dtype,
        modality=modality, metadata={"itk": metadata},
    )  # fmt: skip


def _direction_and_spacing(path: Path, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(direction, spacing, origin)`` in LPS+ from a RAS+ affine; a sheared affine is refused."""
    lps = _LPS_TO_RAS @ affine
    columns = lps[:3, :3]
    spacing = np.linalg.norm(columns, axis=0)
    if np.any(spacing <= 0):
        raise InputError(path, "the image's affine has a zero-length axis; ITK formats need a spacing > 0 on every axis")
    direction = columns / spacing
    if not np.allclose(direction.T @ direction, np.eye(3), atol=1e-4):
        raise InputError(path, "the image's affine has sheared axes, which NRRD/MetaImage (ITK) cannot store; write NIfTI")
    return direction, spacing, lps[:3, 3]


def write_itk(image: Image, path: str | Path, dtype: str | np.dtype | None = None) -> Path:
    """Write ``image`` as a gzip-compressed single-file NRRD (``.nrrd``) or MetaImage (``.mha``).

    ``dtype=None`` stores float32, ``"source"`` the dtype the image was read from; integer targets are rounded
    and clipped. A time axis is stored as the voxels' components (NRRD: a ``list`` axis).
    """
    from medrestore.io.nifti import _single_slice_layout  # noqa: PLC0415 - one layout rule for the 3-D formats

    path = Path(path)
    name = path.name.lower()
    format_name = "nrrd" if name.endswith((".nrrd", ".nhdr")) else "metaimage"
    if not name.endswith(_SINGLE_FILE[format_name]):
        raise InputError(path, f"a detached {ITK_FORMAT_NAMES[format_name]} header is read, not written; write a single "
                               f"{_SINGLE_FILE[format_name]} file instead")  # fmt: skip
    target = resolve_write_dtype(path, image, dtype, np.dtype(np.float32))
    if target.name not in _WRITABLE:
        raise InputError(path, f"{ITK_FORMAT_NAMES[format_name]} output cannot store {target}; use one of {', '.join(_WRITABLE)}")
    data, affine = _single_slice_layout(image)
    if target.kind in "iu" and data.size:
        info, low, high = np.iinfo(target), float(np.nanmin(data)), float(np.nanmax(data))
        if low < info.min - 0.5 or high > info.max + 0.5:  # NRRD/MetaImage have no rescale to fit them in
            raise InputError(path, f"values {low:.6g} to {high:.6g} do not fit {target}, and {ITK_FORMAT_NAMES[format_name]} "
                                   "stores no rescale: write float32 (the default)")  # fmt: skip
    data = cast_to_dtype(data if data.ndim > 2 else data[:, :, np.newaxis], target)
    direction, spacing, origin = _direction_and_spacing(path, affine)
    vector = data.ndim == 4
    stored = np.ascontiguousarray(np.transpose(data, [2, 1, 0, 3] if vector else [2, 1, 0]))
    with _quiet_itk() as sitk, library_errors(path, f"write {ITK_FORMAT_NAMES[format_name]} with ITK"):
        itk_image = sitk.GetImageFromArray(stored, isVector=vector)
        itk_image.SetSpacing(spacing.tolist())
        itk_image.SetOrigin(origin.tolist())
        itk_image.SetDirection(direction.flatten().tolist())
        if image.modality in _MODALITY_NAMES:
            itk_image.SetMetaData(_MODALITY_KEY, _MODALITY_NAMES[image.modality])
        with atomic_path(path, suffix=_SINGLE_FILE[format_name]) as temporary:
            writer = sitk.ImageFileWriter()
            writer.SetImageIO(_IMAGE_IO[format_name])
            writer.SetFileName(str(temporary))
            writer.SetUseCompression(True)
            writer.Execute(itk_image)
    return path
