"""The neuroimaging formats other tools write, read through nibabel: NIfTI/Analyze pairs, MGH/MGZ, MINC, PAR/REC, AFNI.

=============  ============================  ===========================================================
format         files                         written by
=============  ============================  ===========================================================
nifti-pair     ``.hdr`` + ``.img``           SPM, FSL (``NIFTI_PAIR``), AIR; Analyze 7.5 (the same header
                                             without the NIfTI magic: OASIS-1, SPM99 and older)
mgh            ``.mgz`` (gzip), ``.mgh``     FreeSurfer (``T1.mgz``, ``brain.mgz``, ``orig.mgz``)
minc           ``.mnc`` (MINC1 netCDF or     the MNI tools; BrainWeb's simulated brains
               MINC2 HDF5)
parrec         ``.PAR`` + ``.REC``           Philips scanners' research export
afni           ``+orig.HEAD`` + ``.BRIK``    AFNI (``.BRIK.gz`` too)
               (or ``.BRIK.gz``)
=============  ============================  ===========================================================

Either file of a pair may be named. Conventions are the NIfTI reader's (:mod:`medrestore.io.nifti`): the array
in the file's voxel order with any 4th axis (frames, dynamics, sub-bricks, MINC's ``time``) trailing, nibabel's
RAS+ millimetre affine, the format's scaling applied (PAR/REC: its display values, nibabel's default). The
modality is ``mri``. These formats are read, not written: outputs are NIfTI (``.nii.gz`` in a batch).

A PAR/REC file holding several image types (magnitude with phase, real or imaginary volumes) is refused: a
restoration of magnitude images would treat them as one time series. MINC's dimension names place its time axis;
nibabel's MINC affine already maps the spatial axes alone.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from medrestore.core.errors import InputError
from medrestore.io.common import DecodedImage, check_source_dtype, library_errors, quiet_library_logs

__all__ = ["NEURO_FORMATS", "NEURO_FORMAT_NAMES", "data_companion", "neuro_format", "pair_data_files", "read_neuro"]

NEURO_FORMATS = ("nifti-pair", "mgh", "minc", "parrec", "afni")
NEURO_FORMAT_NAMES = {"nifti-pair": "NIfTI/Analyze .hdr/.img", "mgh": "MGH/MGZ", "minc": "MINC", "parrec": "PAR/REC", "afni": "AFNI .HEAD/.BRIK"}
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_DATA = {".img.gz": ".hdr.gz", ".img": ".hdr", ".rec": ".par", ".brik": ".head", ".brik.gz": ".head"}
"""A data file's suffix → its header's (FSL's ``NIFTI_PAIR_GZ`` compresses both halves)."""
_DATA_OF_HEADER = {".hdr.gz": (".img.gz",), ".hdr": (".img", ".img.gz"), ".par": (".rec",), ".head": (".brik", ".brik.gz")}
"""A header's suffix → its data file's."""
_SUFFIXES = sorted({*_DATA, *_DATA_OF_HEADER}, key=len, reverse=True)


def _pair_suffix(name: str) -> str:
    """The pair suffix ``name`` ends with (``.BRIK.gz`` and ``.hdr.gz`` whole; any case), else its last suffix."""
    lower = name.lower()
    return next((name[len(name) - len(suffix) :] for suffix in _SUFFIXES if lower.endswith(suffix)), Path(name).suffix)


def data_companion(path: str | Path) -> bool:
    """Whether ``path`` is the data half of a header/data pair (``.img``, ``.REC``, ``.BRIK``, ``.BRIK.gz``)."""
    return Path(path).name.lower().endswith(tuple(_DATA))


def pair_data_files(header: str | Path) -> list[Path]:
    """The data files beside a pair's header (``.hdr``/``.hdr.gz``, ``.PAR``, ``.HEAD``); empty for any other file."""
    header = Path(header)
    suffix = _pair_suffix(header.name).lower()
    return [found for data in _DATA_OF_HEADER.get(suffix, ()) if (found := _sibling(header, data)) is not None]


def _sibling(path: Path, suffix: str) -> Path | None:
    """The file beside ``path`` with its suffix replaced by ``suffix`` (any case), or ``None``."""
    name = path.name
    stem = name[: len(name) - len(_pair_suffix(name))]
    wanted = (stem + suffix).lower()  # any case: .BRIK.gz, .REC, .img
    return next((entry for entry in sorted(path.parent.iterdir()) if entry.name.lower() == wanted and entry.is_file()), None)


def _head(path: Path, size: int = 1024) -> bytes:
    with open(path, "rb") as stream:
        head = stream.read(size)
    if head[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as stream:
                return stream.read(size)
        except (OSError, EOFError, zlib.error):  # corrupt gzip data: judged as unrecognised bytes
            return b""
    return head


def _is_analyze_header(head: bytes) -> bool:
    """Whether ``head`` opens a 348-byte Analyze 7.5 / NIfTI-1 pair header (either byte order) or a NIfTI-2 one."""
    return len(head) >= 4 and any(struct.unpack(order + "i", head[:4])[0] in (348, 540) for order in "<>")


def _header_content(path: Path, format_name: str) -> bool:
    """Whether the header file ``path`` holds what ``format_name`` puts there."""
    head = _head(path)
    if format_name == "nifti-pair":
        return _is_analyze_header(head)
    if format_name == "mgh":
        return head[:4] == b"\x00\x00\x00\x01"  # big-endian version 1
    if format_name == "minc":
        return head[:4] in (b"CDF\x01", b"CDF\x02") or head[:8] == _HDF5_MAGIC
    if format_name == "parrec":
        return b"DATA DESCRIPTION FILE" in head
    return head.lstrip().startswith(b"type = ")  # AFNI .HEAD: attribute blocks


def neuro_format(path: str | Path, format_name: str) -> str:
    """``format_name`` when ``path`` (named as that format) holds it, with the header beside a data file.

    Raises:
        InputError: the content is not the format's, or a data file's header is missing.
    """
    path = Path(path)
    lower = path.name.lower()
    header = path
    for data, header_suffix in _DATA.items():
        if lower.endswith(data):
            found = _sibling(path, header_suffix)
            if found is None:
                raise InputError(path, f"holds only the voxels of a {NEURO_FORMAT_NAMES[format_name]} pair; its header "
                                       f"{path.name[: len(path.name) - len(data)]}{header_suffix} is not beside it")
            header = found
            break
    suffix = _pair_suffix(path.name)
    if header == path and suffix.lower() in _DATA_OF_HEADER and not any(_sibling(path, data) for data in _DATA_OF_HEADER[suffix.lower()]):
        data = _DATA_OF_HEADER[suffix.lower()][0]
        data = data.upper() if suffix.isupper() else data
        name = NEURO_FORMAT_NAMES[format_name]
        stem = path.name[: len(path.name) - len(suffix)]
        raise InputError(path, f"is {'an' if name[0] in 'AEIOU' else 'a'} {name} header; its data file {stem}{data} is not beside it")
    if not _header_content(header, format_name):
        where = "" if header == path else f" in its header {header.name}"
        raise InputError(path, f"content is not valid {NEURO_FORMAT_NAMES[format_name]} (unrecognised bytes{where}); the file is "
                               "corrupt, truncated or misnamed")  # fmt: skip
    return format_name


def _parrec_types(path: Path) -> None:
    """Refuse a PAR/REC holding several image types (magnitude, real, imaginary, phase...)."""
    import nibabel.parrec  # noqa: PLC0415 - nibabel only where a file of these formats is read

    header_path = path if path.name.lower().endswith(".par") else _sibling(path, ".par")
    if header_path is None:
        return
    with library_errors(path, f"parse the PAR header {header_path.name}"), open(header_path, encoding="latin-1") as stream:
        header = nibabel.parrec.PARRECHeader.from_fileobj(stream, permit_truncated=False)
    types = sorted({int(value) for value in header.image_defs["image_type_mr"]})
    if len(types) > 1:
        names = {0: "magnitude", 1: "real", 2: "imaginary", 3: "phase"}
        listed = ", ".join(names.get(value, f"type {value}") for value in types)
        raise InputError(path, f"holds several image types ({listed}); export the magnitude images alone")


def _time_last(image: Any, array: np.ndarray) -> np.ndarray:
    """MINC's arrays keep the file's dimension order, time anywhere: move it last."""
    minc = getattr(image.dataobj, "minc_file", None)
    names = [str(name) for name in getattr(minc, "_dim_names", ())]
    if "time" in names and array.ndim == len(names):
        return np.moveaxis(array, names.index("time"), -1)
    return array


def read_neuro(path: str | Path) -> DecodedImage:
    """Read any of :data:`NEURO_FORMATS` (module docstring; the format is found again from the file)."""
    import nibabel  # noqa: PLC0415 - nibabel only where a file of these formats is read

    from medrestore.io.nifti import _arrange_axes  # noqa: PLC0415 - one axis rule for NIfTI and these

    path = Path(path)

    if path.name.lower().endswith((".par", ".rec")):
        _parrec_types(path)
    with quiet_library_logs("nibabel", "nibabel.global"), library_errors(path, "read the file with nibabel"):
        image = nibabel.load(str(path))
        check_source_dtype(path, image.get_data_dtype())
        array = _time_last(image, np.asarray(image.dataobj))
        affine = np.asarray(image.affine, dtype=np.float64)
    array, spatial_ndim = _arrange_axes(path, array)
    zooms = [float(zoom) for zoom in image.header.get_zooms()]
    return DecodedImage(
        array=array, affine=affine, spatial_ndim=spatial_ndim, source_dtype=np.dtype(image.get_data_dtype()), modality="mri",
        metadata={"neuro": {"reader": type(image).__name__, "zooms": zooms}},
    )  # fmt: skip

