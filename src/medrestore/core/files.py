"""Safe output: atomic writes, stale partial files cleaned up, and outputs that never land on inputs.

* :func:`atomic_path` writes to a temporary file in the destination folder, then renames it,
  so a reader never sees a half-written output and an interrupted write leaves the previous
  file (if any) untouched. Temporary names carry the host and process id
  (``.NAME.partial-HOST-PID-XXXX``), so a later write of the same output removes what a
  killed process left behind (:func:`remove_stale_partials`).
* :func:`guard_output` refuses, before any work, an output that resolves to one of the
  command's inputs (through symlinks, hard links, relative paths, BART ``.cfl``/``.hdr``
  pairs, sidecars, or a DICOM folder holding or being the output), and an output folder that
  cannot be written.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import pickle
import shutil
import socket
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from medrestore.core.errors import InputError

PARTIAL_MARK = ".partial-"
STALE_FOREIGN_SECONDS = 24 * 3600
"""A partial file of another host is removed once it is this old (its process cannot be asked)."""
BART_SUFFIXES = (".cfl", ".hdr")


def _host_tag() -> str:
    """This host's name, reduced to characters safe in a file name."""
    return "".join(c for c in socket.gethostname() if c.isalnum())[:32] or "host"


def partial_name(destination: str | Path) -> str:
    """Prefix of a temporary name beside ``destination``: ``.NAME.partial-HOST-PID-``."""
    return f".{Path(destination).name}{PARTIAL_MARK}{_host_tag()}-{os.getpid()}-"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_stale(entry: Path, prefix: str) -> bool:
    """Whether a partial file left beside a destination belongs to no running writer."""
    host, _, rest = entry.name[len(prefix) :].partition("-")
    pid_text = rest.partition("-")[0]
    if host != _host_tag() or not pid_text.isdigit():
        try:
            return time.time() - entry.lstat().st_mtime > STALE_FOREIGN_SECONDS
        except OSError:
            return False
    pid = int(pid_text)
    return pid != os.getpid() and not _process_alive(pid)


def remove_stale_partials(destination: str | Path) -> list[Path]:
    """Remove the temporary files (or folders) an interrupted write of ``destination`` left; return them."""
    destination = Path(destination)
    prefix = f".{destination.name}{PARTIAL_MARK}"
    removed = []
    try:
        entries = [entry for entry in destination.parent.iterdir() if entry.name.startswith(prefix)]
    except OSError:
        return removed
    for entry in entries:
        if not _is_stale(entry, prefix):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


@contextlib.contextmanager
def atomic_path(destination: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``destination``; rename it onto ``destination`` on success.

    ``suffix`` defaults to the destination's full suffix (``.nii.gz`` stays ``.nii.gz``) so that
    libraries choosing a format by extension still do the right thing.
    On an exception the temporary file is removed and ``destination`` is left as it was; what a
    killed process left is removed by the next write of the same destination.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(destination)
    if suffix is None:
        suffix = "".join(destination.suffixes) or ".tmp"
    handle, name = tempfile.mkstemp(prefix=partial_name(destination), suffix=suffix, dir=destination.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        if temporary.exists():
            # mkstemp creates owner-only files; give the output the permissions a plain open() would.
            os.chmod(temporary, 0o666 & ~_current_umask())
        os.replace(temporary, destination)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def sidecar_path(output: str | Path) -> Path:
    """The JSON record written beside an output: ``OUT.json`` (``brain.nii.gz`` → ``brain.nii.gz.json``)."""
    return Path(f"{output}.json")


def strict_json(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, ±Inf) replaced by ``None``: JSON has no such numbers (RFC 8259),
    and Python's ``Infinity``/``NaN`` break strict readers (a browser's ``JSON.parse``, ``jq``)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {key: strict_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [strict_json(item) for item in value]
    return value


def write_record(output: str | Path, record: Mapping[str, Any]) -> Path:
    """Write ``record`` as indented JSON to :func:`sidecar_path` of ``output``, atomically (non-finite numbers as
    ``null``, :func:`strict_json`); returns that path."""
    return atomic_write_text(sidecar_path(output), json.dumps(strict_json(record), indent=2, allow_nan=False) + "\n")


def _footprint(path: Path) -> list[Path]:
    """The files a path names: ``x.cfl``, ``x.hdr`` or the bare stem ``x`` of a BART pair name both files."""
    if path.suffix.lower() in BART_SUFFIXES:
        stem = path.with_suffix("")
        return [stem.with_suffix(".cfl"), stem.with_suffix(".hdr")]
    if not path.exists() and Path(f"{path}.cfl").exists():
        return [Path(f"{path}.cfl"), Path(f"{path}.hdr")]
    return [path]


def _real(path: Path) -> Path:
    return Path(os.path.realpath(os.path.abspath(path)))


def _same(first: Path, second: Path) -> bool:
    """Same file by resolved path, or by inode when both exist (hard links)."""
    if _real(first) == _real(second):
        return True
    try:
        return first.exists() and second.exists() and os.path.samefile(first, second)
    except OSError:
        return False


def _within(path: Path, folder: Path) -> bool:
    return _real(folder) in _real(path).parents


def _clash(target: Path, source: Path) -> str | None:
    """Why writing ``target`` would touch the input ``source`` (``None`` when it would not)."""
    if _same(target, source):
        return f"would overwrite the input {source}"
    if source.is_dir() and _within(target, source):
        return f"would be written inside the input folder {source}"
    if _within(source, target):
        return f"would replace a folder holding the input {source}"
    return None


def _check_writable(output: Path) -> None:
    """The nearest existing folder above ``output`` must be a writable folder."""
    folder = output.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise InputError(output, f"cannot create the output: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(output, f"cannot write the output: the folder {folder} is not writable")


def guard_output(
    output: str | Path, inputs: Iterable[str | Path | None], sidecar: bool = False, extra: Sequence[str | Path] = ()
) -> None:
    """Refuse, before any work, an output that would overwrite or change one of the ``inputs``.

    Args:
        output: the output path a command was given (file, BART stem or DICOM folder).
        inputs: every file or folder the command reads (``None`` entries and names that are
            not paths, e.g. zoo model names, are ignored).
        sidecar: the command also writes ``OUT.json`` beside the output.
        extra: further paths the command writes.

    Raises:
        InputError: an output path resolves to an input (the message names both), lies inside
            an input folder, or is a folder holding an input; or its folder is not writable.
    """
    output = Path(output)
    targets = [*_footprint(output), *(Path(path) for path in extra)]
    if sidecar:
        targets.append(sidecar_path(output))
    sources = [path for entry in inputs if entry is not None for path in _footprint(Path(entry)) if path.exists()]
    for target in targets:
        for source in sources:
            reason = _clash(target, source)
            if reason is not None:
                raise InputError(output, f"refusing to write {target}: it {reason}; choose another output path")
    _check_writable(output)


def _current_umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(destination: str | Path, payload: bytes) -> Path:
    """Write ``payload`` to ``destination`` atomically and return the destination path."""
    with atomic_path(destination) as temporary:
        temporary.write_bytes(payload)
    return Path(destination)


def atomic_write_text(destination: str | Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``destination`` atomically and return the destination path."""
    return atomic_write_bytes(destination, text.encode("utf-8"))


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks (bounded memory)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def load_torch_file(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` with errors that name the file.

    ``weights_only`` refuses pickled code, so a checkpoint from elsewhere cannot run anything.
    Whatever torch's legacy reader raises on bytes that are no checkpoint (``KeyError``,
    ``IndexError``, ... for a text file) becomes the same :class:`InputError`.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, OSError, ValueError, KeyError, IndexError, TypeError, AttributeError) as error:
        first_line = str(error).splitlines()[0] if str(error) else ""
        raise InputError(path, f"cannot read the file as a torch checkpoint ({type(error).__name__}: {first_line})") from None


def expand_files(entries: Sequence[str | Path], what: str) -> list[Path]:
    """Files named by ``entries``: a file stays, a folder gives its files (sorted, no hidden ones).

    Args:
        entries: file and folder paths.
        what: what the entries are, for the error message (e.g. ``"a slice source of data.mri"``).

    Raises:
        InputError: an entry that is neither a file nor a folder.
    """
    paths: list[Path] = []
    for entry in entries:
        path = Path(entry)
        if path.is_dir():
            paths += sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        elif path.is_file():
            paths.append(path)
        else:
            raise InputError(path, f"no such file or folder ({what})")
    return paths
