"""Interfile 3.3 images (nuclear medicine): a text header and a raw data file beside it.

Interfile (Todd-Pokropek, Cradduck & Deconinck, "A file format for the exchange of nuclear medicine image
data: a specification of Interfile version 3.3", Nucl Med Commun 13:673-699, 1992) is what gamma cameras'
export tools, the SIMIND Monte Carlo code (``.h00``/``.a00``), STIR (``.hv``/``.v``) and CASToR
(``.hdr``/``.img``) write. The header is ``key := value`` lines opened by ``!INTERFILE :=``; keys are read
without their leading ``!``, in lower case with runs of spaces made one, and ``;`` starts a comment line.
What this reader takes from it:

* ``name of data file`` (relative to the header's folder), ``data offset in bytes`` (STIR: ``[1]``; or ``data
  starting block`` × 2048);
* ``number format`` (``unsigned integer``, ``signed integer``, ``short float``, ``long float``, ``float``) with
  ``number of bytes per pixel``, and ``imagedata byte order`` (``BIGENDIAN``, the standard's default, or
  ``LITTLEENDIAN``);
* ``matrix size [1]`` (pixels per row, x) and ``[2]`` (rows, y), and ``[3]`` or ``total number of images`` for
  the number of images; every image of the file must share one matrix and number format;
* ``scaling factor (mm/pixel) [1]``, ``[2]`` (and ``[3]``; else ``slice thickness (pixels)`` × ``[1]``);
* ``data rescale slope`` / ``data rescale offset`` (CASToR) and ``image scaling factor [1]`` (STIR), applied;
* ``type of data``: ``tomographic`` images, and any with a ``matrix size [3]`` (STIR's and CASToR's volumes), are a
  volume ``(slices, rows, columns)``; every other type (``static``, ``dynamic``, ``gated``, ``whole body``, energy
  windows) gives one planar image ``(rows, columns)`` or a stack of planar frames ``(frames, rows, columns)``, as an
  NM multi-frame DICOM file reads.

Rows are stored first row first; the array keeps that order. The modality is ``nm`` (Interfile is a
nuclear-medicine format). Patient orientation keys are not turned into an affine: the affine is the
diagonal of the pixel sizes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from medrestore.core.errors import InputError
from medrestore.core.image import affine_from_spacing
from medrestore.io.common import DecodedImage

BLOCK_BYTES = 2048
"""``data starting block`` counts blocks of this many bytes."""
_HEADER_BYTES = 1 << 20
"""Headers are text of a few kB; a "header" larger than this is not one."""
_NUMBER_FORMATS = {"unsigned integer": "u", "signed integer": "i", "short float": "f", "long float": "f", "float": "f"}


def _key(text: str) -> str:
    """``!Matrix Size[1]`` → ``matrix size [1]``: no ``!``, lower case, one space between words and before ``[``."""
    return " ".join(text.strip().lstrip("!").lower().replace("[", " [").split())


def _present(keys: dict[str, list[str]], *names: str) -> str:
    """The first of ``names`` the header holds (the last when it holds none): STIR writes some keys with ``[1]``."""
    return next((name for name in names if name in keys), names[-1])


def is_interfile_header(head: bytes) -> bool:
    """Whether ``head`` (a file's first bytes) opens an Interfile header: ``!INTERFILE`` as the first key."""
    for raw in head.splitlines():
        line = raw.strip().lstrip(b"\xef\xbb\xbf")
        if not line or line.startswith(b";"):
            continue
        return _key(line.split(b":=")[0].decode("latin-1")) == "interfile"
    return False


def parse_header(path: Path) -> dict[str, list[str]]:
    """Every key of the header with its values in order of appearance (keys may repeat per image)."""
    if path.stat().st_size > _HEADER_BYTES:
        raise InputError(path, f"an Interfile header of {path.stat().st_size} bytes is not a header")
    keys: dict[str, list[str]] = {}
    for line in path.read_text(encoding="latin-1").splitlines():
        line = line.strip()
        if not line or line.startswith(";") or ":=" not in line:
            continue
        name, value = line.split(":=", 1)
        keys.setdefault(_key(name), []).append(value.strip())
    return keys


def _one(path: Path, keys: dict[str, list[str]], name: str, default: str | None = None) -> str:
    """The value of ``name``: the same in every occurrence (one matrix and format for all images)."""
    values = [value for value in keys.get(name, []) if value != ""]
    if not values:
        if default is None:
            raise InputError(path, f"the Interfile header has no {name!r} key")
        return default
    if len({value.lower() for value in values}) > 1:
        raise InputError(path, f"the images of this file differ in {name!r} ({', '.join(sorted(set(values)))}); one matrix and format is read")
    return values[0]


def _number(path: Path, keys: dict[str, list[str]], name: str, default: float | None = None) -> float:
    text = _one(path, keys, name, None if default is None else repr(default))
    try:
        value = float(text)
    except ValueError:
        raise InputError(path, f"the Interfile key {name!r} is {text!r}, not a number") from None
    if not np.isfinite(value):
        raise InputError(path, f"the Interfile key {name!r} is {text!r}, not a finite number")
    return value


def _count(path: Path, keys: dict[str, list[str]], name: str, default: int | None = None) -> int:
    value = _number(path, keys, name, None if default is None else float(default))
    if value != int(value) or value < 1:
        raise InputError(path, f"the Interfile key {name!r} is {value:g}, not a count >= 1")
    return int(value)


def _dtype(path: Path, keys: dict[str, list[str]]) -> np.dtype:
    number_format = " ".join(_one(path, keys, "number format").lower().split())
    if number_format not in _NUMBER_FORMATS:
        raise InputError(path, f"Interfile number format {number_format!r} is not read (supported: {', '.join(_NUMBER_FORMATS)})")
    default_bytes = {"short float": 4, "long float": 8}.get(number_format)
    size = _count(path, keys, "number of bytes per pixel", default_bytes)
    kind = _NUMBER_FORMATS[number_format]
    if (kind == "f" and size not in (4, 8)) or (kind != "f" and size not in (1, 2, 4, 8)):
        raise InputError(path, f"Interfile {number_format} of {size} bytes per pixel is not a machine number")
    order = _one(path, keys, "imagedata byte order", "BIGENDIAN").upper().replace(" ", "")
    if order not in ("BIGENDIAN", "LITTLEENDIAN"):
        raise InputError(path, f"Interfile byte order {order!r} is neither BIGENDIAN nor LITTLEENDIAN")
    return np.dtype(f"{'>' if order == 'BIGENDIAN' else '<'}{kind}{size}")


def _data_file(path: Path, keys: dict[str, list[str]]) -> tuple[Path, int]:
    """The data file named by the header (relative to its folder) and the byte offset of the pixels in it."""
    name = _one(path, keys, "name of data file")
    data = Path(name) if Path(name).is_absolute() else path.parent / name
    if not data.is_file():
        raise InputError(path, f"the data file it names, {data}, does not exist")
    name = _present(keys, "data offset in bytes [1]", "data offset in bytes", "data starting block")
    blocks = name == "data starting block"
    offset = _number(path, keys, name, 0.0)
    if offset < 0 or offset != int(offset):
        raise InputError(path, f"{name} is {offset:g}, not a count")
    return data, int(offset) * (BLOCK_BYTES if blocks else 1)


def read_interfile(path: str | Path) -> DecodedImage:
    """Read the Interfile image whose header is ``path`` (module docstring).

    Raises:
        InputError: a header without the keys named above, a number format that is not read, a missing or
            truncated data file, or images of different matrices in one file.
    """
    path = Path(path)
    keys = parse_header(path)
    dtype = _dtype(path, keys)
    columns, rows = _count(path, keys, "matrix size [1]"), _count(path, keys, "matrix size [2]")
    images = _count(path, keys, "matrix size [3]") if "matrix size [3]" in keys else _count(path, keys, "total number of images", 1)
    data, offset = _data_file(path, keys)
    needed = offset + images * rows * columns * dtype.itemsize
    size = data.stat().st_size
    if size < needed:
        raise InputError(data, f"holds {size} bytes; its header {path.name} describes {images} image(s) of {rows} × {columns} "
                               f"{dtype.name} from byte {offset}, {needed} bytes")  # fmt: skip
    stored = np.fromfile(data, dtype=dtype, count=images * rows * columns, offset=offset).reshape(images, rows, columns)
    values: np.ndarray = stored.astype(dtype.newbyteorder("="))
    scaling = _number(path, keys, _present(keys, "image scaling factor [1]", "image scaling factor"), 1.0)
    slope = _number(path, keys, "data rescale slope", 1.0) * scaling
    intercept = _number(path, keys, "data rescale offset", 0.0)
    if slope != 1.0 or intercept != 0.0:
        values = values.astype(np.float64) * slope + intercept
    column_mm = _number(path, keys, "scaling factor (mm/pixel) [1]", 1.0)
    row_mm = _number(path, keys, "scaling factor (mm/pixel) [2]", column_mm)
    if column_mm <= 0 or row_mm <= 0:
        raise InputError(path, f"pixel sizes of {row_mm:g} × {column_mm:g} mm are not sizes")
    kind = " ".join(_one(path, keys, "type of data", "static").lower().split())
    volume = kind == "tomographic" or "matrix size [3]" in keys  # STIR and CASToR give volumes a third matrix size
    metadata: dict[str, Any] = {"interfile": {"type_of_data": kind, "data_file": str(data), "images": images}}
    if images == 1 and not volume:
        return DecodedImage(values[0], affine_from_spacing((row_mm, column_mm)), 2, dtype.newbyteorder("="), "nm", metadata)
    if volume:
        slice_mm = _number(path, keys, "scaling factor (mm/pixel) [3]", _number(path, keys, "slice thickness (pixels)", 1.0) * column_mm)
    else:
        slice_mm = 1.0  # frames (energy windows, views, time): no distance between them
    return DecodedImage(values, affine_from_spacing((slice_mm, row_mm, column_mm)), 3, dtype.newbyteorder("="), "nm", metadata)


__all__ = ["BLOCK_BYTES", "is_interfile_header", "parse_header", "read_interfile"]
