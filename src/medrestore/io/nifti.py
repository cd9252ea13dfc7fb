"""NIfTI-1 / NIfTI-2 (``.nii``, ``.nii.gz``) through nibabel.

Array order is the file's voxel order ``(i, j, k)`` (``(i, j)`` for 2-D files) with any 4th
axis as the trailing time axis ``T``; the affine is nibabel's (sform if set, else qform),
already RAS+ millimetres. ``scl_slope``/``scl_inter`` are applied on read and recorded.

The full 348/540-byte header is kept as ``metadata["nifti_header"]`` (bytes). The writer
rebuilds the header from it, so ``descrip``, ``xyzt_units``, ``pixdim[4]`` (TR), ``intent``,
``dim_info`` and the qform/sform codes survive a read → restore → write cycle, while shape,
dtype and affine come from the :class:`Image`. A volume read from a format that stacks its planes first (DICOM,
Interfile, NumPy) is written with ``dim_info``'s slice axis set to the first axis, so that it reads back as the same
stack (:func:`~medrestore.core.image.planar_stack_axis`).

The modality, when not ``"mri"`` (what a plain NIfTI file is read as), travels in a
"comment" header extension (code 6) holding ``medrestore {"modality": ...}``. Without one, the BIDS JSON that
dcm2niix writes beside the file (``name.json``) gives it where it says (``Modality``, or an NM ``ImageType``:
dcm2niix's NIfTI of a gamma-camera file is then ``nm``; ``metadata["modality_source"]`` names the sidecar).

Reading decompresses the whole file into memory (one copy of the payload) so that a cut
``.nii.gz`` is reported as truncated instead of failing half-way through the pixel data.
Compression and decompression use ISA-L (``isal``: the same gzip format, several times faster
than ``zlib``); ``.nii.gz`` files are written at gzip level 1, as nibabel does.

Reference: NIfTI-1 data format, https://nifti.nimh.nih.gov/nifti-1 (header fields, codes).
"""

from __future__ import annotations

import gzip
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import nibabel
import numpy as np
from isal import igzip, isal_zlib

from medrestore.core.errors import InputError
from medrestore.core.files import atomic_path
from medrestore.core.image import Image, planar_stack_axis
from medrestore.io.common import (
    DecodedImage,
    cast_to_dtype,
    check_source_dtype,
    image_values,
    library_errors,
    modality_from_dicom,
    quiet_library_logs,
    resolve_write_dtype,
    single_slice_affine,
)

NIFTI_COMMENT_CODE = 6
GZIP_LEVEL = 1
"""gzip level of written ``.nii.gz`` files (nibabel's default too)."""
_EXTENSION_PREFIX = b"medrestore "
# NIfTI datatypes nibabel can write.
WRITABLE_DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "float32", "float64")


def _payload(path: Path) -> bytes:
    """File bytes, gunzipped when the file starts with the gzip magic."""
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return igzip.decompress(raw)
    except (EOFError, OSError, isal_zlib.error):
        pass  # zlib names the problem (a cut stream, trailing bytes, a bad block) more precisely
    try:
        return gzip.decompress(raw)
    except EOFError as error:
        raise InputError(path, "file is truncated: the gzip stream ends before its end marker") from error
    except (OSError, zlib.error) as error:
        raise InputError(path, f"corrupt gzip stream ({error})") from error


def _image_class(path: Path, payload: bytes) -> type[nibabel.Nifti1Image]:
    """Nifti1Image or Nifti2Image from ``sizeof_hdr`` (348 or 540, either byte order)."""
    for order in "<>":
        size = struct.unpack(order + "i", payload[:4])[0] if len(payload) >= 4 else 0
        if size == 348:
            return nibabel.Nifti1Image
        if size == 540:
            return nibabel.Nifti2Image
    raise InputError(path, "corrupt NIfTI header: sizeof_hdr is neither 348 nor 540")


def _check_magic(path: Path, payload: bytes, version: int) -> None:
    """Refuse a header whose magic is not the single-file NIfTI one (``n+1``/``n+2``).

    ``ni1``/``ni2`` is the header of a ``.hdr``/``.img`` pair, and no magic at all an Analyze 7.5
    header: neither holds its voxels in the same file (checked here so that nibabel's own
    complaint about the magic is never printed).
    """
    magic = payload[344:348] if version == 1 else payload[4:8]
    if magic == f"n+{version}\x00".encode():
        return
    if magic == f"ni{version}\x00".encode():
        raise InputError(
            path, f"holds the header of a NIfTI-{version} .hdr/.img pair (magic 'ni{version}'), not a single-file NIfTI: name it "
            f"{path.name.split('.')[0]}.hdr, with its voxels beside it as {path.name.split('.')[0]}.img"
        )
    raise InputError(path, f"corrupt NIfTI header: magic {magic!r} is not 'n+{version}' (an Analyze 7.5 header is not read)")


def _parse(path: Path) -> nibabel.Nifti1Image:
    """Parse header and check the payload holds every voxel the header promises."""
    payload = _payload(path)
    image_class = _image_class(path, payload)
    header_size = 348 if image_class is nibabel.Nifti1Image else 540
    if len(payload) < header_size:
        raise InputError(path, f"file is truncated: {len(payload)} bytes, shorter than the {header_size}-byte header")
    _check_magic(path, payload, 1 if image_class is nibabel.Nifti1Image else 2)
    with library_errors(path, "parse the NIfTI header"):
        nifti = image_class.from_bytes(payload)
        header = nifti.header
        check_source_dtype(path, header.get_data_dtype())
        # the in-memory header forgets vox_offset; the array proxy keeps it
        offset = int(getattr(nifti.dataobj, "offset", header.get_data_offset()))
        expected = offset + int(np.prod(header.get_data_shape())) * header.get_data_dtype().itemsize
    if len(payload) < expected:
        raise InputError(
            path, f"file is truncated: the header promises {expected} bytes of data, the file holds {len(payload)}"
        )
    return nifti


def _to_text(value: Any) -> str:
    """NIfTI char fields come back as ``numpy.bytes_``; decode them leniently."""
    return bytes(value).split(b"\x00")[0].decode("latin-1").strip()


def _scaling(nifti: nibabel.Nifti1Image) -> tuple[float | None, float | None]:
    """``(scl_slope, scl_inter)`` applied on read, ``(None, None)`` for the identity.

    nibabel moves the scaling from the header into the array proxy on load.
    """
    slope = float(getattr(nifti.dataobj, "slope", 1.0))
    intercept = float(getattr(nifti.dataobj, "inter", 0.0))
    if slope == 1.0 and intercept == 0.0:
        return None, None
    return slope, intercept


def _summary(nifti: nibabel.Nifti1Image, version: int) -> dict[str, Any]:
    """JSON-friendly header fields worth seeing without parsing the bytes."""
    header = nifti.header
    slope, intercept = _scaling(nifti)
    space_unit, time_unit = header.get_xyzt_units()
    intent_name, intent_params, intent_label = header.get_intent()
    zooms = header.get_zooms()
    frequency_axis, phase_axis, slice_axis = header.get_dim_info()
    return {
        "version": version,
        "descrip": _to_text(header["descrip"]),
        "repetition_time": float(zooms[3]) if len(zooms) > 3 else None,
        "space_unit": space_unit,
        "time_unit": time_unit,
        "intent": [intent_name, [float(p) for p in intent_params], intent_label],
        "qform_code": int(header["qform_code"]),
        "sform_code": int(header["sform_code"]),
        "dim_info": [frequency_axis, phase_axis, slice_axis],
        "scl_slope": slope,
        "scl_inter": intercept,
    }


def _stored_modality(header: nibabel.Nifti1Header) -> str | None:
    """Modality from a ``medrestore {...}`` comment extension, if any."""
    for extension in header.extensions:
        content = extension.get_content() if extension.get_code() == NIFTI_COMMENT_CODE else b""
        if isinstance(content, bytes) and content.startswith(_EXTENSION_PREFIX):
            try:
                return str(json.loads(content[len(_EXTENSION_PREFIX) :].decode("utf-8"))["modality"])
            except (ValueError, KeyError, TypeError):
                return None
    return None


SIDECAR_BYTES = 1 << 20
"""A BIDS sidecar is a few kB of JSON; a larger file of that name is not read."""
NM_IMAGE_TYPES = ("EMISSION", "TRANSMISSION")
"""``ImageType`` value 4 of an NM image (PS3.3 C.8.4.8.1.1)."""


def sidecar_modality(path: Path) -> tuple[str, str] | None:
    """``(modality, why)`` from the BIDS JSON dcm2niix writes beside a NIfTI (``name.json`` for ``name.nii[.gz]``):
    its ``Modality`` (``MR``, ``CT``, ``NM``, ``PT``…), else ``nm`` for an NM ``ImageType`` (…, ``EMISSION``), which
    dcm2niix writes for gamma-camera files without a ``Modality``; ``None`` without a readable sidecar saying either."""
    name = path.name
    stem = name[: -len(".nii.gz")] if name.lower().endswith(".nii.gz") else path.stem
    sidecar = path.with_name(stem + ".json")
    try:
        if not sidecar.is_file() or sidecar.stat().st_size > SIDECAR_BYTES:
            return None
        fields = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(fields, dict):
        return None
    modality = modality_from_dicom(fields.get("Modality"))
    if modality != "unknown":
        return modality, f"{sidecar.name}: Modality {fields['Modality']}"
    image_type = fields.get("ImageType")
    if isinstance(image_type, list) and len(image_type) >= 4 and str(image_type[3]).upper() in NM_IMAGE_TYPES:
        values = "\\".join(map(str, image_type))
        return "nm", f"{sidecar.name}: ImageType {values} (nuclear medicine)"
    return None


def _arrange_axes(path: Path, array: np.ndarray) -> tuple[np.ndarray, int]:
    """Drop singleton axes beyond the 4th; return ``(array, spatial_ndim)``."""
    while array.ndim > 4 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim > 4:
        raise InputError(
            path, f"{array.ndim}-D NIfTI (shape {array.shape}) is not supported; at most 3 spatial axes + time"
        )
    if array.ndim < 2:
        raise InputError(path, f"{array.ndim}-D NIfTI (shape {array.shape}) is not an image")
    return array, min(array.ndim, 3)


def read_nifti(path: str | Path) -> DecodedImage:
    """Read a ``.nii`` / ``.nii.gz`` file (see the module docstring for conventions).

    nibabel's notes about odd header fields are silenced: the reader checks what matters itself.
    """
    with quiet_library_logs("nibabel.global"):
        return _read_nifti(Path(path))


def _read_nifti(path: Path) -> DecodedImage:
    nifti = _parse(path)
    header = nifti.header
    with library_errors(path, "read NIfTI voxel data"):
        array = np.asarray(nifti.dataobj)
        affine = np.asarray(nifti.affine, dtype=np.float64)
    array, spatial_ndim = _arrange_axes(path, array)
    version = 2 if isinstance(nifti, nibabel.Nifti2Image) else 1
    modality, sidecar_note = _stored_modality(header), {}
    if modality is None:
        from_sidecar = sidecar_modality(path)
        modality = from_sidecar[0] if from_sidecar else "mri"
        sidecar_note = {"modality_source": from_sidecar[1]} if from_sidecar else {}
    return DecodedImage(
        array=array,
        affine=affine,
        spatial_ndim=spatial_ndim,
        source_dtype=header.get_data_dtype(),
        modality=modality,
        metadata={"nifti": _summary(nifti, version), "nifti_header": bytes(header.binaryblock), **sidecar_note},
    )


def _header_from_metadata(path: Path, metadata: Any) -> nibabel.Nifti1Header | None:
    """Rebuild the source header from ``metadata["nifti_header"]`` (``None`` when absent)."""
    block = metadata.get("nifti_header")
    if not isinstance(block, bytes | bytearray):
        return None
    with library_errors(path, "rebuild the NIfTI header from metadata['nifti_header']"):
        if len(block) == 348:
            return nibabel.Nifti1Header(binaryblock=bytes(block), check=False)
        if len(block) == 540:
            return nibabel.Nifti2Header(binaryblock=bytes(block), check=False)
    raise InputError(path, f"metadata['nifti_header'] has {len(block)} bytes; expected 348 or 540")


def _is_orthogonal(affine: np.ndarray) -> bool:
    """Whether the voxel axes are mutually perpendicular (a qform can then hold the affine exactly)."""
    columns = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    return bool(np.allclose(columns.T @ columns, np.eye(3), atol=1e-6))


def _single_slice_layout(image: Image) -> tuple[np.ndarray, np.ndarray]:
    """``(data, affine)`` to store: a 2-D image read from a one-slice volume gets its slice axis back.

    :func:`~medrestore.io.common.squeeze_single_slice` removed the axis named by
    ``metadata["squeezed_axis"]`` and moved its affine column to the third place; putting both
    back writes the source file's layout (e.g. ``(X, Y, 1)``) with the same voxel-to-world
    mapping. Other 2-D images with a time axis are stored ``(X, Y, 1, T)``.
    """
    data, affine = image_values(image), np.asarray(image.affine, dtype=np.float64)
    if image.spatial_ndim != 2:
        return data, affine
    axis = image.metadata.get("squeezed_axis")
    if axis in (0, 1, 2) and not isinstance(axis, bool):
        return np.expand_dims(data, axis), single_slice_affine(affine, axis)
    if data.ndim == 3:
        data = data[:, :, np.newaxis, :]
    return data, affine


def _voxel_values(data: np.ndarray, target: np.dtype, rescale: bool) -> np.ndarray:
    """Pixel array to hand nibabel: cast to ``target`` unless nibabel should fit a slope."""
    if target.kind in "iu" and rescale:
        info = np.iinfo(target)
        exact = np.array_equal(data, np.rint(data)) and data.min() >= info.min and data.max() <= info.max
        if not exact:
            return data  # nibabel chooses scl_slope / scl_inter for the integer type
    return cast_to_dtype(data, target)


def write_nifti(image: Image, path: str | Path, dtype: str | np.dtype | None = None) -> Path:
    """Write ``image`` as NIfTI (gzip-compressed when ``path`` ends in ``.gz``).

    ``dtype=None`` stores float32; ``"source"`` the dtype the image was read from. For an
    integer target, values are rounded and clipped, except when the source file itself was
    scaled (``scl_slope``) and the values are not integers: then nibabel fits a new slope.
    """
    path = Path(path)
    target = resolve_write_dtype(path, image, dtype, np.dtype(np.float32))
    if target.name not in WRITABLE_DTYPES:
        raise InputError(path, f"NIfTI cannot store {target}; use one of {', '.join(WRITABLE_DTYPES)}")
    header = _header_from_metadata(path, image.metadata)
    source_scaled = (image.metadata.get("nifti") or {}).get("scl_slope") is not None
    data, affine = _single_slice_layout(image)
    data = _voxel_values(data, target, source_scaled)
    with library_errors(path, "write NIfTI"):
        image_class = nibabel.Nifti2Image if isinstance(header, nibabel.Nifti2Header) else nibabel.Nifti1Image
        nifti = image_class(data, affine, header=header)
        nifti.set_data_dtype(target)
        _set_transform_codes(nifti, header, affine)
        if header is None:
            nifti.header.set_xyzt_units("mm", "sec")
            if image.spatial_ndim == 3 and image.metadata.get("format") and planar_stack_axis(image) == 0:
                nifti.header.set_dim_info(slice=0)  # a DICOM, Interfile or NumPy stack: its planes run along the first axis
        if image.modality != "mri":
            payload = _EXTENSION_PREFIX + json.dumps({"modality": image.modality}).encode("utf-8")
            nifti.header.extensions.append(nibabel.nifti1.Nifti1Extension(NIFTI_COMMENT_CODE, payload))
        compressed = path.name.lower().endswith(".gz")
        single_file = nifti.to_bytes()  # header, extensions and voxels as one .nii file
        with atomic_path(path, suffix=".nii.gz" if compressed else ".nii") as temporary:
            temporary.write_bytes(igzip.compress(single_file, compresslevel=GZIP_LEVEL) if compressed else single_file)
    return path


def _set_transform_codes(nifti: nibabel.Nifti1Image, header: nibabel.Nifti1Header | None, affine: np.ndarray) -> None:
    """sform always holds the affine exactly; qform too where it can (orthogonal axes).

    Codes come from the source header (sform falls back to the qform code, then 2 =
    "aligned"); a fresh image gets sform 2 and, when orthogonal, qform 2.
    """
    if header is None:
        sform_code, qform_code = 2, (2 if _is_orthogonal(affine) else 0)
    else:
        qform_code = int(header["qform_code"])
        sform_code = int(header["sform_code"]) or qform_code or 2
    nifti.set_sform(affine, code=sform_code)
    if qform_code > 0:
        nifti.set_qform(affine, code=qform_code)
    else:
        nifti.set_qform(None, code=0)
