"""The bytes of a DICOM file, decompressed in memory when the file is gzip-compressed.

Scanners and archives often store one gzip-compressed DICOM file per slice (``*.dcm.gz``,
e.g. validation sets exported for sharing). gzip is not a DICOM transfer syntax (PS3.5
A.5 "Deflated" compresses only the data set, after the file meta); it wraps the whole Part 10
file, preamble included. Such a file is recognised by its gzip magic ``1f 8b`` and read by
decompressing it into memory: the file on disk is never changed and no temporary file is
written.

A DICOM data set is recognised either by ``DICM`` at byte 128 (PS3.10 7.1, after the
128-byte preamble) or, without a preamble, by a first element of group ``0002`` or ``0008``
that pydicom parses (``force``) into a data set carrying pixel data.
"""

from __future__ import annotations

import gzip
import io
import zlib
from pathlib import Path
from typing import Any

from medrestore.core.errors import InputError

GZIP_MAGIC = b"\x1f\x8b"
DICOM_MAGIC_OFFSET = 128
DICOM_MAGIC = b"DICM"
PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_BARE_DICOM_STARTS = (b"\x02\x00", b"\x08\x00", b"\x00\x02", b"\x00\x08")


def is_gzip(head: bytes) -> bool:
    """Whether ``head`` starts with the gzip magic number (RFC 1952)."""
    return head[:2] == GZIP_MAGIC


def has_dicom_preamble(head: bytes) -> bool:
    """Whether ``head`` holds ``DICM`` right after the 128-byte preamble (PS3.10 7.1)."""
    return head[DICOM_MAGIC_OFFSET : DICOM_MAGIC_OFFSET + 4] == DICOM_MAGIC


def gunzip(path: str | Path, compressed: bytes) -> bytes:
    """Decompress a whole gzip member in memory; corrupt or cut-off data is an ``InputError``."""
    try:
        return gzip.decompress(compressed)
    except (OSError, EOFError, zlib.error) as error:
        raise InputError(path, f"gzip data is corrupt or truncated ({error})") from error


def gunzip_head(path: str | Path, size: int) -> bytes:
    """The first ``size`` decompressed bytes of a gzip file (``b""`` when even those are cut off)."""
    try:
        with gzip.open(path, "rb") as stream:
            return stream.read(size)
    except (OSError, EOFError, zlib.error):
        return b""


def read_payload(path: str | Path) -> bytes:
    """All bytes of ``path``; a gzip file is decompressed in memory first.

    Raises:
        InputError: the file cannot be opened, or its gzip data is corrupt or truncated.
    """
    try:
        content = Path(path).read_bytes()
    except OSError as error:
        raise InputError(path, f"cannot open file: {error.strerror or error}") from error
    return gunzip(path, content) if is_gzip(content) else content


def open_dataset_source(path: str | Path) -> tuple[str | io.BytesIO, bool]:
    """What ``pydicom.dcmread`` should read for ``path``, and whether it has a preamble.

    Plain files are read by path (pydicom streams them); gzip files as an in-memory stream
    of their decompressed bytes.
    """
    path = Path(path)
    try:
        with open(path, "rb") as stream:
            head = stream.read(DICOM_MAGIC_OFFSET + 4)
    except OSError as error:
        raise InputError(path, f"cannot open file: {error.strerror or error}") from error
    if not is_gzip(head):
        return str(path), has_dicom_preamble(head)
    payload = read_payload(path)
    return io.BytesIO(payload), has_dicom_preamble(payload)


def looks_like_bare_dicom(head: bytes, source: str | Path | io.BytesIO) -> bool:
    """A data set without the preamble: starts with group 0002/0008 (either byte order),
    parses with ``force=True`` and carries pixel data. ``source`` is what pydicom reads."""
    if head[:2] not in _BARE_DICOM_STARTS:
        return False
    try:
        dataset = dcmread(source, force=True, defer_size=1024)
        return any(keyword in dataset for keyword in PIXEL_KEYWORDS)
    except Exception:  # noqa: BLE001 - any parse failure means "not DICOM"
        return False


def gzip_holds_dicom(path: str | Path, head: bytes) -> bool:
    """Whether the decompressed ``head`` of a gzip file (its first bytes) starts a DICOM file."""
    if has_dicom_preamble(head):
        return True
    if head[:2] not in _BARE_DICOM_STARTS:
        return False
    try:
        payload = read_payload(path)
    except InputError:
        return False
    return looks_like_bare_dicom(payload, io.BytesIO(payload))


def dcmread(*args: Any, **kwargs: Any) -> Any:
    """``pydicom.dcmread``, with pydicom imported on first use: detecting and reading other formats does not pay for
    loading it (about 0.17 s)."""
    import pydicom

    return pydicom.dcmread(*args, **kwargs)
