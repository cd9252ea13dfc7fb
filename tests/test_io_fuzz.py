"""Property-based fuzzing of the readers: mutated headers read as a valid image or fail with InputError naming the file.

Each test starts from a small valid file (NIfTI-1, ``.npy``, BART ``.hdr``/``.cfl``, TIFF, PNG,
DICOM), changes header fields chosen by hypothesis (sizes, dimensions, data types, offsets,
scaling, codes, element values, transfer syntax) and reads the result. Any outcome other than an
:class:`~medrestore.core.image.Image` (or :class:`~medrestore.core.kspace.KSpace`) with finite
geometry, or an :class:`InputError` whose one-line message names the file, fails; so does a read
that takes longer than :data:`HANG_SECONDS`. The default run is derandomised and small; the
``slow`` variants explore more examples.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import io
import math
import signal
import struct
import tempfile
import time
import warnings
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import PIL.Image
import pydicom
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.data import get_testdata_file

from medrestore.core.errors import InputError
from medrestore.core.image import Image
from medrestore.core.kspace import KSpace
from medrestore.io import read_image, read_kspace

HANG_SECONDS = 20
QUIET = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]  # capfd is read after every example
FAST = settings(max_examples=40, deadline=5000, derandomize=True, database=None, suppress_health_check=QUIET)
THOROUGH = settings(max_examples=400, deadline=10000, database=None, suppress_health_check=QUIET)


@contextlib.contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """Fail a read that runs longer than ``seconds`` (a hang) instead of waiting for it."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"read took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def check_read(
    path: Path, reader: Callable[[Path], Any] = read_image, named: Path | None = None, capfd: pytest.CaptureFixture[str] | None = None
) -> Any:
    """The invariant: a valid result, or one InputError naming ``named`` (default ``path``); input unchanged;
    nothing printed on stderr by the libraries (checked with ``capfd``)."""
    before = path.read_bytes()
    named = path if named is None else named
    try:
        with time_limit(HANG_SECONDS):
            result = reader(path)
    except InputError as error:
        message = str(error)
        assert str(named) in message and "\n" not in message, message
        return error
    except Exception as error:  # noqa: BLE001 - the invariant under test
        pytest.fail(f"{type(error).__name__} escaped instead of InputError: {error}")
    finally:
        assert path.read_bytes() == before, "reading changed the input"
        if capfd is not None:
            assert capfd.readouterr().err == "", "a library printed on stderr"
    if isinstance(result, Image):
        assert result.data.numel() > 0 and np.all(np.isfinite(result.affine))
        assert result.spatial_ndim in (2, 3) and result.data.ndim in (result.spatial_ndim, result.spatial_ndim + 1)
    elif isinstance(result, KSpace):
        assert result.data.numel() > 0 and result.data.is_complex()
    return result


_CASES = tempfile.TemporaryDirectory(prefix="medrestore-fuzz-")


def write_case(payload: bytes, name: str) -> Path:
    """Write ``payload`` as ``name`` in this module's temporary folder, emptied first (one case at a time)."""
    folder = Path(_CASES.name)
    for old in folder.iterdir():
        old.unlink()
    path = folder / name
    path.write_bytes(payload)
    return path


INT16 = st.integers(-(2**15), 2**15 - 1)
INT32 = st.integers(-(2**31), 2**31 - 1)
FLOAT32 = st.one_of(st.floats(width=32, allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -1.0, 1e-30, 1e30]))

# -- NIfTI-1 -------------------------------------------------------------------------------------------
NIFTI_FIELDS: dict[str, tuple[int, str, st.SearchStrategy[Any]]] = {
    "sizeof_hdr": (0, "i", st.one_of(st.sampled_from([0, 347, 348, 540, -348]), INT32)),
    "dim0": (40, "h", st.one_of(st.integers(-2, 9), INT16)),
    "dim1": (42, "h", st.one_of(st.integers(-2, 70), INT16)),
    "dim2": (44, "h", st.one_of(st.integers(-2, 70), INT16)),
    "dim3": (46, "h", st.one_of(st.integers(-2, 70), INT16)),
    "dim4": (48, "h", st.one_of(st.integers(-2, 5), INT16)),
    "dim5": (50, "h", st.integers(-2, 3)),
    "datatype": (70, "h", st.one_of(st.sampled_from([0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 768, 1024, 1280, 1536, 1792, 2048, 2304]), INT16)),
    "bitpix": (72, "h", st.one_of(st.sampled_from([0, 1, 8, 16, 32, 64, 128]), INT16)),
    "pixdim0": (76, "f", FLOAT32),
    "pixdim1": (80, "f", FLOAT32),
    "pixdim3": (88, "f", FLOAT32),
    "vox_offset": (108, "f", st.one_of(st.sampled_from([0.0, 348.0, 352.0, 353.0, 1e9, -352.0]), FLOAT32)),
    "scl_slope": (112, "f", FLOAT32),
    "scl_inter": (116, "f", FLOAT32),
    "qform_code": (252, "h", st.one_of(st.integers(-1, 5), INT16)),
    "sform_code": (254, "h", st.one_of(st.integers(-1, 5), INT16)),
    "quatern_b": (256, "f", FLOAT32),
    "qoffset_x": (268, "f", FLOAT32),
    "srow_x0": (280, "f", FLOAT32),
    "srow_z3": (324, "f", FLOAT32),
}  # fmt: skip


def nifti_payload() -> bytes:
    volume = np.arange(60, dtype=np.int16).reshape(4, 5, 3)
    image = nib.Nifti1Image(volume, np.diag([2.0, 3.0, 4.0, 1.0]))
    image.header.set_qform(image.affine, code=1)
    image.header.set_sform(image.affine, code=2)
    return image.to_bytes()


@st.composite
def nifti_cases(draw: st.DrawFn) -> tuple[bytes, str]:
    payload = bytearray(nifti_payload())
    for name in draw(st.lists(st.sampled_from(sorted(NIFTI_FIELDS)), min_size=1, max_size=3, unique=True)):
        offset, code, values = NIFTI_FIELDS[name]
        struct.pack_into("<" + code, payload, offset, draw(values))
    cut = draw(st.one_of(st.none(), st.integers(0, len(payload))))
    data = bytes(payload if cut is None else payload[:cut])
    compressed = draw(st.booleans())
    return (gzip.compress(data) if compressed else data), ("case.nii.gz" if compressed else "case.nii")


@FAST
@given(case=nifti_cases())
def test_mutated_nifti_headers(case: tuple[bytes, str], capfd: pytest.CaptureFixture[str]) -> None:
    check_read(write_case(*case), capfd=capfd)


# -- NumPy .npy -----------------------------------------------------------------------------------------
NPY_DESCRS = ["<f4", ">f8", "|u1", "<i2", "<c8", "|O", "|V8", "<U3", "|b1", "<f16", "<M8[s]", "bogus", "", "<f2"]
NPY_SHAPES = st.one_of(
    st.lists(st.integers(-3, 12), min_size=0, max_size=5).map(tuple),
    st.sampled_from([(2**31, 2**31), (10**12,), (0, 4), (3, 4, 1), (1, 3, 4)]),
)


@st.composite
def npy_cases(draw: st.DrawFn) -> bytes:
    descr = draw(st.sampled_from(NPY_DESCRS))
    fortran = draw(st.sampled_from(["False", "True", "'yes'"]))
    shape = draw(NPY_SHAPES)
    header = "{'descr': '%s', 'fortran_order': %s, 'shape': %r, }" % (descr, fortran, shape)  # noqa: UP031 - the .npy text
    if draw(st.booleans()):
        header = header.replace("'shape'", "'shap'")
    text = header.encode("latin-1")
    text += b" " * ((64 - (10 + len(text) + 1) % 64) % 64) + b"\n"
    length = draw(st.one_of(st.just(len(text)), st.integers(0, 2**16 - 1)))
    version = draw(st.sampled_from([b"\x01\x00", b"\x02\x00", b"\x03\x00", b"\x09\x00"]))
    size_field = struct.pack("<H", length) if version == b"\x01\x00" else struct.pack("<I", length)
    body = draw(st.one_of(st.binary(min_size=0, max_size=200), st.just(_npy_body(descr, shape))))
    return b"\x93NUMPY" + version + size_field + text + body


def _npy_body(descr: str, shape: tuple[int, ...]) -> bytes:
    """As many bytes as the header promises (when it promises a small, countable amount)."""
    try:
        size = np.dtype(descr).itemsize * int(np.prod(shape, dtype=np.int64))
    except (TypeError, ValueError):
        return b""
    return bytes(range(256)) * (size // 256) + bytes(size % 256) if 0 <= size <= 10_000 else b""


@FAST
@given(payload=npy_cases())
def test_mutated_npy_headers(payload: bytes, capfd: pytest.CaptureFixture[str]) -> None:
    check_read(write_case(payload, "case.npy"), capfd=capfd)


# -- BART .hdr/.cfl -------------------------------------------------------------------------------------
BART_TOKENS = st.one_of(st.integers(-2, 9).map(str), st.sampled_from(["0", "1", "2**40", "99999999999", "x", "1.5", "-0", ""]))


@st.composite
def bart_cases(draw: st.DrawFn) -> tuple[str, int]:
    tokens = draw(st.lists(BART_TOKENS, min_size=0, max_size=18))
    lines = [draw(st.sampled_from(["# Dimensions", "#", "", "Dimensions"])), " ".join(tokens)]
    if draw(st.booleans()):
        lines += ["# Command", "phantom"]
    samples = draw(st.one_of(st.integers(0, 300), st.just(-1)))
    return "\n".join(lines) + "\n", samples


def check_bart(case: tuple[str, int], capfd: pytest.CaptureFixture[str]) -> None:
    """Write the header and a payload (of the drawn size, or of the size the dims promise) and read the pair."""
    text, samples = case
    header = write_case(text.encode("utf-8"), "case.hdr")
    dims = [int(t) for t in text.splitlines()[1].split() if t.lstrip("-").isdigit()] if len(text.splitlines()) > 1 else []
    promised = math.prod(d for d in dims if d > 0)
    count = samples if samples >= 0 else (promised if promised <= 100_000 else 0)
    payload = np.random.default_rng(0).standard_normal(2 * count).astype(np.float32).tobytes()
    header.with_suffix(".cfl").write_bytes(payload)
    check_read(header.with_suffix(".cfl"), read_kspace, named=header.parent, capfd=capfd)


@FAST
@given(case=bart_cases())
def test_mutated_bart_headers(case: tuple[str, int], capfd: pytest.CaptureFixture[str]) -> None:
    check_bart(case, capfd)


@pytest.mark.slow
def test_bart_headers_under_more_mutations(capfd: pytest.CaptureFixture[str]) -> None:
    @THOROUGH
    @given(case=bart_cases())
    def run(case: tuple[str, int]) -> None:
        check_bart(case, capfd)

    run()


# -- TIFF ----------------------------------------------------------------------------------------------
def tiff_payload() -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.arange(48, dtype=np.uint16).reshape(6, 8), resolution=(10.0, 10.0), resolutionunit="CENTIMETER")
    return buffer.getvalue()


@st.composite
def tiff_cases(draw: st.DrawFn) -> bytes:
    payload = bytearray(tiff_payload())
    offset = struct.unpack_from("<I", payload, 4)[0]
    count = struct.unpack_from("<H", payload, offset)[0]
    for _ in range(draw(st.integers(1, 3))):
        entry = offset + 2 + 12 * draw(st.integers(0, count - 1))
        part = draw(st.sampled_from(["type", "count", "value"]))
        if part == "type":
            struct.pack_into("<H", payload, entry + 2, draw(st.integers(0, 20)))
        elif part == "count":
            struct.pack_into("<I", payload, entry + 4, draw(st.one_of(st.integers(0, 8), st.integers(0, 2**32 - 1))))
        else:
            struct.pack_into("<I", payload, entry + 8, draw(st.one_of(st.integers(0, 70), st.integers(0, 2**32 - 1))))
    cut = draw(st.one_of(st.none(), st.integers(8, len(payload))))
    return bytes(payload if cut is None else payload[:cut])


@FAST
@given(payload=tiff_cases())
def test_mutated_tiff_tags(payload: bytes, capfd: pytest.CaptureFixture[str]) -> None:
    check_read(write_case(payload, "case.tif"), capfd=capfd)


def test_a_tiff_whose_tags_claim_billions_of_rows_is_refused_at_once(tmp_path: Path) -> None:
    """Found by the slow fuzz run: ImageLength 1 417 178 443 over 96 stored bytes had the decoder allocate 11 GB."""
    payload = bytearray(tiff_payload())
    offset = struct.unpack_from("<I", payload, 4)[0]
    entries = {struct.unpack_from("<H", payload, offset + 2 + 12 * i)[0]: offset + 2 + 12 * i for i in range(struct.unpack_from("<H", payload, offset)[0])}
    struct.pack_into("<I", payload, entries[257] + 8, 1417178443)  # ImageLength
    struct.pack_into("<I", payload, entries[258] + 8, 31)  # BitsPerSample: an offset outside the file ...
    struct.pack_into("<I", payload, entries[258] + 4, 806895527)  # ... for 806 M values: read as 1 bit
    path = write_case(bytes(payload), "case.tif")
    started = time.perf_counter()
    with pytest.raises(InputError, match="corrupt TIFF: page 0 claims 1417178443 × 8 pixels"):
        read_image(path)
    assert time.perf_counter() - started < 5


# -- PNG -----------------------------------------------------------------------------------------------
def png_chunks() -> list[tuple[bytes, bytes]]:
    buffer = io.BytesIO()
    PIL.Image.fromarray(np.arange(48, dtype=np.uint8).reshape(6, 8)).save(buffer, format="PNG", dpi=(100, 100))
    data, chunks, position = buffer.getvalue(), [], 8
    while position < len(data):
        length = struct.unpack_from(">I", data, position)[0]
        chunks.append((data[position + 4 : position + 8], data[position + 8 : position + 8 + length]))
        position += 12 + length
    return chunks


def png_bytes(chunks: list[tuple[bytes, bytes]]) -> bytes:
    parts = [b"\x89PNG\r\n\x1a\n"]
    for kind, body in chunks:
        parts.append(struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    return b"".join(parts)


@st.composite
def png_cases(draw: st.DrawFn) -> bytes:
    chunks = png_chunks()
    kind, header = chunks[0]
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(">IIBBBBB", header)
    field = draw(st.sampled_from(["width", "height", "depth", "colour", "compression", "filtering", "interlace", "idat", "phys"]))
    if field in ("width", "height"):
        value = draw(st.one_of(st.integers(0, 64), st.sampled_from([2**31 - 1, 2**32 - 1, 100000])))
        width, height = (value, height) if field == "width" else (width, value)
    elif field == "depth":
        depth = draw(st.sampled_from([0, 1, 2, 4, 8, 16, 3, 32]))
    elif field == "colour":
        colour = draw(st.sampled_from([0, 1, 2, 3, 4, 6, 7]))
    elif field == "compression":
        compression = draw(st.integers(0, 255))
    elif field == "filtering":
        filtering = draw(st.integers(0, 255))
    elif field == "interlace":
        interlace = draw(st.integers(0, 255))
    chunks[0] = (kind, struct.pack(">IIBBBBB", width, height, depth, colour, compression, filtering, interlace))
    for index, (name, body) in enumerate(chunks):
        if name == b"IDAT" and field == "idat":
            chunks[index] = (name, draw(st.binary(min_size=0, max_size=80)))
        if name == b"pHYs" and field == "phys":
            chunks[index] = (name, struct.pack(">IIB", draw(st.integers(0, 2**32 - 1)), draw(st.integers(0, 2**32 - 1)), draw(st.integers(0, 3))))
    return png_bytes(chunks)


@FAST
@given(payload=png_cases())
def test_mutated_png_headers(payload: bytes, capfd: pytest.CaptureFixture[str]) -> None:
    check_read(write_case(payload, "case.png"), capfd=capfd)


# -- NRRD and MetaImage (ITK) ---------------------------------------------------------------------------
@functools.cache
def itk_payload(suffix: str, compressed: bool) -> bytes:
    """A 5 × 4 × 3 int16 volume with an oblique geometry, written by ITK itself."""
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(np.arange(60, dtype=np.int16).reshape(3, 4, 5))
    image.SetSpacing((0.5, 1.0, 2.0))
    image.SetOrigin((1.0, -2.0, 3.0))
    image.SetDirection((0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0))
    path = Path(_CASES.name) / f"source{suffix}"
    sitk.WriteImage(image, str(path), compressed)
    payload = path.read_bytes()
    path.unlink()
    return payload


@st.composite
def itk_cases(draw: st.DrawFn) -> tuple[bytes, str]:
    """An ITK-written NRRD or MetaImage with 1–3 header values replaced (sizes, type, encoding, geometry...) and its
    data possibly cut short."""
    suffix = draw(st.sampled_from([".nrrd", ".mha"]))
    payload = itk_payload(suffix, draw(st.booleans()))
    marker = b"\n\n" if suffix == ".nrrd" else b"ElementDataFile = LOCAL\n"
    end = payload.index(marker) + len(marker)
    lines = payload[:end].split(b"\n")
    separator = b":" if suffix == ".nrrd" else b"="
    values = st.one_of(
        st.sampled_from([b"0", b"-1", b"1e30", b"nan", b"4294967296", b"100000 100000 100000", b"", b"(1,2,3) none", b"none",
                         b"raw", b"gzip", b"bzip2", b"ascii", b"MET_DOUBLE", b"uchar", b"True", b"False", b"LIST", b"1 2"]),
        st.binary(max_size=12).filter(lambda value: b"\n" not in value),
    )  # fmt: skip
    for _ in range(draw(st.integers(1, 3))):
        index = draw(st.integers(1, len(lines) - 2))
        key = lines[index].split(separator)[0]
        lines[index] = key + separator + b" " + draw(values)
    data = payload[end:]
    return b"\n".join(lines) + data[: draw(st.integers(0, len(data)))], f"case{suffix}"


@FAST
@given(case=itk_cases())
def test_mutated_nrrd_and_metaimage_headers(case: tuple[bytes, str], capfd: pytest.CaptureFixture[str]) -> None:
    check_read(write_case(*case), capfd=capfd)


# -- DICOM ---------------------------------------------------------------------------------------------
TRANSFER_SYNTAXES = [
    "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.1.99", "1.2.3.4", "",
]  # fmt: skip
DICOM_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "Rows": st.one_of(st.integers(0, 130), st.sampled_from([65535])),
    "Columns": st.one_of(st.integers(0, 130), st.sampled_from([65535])),
    "BitsAllocated": st.sampled_from([0, 1, 8, 12, 16, 24, 32, 64, 7]),
    "BitsStored": st.sampled_from([0, 1, 8, 12, 16, 17, 32]),
    "HighBit": st.sampled_from([0, 7, 11, 15, 16, 31]),
    "PixelRepresentation": st.sampled_from([0, 1, 2]),
    "SamplesPerPixel": st.sampled_from([0, 1, 2, 3, 4]),
    "NumberOfFrames": st.sampled_from(["0", "1", "2", "-1", "64", "abc", "1e9", ""]),
    "PixelSpacing": st.sampled_from([["0.5", "0.5"], ["0", "1"], ["-1", "2"], ["nan", "1"], ["inf", "1"], ["1"], ["a", "b"], ["1e308", "1e308"], []]),
    "PhotometricInterpretation": st.sampled_from(["MONOCHROME2", "MONOCHROME1", "RGB", "PALETTE COLOR", "YBR_FULL", "BOGUS", ""]),
    "RescaleSlope": st.sampled_from(["1", "0", "-2", "nan", "inf", "1e39", "x"]),
    "RescaleIntercept": st.sampled_from(["0", "-1024", "nan", "1e39", "x"]),
    "SliceThickness": st.sampled_from(["1", "0", "-5", "nan", "x"]),
    "ImageOrientationPatient": st.sampled_from([["1", "0", "0", "0", "1", "0"], ["0", "0", "0", "0", "0", "0"], ["1", "0", "0", "1", "0", "0"], ["nan"] * 6, ["1", "0"]]),
}  # fmt: skip


TEXT_ELEMENTS = {
    "NumberOfFrames": "1" * 12, "PixelSpacing": "\\".join(["1.0000000000000"] * 2), "RescaleSlope": "1.00000000000000",
    "RescaleIntercept": "0.00000000000000", "SliceThickness": "5.00000000000000", "ImageOrientationPatient": "\\".join(["1.000000"] * 6),
}  # fmt: skip
"""Text elements are written with a placeholder of this length, then its bytes replaced by the raw (often invalid) value."""


def dicom_dataset() -> pydicom.Dataset:
    return pydicom.dcmread(get_testdata_file("MR_small.dcm"))


@st.composite
def dicom_cases(draw: st.DrawFn) -> bytes:
    dataset = dicom_dataset()
    replacements = []
    for keyword in draw(st.lists(st.sampled_from(sorted(DICOM_VALUES)), min_size=1, max_size=3, unique=True)):
        value = draw(DICOM_VALUES[keyword])
        if keyword in TEXT_ELEMENTS:
            placeholder = TEXT_ELEMENTS[keyword]
            setattr(dataset, keyword, placeholder.split("\\") if "\\" in placeholder else placeholder)
            raw = (value if isinstance(value, str) else "\\".join(value)).encode("ascii")
            replacements.append((placeholder.encode("ascii"), raw[: len(placeholder)].ljust(len(placeholder), b" ")))
        else:
            setattr(dataset, keyword, value)
    if draw(st.booleans()):
        dataset.file_meta.TransferSyntaxUID = draw(st.sampled_from(TRANSFER_SYNTAXES))
    if draw(st.booleans()):
        dataset.PixelData = dataset.PixelData[: draw(st.integers(0, len(dataset.PixelData)))]
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            pydicom.dcmwrite(buffer, dataset, enforce_file_format=False)
        except Exception:  # noqa: BLE001 - pydicom could not even write this case; nothing to read
            return b""
    payload = buffer.getvalue()
    for placeholder, raw in replacements:
        payload = payload.replace(placeholder, raw, 1)
    return payload


@FAST
@given(payload=dicom_cases())
def test_mutated_dicom_elements(payload: bytes, capfd: pytest.CaptureFixture[str]) -> None:
    if payload:
        check_read(write_case(payload, "case.dcm"), capfd=capfd)


# -- more examples -------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize(
    ("strategy", "name", "reader"),
    [(nifti_cases(), None, read_image), (npy_cases(), "case.npy", read_image), (tiff_cases(), "case.tif", read_image),
     (png_cases(), "case.png", read_image), (dicom_cases(), "case.dcm", read_image), (itk_cases(), None, read_image)],
    ids=["nifti", "npy", "tiff", "png", "dicom", "nrrd-metaimage"],
)  # fmt: skip
def test_readers_under_more_mutations(
    strategy: st.SearchStrategy[Any], name: str | None, reader: Callable[[Path], Any], capfd: pytest.CaptureFixture[str]
) -> None:
    @THOROUGH
    @given(strategy)
    def run(case: Any) -> None:
        payload, file_name = case if name is None else (case, name)
        if payload:
            check_read(write_case(payload, file_name), reader, capfd=capfd)

    run()
