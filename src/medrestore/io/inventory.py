"""What a folder (or a glob, or a list of paths) holds as inputs for a batch run.

A batch command walks its inputs and treats as one input:

* every image file of a known format (:data:`~medrestore.io.detect.EXTENSIONS`, and
  gzip-compressed DICOM ``*.dcm.gz``; a header/data pair by its header, a ``.hdr`` when it is an Interfile or
  NIfTI/Analyze header with its data beside it) — or, for k-space commands, every raw file (twix
  ``.dat``, HDF5 ``.h5``/``.hdf5``/``.mrd``, BART ``.cfl`` with its ``.hdr``, ``.npy``, ``.npz``);
* every folder whose DICOM files form one series (several files with one
  ``SeriesInstanceUID``): it is read as one volume, as :func:`~medrestore.io.read_image` reads
  such a folder. DICOM files of a folder holding several series are inputs of their own when
  each series is one file; a folder holding several multi-file series is reported as a problem
  (one series per folder is what :func:`~medrestore.io.read_image` reads).

Hidden files and folders, JSON sidecars and anything else are left out (and counted). Each
input keeps its path relative to the root it was found under, so outputs can mirror the tree.
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import gzip
import os
from collections.abc import Sequence
from pathlib import Path

from medrestore.core.errors import InputError
from medrestore.io.detect import EXTENSIONS, detect_format, format_from_extension
from medrestore.io.dicom_payload import DICOM_MAGIC_OFFSET, dcmread, gunzip_head, has_dicom_preamble, is_gzip
from medrestore.io.itk import ITK_FORMATS, detached_data_file
from medrestore.io.neuro import data_companion, pair_data_files

KINDS = ("image", "kspace")
KSPACE_SUFFIXES = (".dat", ".h5", ".hdf5", ".mrd", ".cfl", ".npy", ".npz")
DICOM_SUFFIXES = tuple(extension for extension, format_name in EXTENSIONS.items() if format_name == "dicom")
_GLOB_MAGIC = ("*", "?", "[")


@dataclasses.dataclass(frozen=True)
class InputEntry:
    """One input of a batch run.

    Attributes:
        path: a file, or a folder holding one DICOM series.
        relative: where it lies under the root it was found in (the output tree mirrors it).
        problem: why it cannot be processed as found, or ``None``.
    """

    path: Path
    relative: Path
    problem: str | None = None


@dataclasses.dataclass(frozen=True)
class Inventory:
    """The inputs found, and how many files were left out as not inputs."""

    inputs: tuple[InputEntry, ...]
    ignored: int


def is_glob(text: str) -> bool:
    """Whether ``text`` is a pattern to expand (it has ``*?[`` and names no existing path)."""
    return any(magic in text for magic in _GLOB_MAGIC) and not Path(text).exists()


def _hidden(name: str) -> bool:
    return name.startswith(".")


def _is_dicom_candidate(path: Path) -> bool:
    """DICOM by extension, or — without a known extension (``IM0001``, UID-named ``1.2.840…``
    files) — a file with ``DICM`` at byte 128, plain or gzip-compressed."""
    extension = format_from_extension(path)
    if extension is not None:
        return extension == "dicom"
    if path.suffix.lower() == ".json":
        return False
    try:
        with open(path, "rb") as stream:
            head = stream.read(DICOM_MAGIC_OFFSET + 4)
    except OSError:
        return False
    return has_dicom_preamble(gunzip_head(path, DICOM_MAGIC_OFFSET + 4) if is_gzip(head) else head)


@functools.lru_cache(maxsize=1 << 16)
def _cached_series_uid(path: Path, size: int, modified: int) -> str | None:
    """:func:`_series_uid` of one state of a file (size and modification time are part of the key)."""
    try:
        with open(path, "rb") as probe:
            compressed = is_gzip(probe.read(2))
        opener = gzip.open if compressed else open
        with opener(path, "rb") as stream:
            dataset = dcmread(stream, stop_before_pixels=True, specific_tags=["SeriesInstanceUID"], force=True)
        value = dataset.get("SeriesInstanceUID")
        return None if value is None else str(value)
    except Exception:  # noqa: BLE001 - an unreadable header makes the file an input of its own (its read names the problem)
        return None


def _series_uid(path: Path) -> str | None:
    """``SeriesInstanceUID`` from the header only (``None`` when unreadable); each state of a file is read once."""
    try:
        status = path.stat()
    except OSError:
        return None
    return _cached_series_uid(path, status.st_size, status.st_mtime_ns)


def _one_series(files: Sequence[Path]) -> bool:
    """Whether the first, middle and last DICOM files agree on one series (a cheap test)."""
    picks = {files[0], files[len(files) // 2], files[-1]}
    uids = {_series_uid(path) for path in picks}
    return len(uids) == 1 and None not in uids


def is_series_folder(folder: Path) -> bool:
    """A folder read as one DICOM volume: no sub-folders, only DICOM files (and sidecars), one series."""
    entries = [entry for entry in folder.iterdir() if not _hidden(entry.name)]
    if any(entry.is_dir() for entry in entries):
        return False
    files = sorted(entry for entry in entries if entry.is_file() and entry.suffix.lower() != ".json")
    if not files or not all(_is_dicom_candidate(path) for path in files):
        return False
    return len(files) == 1 or _one_series(files)


def _dicom_entries(folder: Path, relative: Path, files: list[Path]) -> list[InputEntry]:
    """The inputs among a folder's DICOM files: the folder (one series), single files, or a problem."""
    if len(files) == 1:
        return [InputEntry(files[0], relative / files[0].name)]
    if _one_series(files):
        return [InputEntry(folder, relative)]
    groups: dict[str | None, list[Path]] = {}
    for path in files:
        groups.setdefault(_series_uid(path), []).append(path)
    entries = [InputEntry(paths[0], relative / paths[0].name) for uid, paths in groups.items() if len(paths) == 1 or uid is None]
    entries += [InputEntry(path, relative / path.name) for uid, paths in groups.items() if uid is None for path in paths[1:]]
    several = [uid for uid, paths in groups.items() if uid is not None and len(paths) > 1]
    if several:
        problem = f"folder holds {len(groups)} DICOM series, {len(several)} of them in several files; put each series in its own folder"
        entries.append(InputEntry(folder, relative, problem))
    return entries


def _wanted(path: Path, kind: str) -> bool:
    """Whether a non-DICOM file is an input of ``kind``: for images, a file of a known format, counting a header/data
    pair (``.hdr``/``.img``, ``.PAR``/``.REC``, ``.HEAD``/``.BRIK``) once, by its header (a ``.hdr`` by content)."""
    name = path.name.lower()
    if kind == "kspace":
        if name.endswith(".hdr"):
            return False
        return name.endswith(KSPACE_SUFFIXES)
    if name.endswith(".hdr"):
        try:
            return detect_format(path) in ("interfile", "nifti-pair")
        except InputError:
            return False
    return format_from_extension(path) not in (None, "dicom") and not data_companion(path)


def _walk(root: Path, kind: str, exclude: Path | None) -> tuple[list[InputEntry], int]:
    """Inputs under the folder ``root`` (sorted, depth first), and the number of files left out."""
    found: list[InputEntry] = []
    ignored = 0
    excluded = None if exclude is None else os.path.realpath(exclude)
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if not _hidden(d) and os.path.realpath(Path(folder, d)) != excluded)
        here = Path(folder)
        relative = here.relative_to(root) if here != root else Path(".")
        files = sorted(here / name for name in names if not _hidden(name))
        dicom = [path for path in files if kind == "image" and _is_dicom_candidate(path)]
        others = [path for path in files if path not in dicom]
        for path in others:
            if _wanted(path, kind):
                found.append(InputEntry(path, relative / path.name))
            else:
                ignored += 1
        if dicom:
            series_name = relative if relative != Path(".") else Path(root.name)
            for entry in _dicom_entries(here, series_name, dicom):
                shifted = entry.relative if entry.path == here else relative / entry.path.name
                found.append(dataclasses.replace(entry, relative=shifted))
    return found, ignored


def _glob_root(pattern: str) -> Path:
    """The folder above a pattern's first magic component."""
    parts = Path(pattern).parts
    fixed = [part for part in parts[: next(i for i, p in enumerate(parts) if any(m in p for m in _GLOB_MAGIC))]]
    return Path(*fixed) if fixed else Path(".")


def find_inputs(entries: Sequence[str | Path], kind: str = "image", exclude: str | Path | None = None) -> Inventory:
    """Inputs named by ``entries`` (files, folders, glob patterns), in order, without duplicates.

    Args:
        entries: what the user gave; a pattern is expanded (``**`` recursively).
        kind: ``"image"`` or ``"kspace"``.
        exclude: a folder never walked into (the run's output folder).

    Raises:
        InputError: an entry that is neither an existing path nor a pattern matching one.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    exclude_path = None if exclude is None else Path(exclude)
    inputs: list[InputEntry] = []
    ignored = 0
    for entry in map(str, entries):
        if is_glob(entry):
            matches = sorted(Path(match) for match in glob.glob(entry, recursive=True))
            if not matches:
                raise InputError(entry, "the pattern matches no file")
            root = _glob_root(entry)
            found, left = _collect(matches, kind, exclude_path, root)
        else:
            path = Path(entry)
            if not path.exists() and not (path.suffix == "" and path.with_suffix(".cfl").exists()):
                raise InputError(path, "no such file or folder")
            found, left = _collect([path], kind, exclude_path, None)
        inputs += found
        ignored += left
    unique = {entry.path: entry for entry in inputs}
    return Inventory(tuple(unique.values()), ignored)


def _data_halves(paths: Sequence[Path]) -> set[Path]:
    """The data files of the headers among ``paths`` (``.img`` of a ``.hdr``, ``.raw`` of a ``.mhd``...): a pattern
    matching both halves of a pair names one input, its header."""
    halves: set[Path] = set()
    for path in paths:
        if not path.is_file():
            continue
        halves.update(pair_data_files(path))
        extension = format_from_extension(path)
        if extension in ITK_FORMATS:
            try:
                data = detached_data_file(path, extension)
            except OSError:
                data = None
            if data is not None:
                halves.add(data)
    return halves


def _collect(paths: Sequence[Path], kind: str, exclude: Path | None, root: Path | None) -> tuple[list[InputEntry], int]:
    """Inputs from matched or given paths (``root``: the folder relative names start from; with a pattern, the data
    half of a pair whose header it also matched is left out)."""
    found: list[InputEntry] = []
    ignored = 0
    halves = _data_halves(paths) if root is not None and kind == "image" else set()
    for path in paths:
        if path in halves:
            ignored += 1
            continue
        base = Path(path.name) if root is None else path.relative_to(root) if path.is_relative_to(root) else Path(path.name)
        if path.is_dir():
            if kind == "image" and is_series_folder(path):
                found.append(InputEntry(path, base))
                continue
            walked, left = _walk(path, kind, exclude)
            prefix = base if root is not None else Path(".")
            found += [dataclasses.replace(e, relative=prefix / e.relative) for e in walked]
            ignored += left
        elif path.is_file() and not _hidden(path.name):
            if kind == "kspace" and path.name.lower().endswith(".hdr"):
                path = path.with_suffix(".cfl")
            found.append(InputEntry(path, base.with_name(path.name)))
        elif not path.exists() and path.with_suffix(".cfl").exists():
            found.append(InputEntry(path.with_suffix(".cfl"), base.with_suffix(".cfl")))
    return found, ignored
