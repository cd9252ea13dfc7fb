"""Which format is a file? Decided by its extension AND its first bytes (magic numbers).

=============  =========================  ==================================================
format         extensions                 content
=============  =========================  ==================================================
nifti          .nii, .nii.gz              ``sizeof_hdr`` 348 (NIfTI-1) or 540 (NIfTI-2), either
                                          byte order, raw or inside gzip (``1f 8b``)
dicom          .dcm, .dicom, .ima, none;  ``DICM`` at byte 128, or a preamble-less data set
               .dcm.gz, .dicom.gz,        that pydicom parses with ``force`` and has pixel data;
               .ima.gz, .gz               either one raw or inside gzip (``1f 8b``)
dicom-series   (a folder)                 a directory
tiff           .tif, .tiff                ``II*\\0`` / ``MM\\0*`` (BigTIFF ``II+\\0`` / ``MM\\0+``)
png            .png                       ``\\x89PNG\\r\\n\\x1a\\n``
jpeg           .jpg, .jpeg                ``ff d8 ff``
npy            .npy                       ``\\x93NUMPY``
npz            .npz                       a zip archive (``PK``)
interfile      .hv, .h33, .h00 (and       a text header whose first key is ``!INTERFILE``
               .hdr by content)           (read only; its data file lies beside it)
nifti-pair     .hdr (by content), .img,   a 348/540-byte Analyze 7.5 / NIfTI header (read only;
               .hdr.gz, .img.gz
                                          :mod:`medrestore.io.neuro`, as the four below)
mgh            .mgh, .mgz                 version 1, big-endian (``.mgz``: inside gzip)
minc           .mnc                       netCDF ``CDF\1``/``CDF\2`` (MINC1) or HDF5 (MINC2)
parrec         .par, .rec                 ``DATA DESCRIPTION FILE`` in the ``.PAR`` text
afni           .head, .brik, .brik.gz     AFNI attribute text in the ``.HEAD``
nrrd           .nrrd, .nhdr               ``NRRD000n`` (:mod:`medrestore.io.itk`, as the one
                                          below; a ``.nhdr``'s data file lies beside it)
metaimage      .mha, .mhd                 a MetaImage text header (``NDims``, ``DimSize``...)
mat            .mat                       ``MATLAB 5.0``/``7.3 MAT-file`` text (v5–v7.3); a v4
                                          file has no signature and is taken by its extension
                                          (read only, :mod:`medrestore.io.matlab`)
=============  =========================  ==================================================

For a pair's data file (``.img``, ``.REC``, ``.BRIK``) the header beside it is checked.

When the extension names one format and the content another, the file is refused: a PNG
renamed to ``.nii`` is far more likely a mistake than something to guess around.

A "dual-personality" file carries a TIFF header inside its 128-byte DICOM preamble and
``DICM`` at byte 128 (PS3.10 7.5 allows this so that TIFF viewers can show the image). It is
read as DICOM whatever its extension (``.tif`` included): the DICOM data set is the
authoritative one, with the geometry and identifiers a TIFF reader would drop.
"""

from __future__ import annotations

import struct
from pathlib import Path

from medrestore.core.errors import InputError
from medrestore.io.dicom_payload import (
    PIXEL_KEYWORDS,
    dcmread,
    gunzip_head,
    gzip_holds_dicom,
    has_dicom_preamble,
    is_gzip,
    looks_like_bare_dicom,
)
from medrestore.io.interfile import is_interfile_header
from medrestore.io.itk import ITK_FORMAT_NAMES, ITK_FORMATS, check_itk_file, itk_content
from medrestore.io.matlab import is_mat_header
from medrestore.io.neuro import NEURO_FORMAT_NAMES, NEURO_FORMATS, neuro_format

FORMATS = ("nifti", "dicom", "dicom-series", "tiff", "png", "jpeg", "npy", "npz", "interfile", *NEURO_FORMATS, *ITK_FORMATS, "mat")

FORMAT_NAMES = {
    "nifti": "NIfTI",
    "dicom": "DICOM",
    "dicom-series": "DICOM series",
    "tiff": "TIFF",
    "png": "PNG",
    "jpeg": "JPEG",
    "npy": "NumPy .npy",
    "npz": "NumPy .npz",
    "interfile": "Interfile",
    **NEURO_FORMAT_NAMES,
    **ITK_FORMAT_NAMES,
    "mat": "MATLAB .mat",
}

EXTENSIONS = {
    ".nii.gz": "nifti",
    ".nii": "nifti",
    ".dcm.gz": "dicom",
    ".dicom.gz": "dicom",
    ".ima.gz": "dicom",
    ".dcm": "dicom",
    ".dicom": "dicom",
    ".ima": "dicom",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".png": "png",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".npy": "npy",
    ".npz": "npz",
    ".hv": "interfile",
    ".h33": "interfile",
    ".h00": "interfile",
    ".img": "nifti-pair",
    ".hdr.gz": "nifti-pair",
    ".img.gz": "nifti-pair",
    ".mgz": "mgh",
    ".mgh": "mgh",
    ".mnc": "minc",
    ".par": "parrec",
    ".rec": "parrec",
    ".head": "afni",
    ".brik.gz": "afni",
    ".brik": "afni",
    ".nrrd": "nrrd",
    ".nhdr": "nrrd",
    ".mha": "metaimage",
    ".mhd": "metaimage",
    ".mat": "mat",
}
READ_ONLY_FORMATS = ("interfile", *NEURO_FORMATS, "mat")
"""Formats that are read but not written."""
DETACHED_HEADERS = {".nhdr": ".nrrd", ".mhd": ".mha"}
"""Headers naming a separate data file: read, not written (an atomic write cannot keep the name one file gives
the other); the single-file extension of the same format is written instead."""

NIFTI_HEADER_SIZES = (348, 540)
_SNIFF_BYTES = 1024


def format_from_extension(path: str | Path) -> str | None:
    """The format a file name's extension names (case-insensitive), or ``None``."""
    name = Path(path).name.lower()
    for extension, format_name in EXTENSIONS.items():
        if name.endswith(extension):
            return format_name
    return None


def is_nifti_header(head: bytes) -> bool:
    """Whether the first 4 bytes are a NIfTI ``sizeof_hdr`` (348 or 540, either byte order)."""
    if len(head) < 4:
        return False
    return any(struct.unpack(order + "i", head[:4])[0] in NIFTI_HEADER_SIZES for order in "<>")


def content_formats(path: str | Path) -> list[str]:
    """Formats the first bytes of a file match (empty when none).

    Usually one; a DICOM file whose preamble holds a TIFF header (a "dual-personality" file)
    matches both, ``"dicom"`` first. gzip data is judged by its decompressed start (NIfTI or
    DICOM); ``"gzip"`` stands for gzip data holding neither.
    """
    path = Path(path)
    with open(path, "rb") as stream:
        head = stream.read(_SNIFF_BYTES)
    found = []
    if has_dicom_preamble(head):
        found.append("dicom")
    if is_gzip(head):
        found.append(_gzip_content(path))
    elif head[:8] == b"\x89PNG\r\n\x1a\n":
        found.append("png")
    elif head[:3] == b"\xff\xd8\xff":
        found.append("jpeg")
    elif head[:6] == b"\x93NUMPY":
        found.append("npy")
    elif head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        found.append("npz")
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        found.append("tiff")
    if not found and is_nifti_header(head):
        found.append("nifti")
    if not found and is_interfile_header(head):
        found.append("interfile")
    if not found and (itk := itk_content(head)) is not None:
        found.append(itk)
    if not found and is_mat_header(head):
        found.append("mat")
    if not found and looks_like_bare_dicom(head, path):
        found.append("dicom")
    return found


def _gzip_content(path: Path) -> str:
    """``"nifti"``, ``"dicom"`` or ``"gzip"`` (neither) for a gzip-compressed file."""
    inner = gunzip_head(path, _SNIFF_BYTES)
    if has_dicom_preamble(inner):  # first: a DICOM preamble may start with 348 (Siemens mosaics' do)
        return "dicom"
    if is_nifti_header(inner):
        return "nifti"
    return "dicom" if gzip_holds_dicom(path, inner) else "gzip"


def _refuse_dicom_without_pixels(path: Path) -> None:
    """A preamble-less DICOM data set that holds no image is named as such (not as unrecognised bytes)."""
    try:
        dataset = dcmread(path, force=True, stop_before_pixels=False, defer_size=1024)
    except Exception:  # noqa: BLE001 - not DICOM at all: the caller's message stands
        return
    if len(dataset) == 0 or any(keyword in dataset for keyword in PIXEL_KEYWORDS):
        return
    sop_class = dataset.get("SOPClassUID")
    kind = getattr(sop_class, "name", None) or (str(sop_class) if sop_class else "unknown SOP class")
    raise InputError(path, f"DICOM data set without a preamble and without pixel data ({kind}): nothing to read as an image")


def _content_name(format_name: str) -> str:
    return "gzip data that is not NIfTI" if format_name == "gzip" else FORMAT_NAMES[format_name]


def detect_format(path: str | Path) -> str:
    """Format of ``path``: one of :data:`FORMATS`.

    A directory is a ``"dicom-series"``. Otherwise extension and content must agree; a file
    without a known extension is judged by content alone. A dual-personality TIFF/DICOM file
    is ``"dicom"`` (see the module docstring).

    Raises:
        InputError: missing file, empty file, unrecognised content, or extension and
            content disagreeing (``"content is PNG but the extension says NIfTI"``).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found")
    if path.is_dir():
        return "dicom-series"
    if not path.is_file():
        raise InputError(path, "not a regular file")
    try:
        if path.stat().st_size == 0:
            raise InputError(path, "file is empty (0 bytes)")
        candidates = content_formats(path)
    except OSError as error:
        raise InputError(path, f"cannot open file: {error.strerror or error}") from error
    extension = format_from_extension(path)
    if extension in NEURO_FORMATS:
        return neuro_format(path, extension)
    if extension in ITK_FORMATS and (extension in candidates or not candidates):
        return check_itk_file(path, extension)
    if extension == "mat" and not candidates:
        return "mat"  # v4 MAT-files have no signature: scipy.io judges them
    if "nifti" in candidates and path.name.lower().endswith(".hdr"):
        return neuro_format(path, "nifti-pair")  # a .hdr/.img pair's header (or Analyze 7.5)
    if "dicom" in candidates and (extension is None or extension in candidates):
        return "dicom"
    content = extension if extension in candidates else (candidates[0] if candidates else None)
    if content is None or content == "gzip":
        if extension is None:
            raise InputError(path, f"unrecognised file format (no known extension; supported: {', '.join(FORMATS)})")
        found = "gzip data that is not NIfTI" if content == "gzip" else "unrecognised bytes"
        if extension == "dicom" and content is None:
            _refuse_dicom_without_pixels(path)
        raise InputError(
            path,
            f"content is not valid {FORMAT_NAMES[extension]} ({found}); the file is corrupt, truncated or misnamed",
        )
    if extension is not None and extension != content:
        raise InputError(path, f"content is {_content_name(content)} but the extension says {FORMAT_NAMES[extension]}")
    return content


def output_format(path: str | Path) -> str:
    """Format a writer should produce for ``path``: by extension; a path without a suffix,
    ending in a separator, or naming an existing folder is a ``"dicom-series"`` folder.

    Raises:
        InputError: an unknown extension.
    """
    text = str(path)
    target = Path(path)
    if text.endswith(("/", "\\")) or target.is_dir():
        return "dicom-series"
    extension = format_from_extension(target)
    writable = sorted(ext for ext, name in EXTENSIONS.items() if name not in READ_ONLY_FORMATS and ext not in DETACHED_HEADERS)
    if extension in READ_ONLY_FORMATS:
        raise InputError(path, f"{FORMAT_NAMES[extension]} files are read, not written; use one of {', '.join(writable)}")
    detached = next((suffix for suffix in DETACHED_HEADERS if target.name.lower().endswith(suffix)), None)
    if detached is not None:
        raise InputError(path, f"a detached {FORMAT_NAMES[extension]} header is read, not written; write a single "
                               f"{DETACHED_HEADERS[detached]} file instead")  # fmt: skip
    if extension is not None:
        return extension
    if target.suffix == "":
        return "dicom-series"
    raise InputError(
        path,
        f"unknown output extension {target.suffix!r}; use one of "
        f"{', '.join(writable)} or a folder name (DICOM series)",
    )
