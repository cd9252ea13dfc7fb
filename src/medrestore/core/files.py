"""Atomic output: write to a temporary file in the destination folder, then rename.

A reader never sees a half-written output, and an interrupted write leaves the
previous file (if any) untouched.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from medrestore.core.errors import InputError


@contextlib.contextmanager
def atomic_path(destination: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``destination``; rename it onto ``destination`` on success.

    ``suffix`` defaults to the destination's full suffix (``.nii.gz`` stays ``.nii.gz``) so that
    libraries choosing a format by extension still do the right thing.
    On an exception the temporary file is removed and ``destination`` is left as it was.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    if suffix is None:
        suffix = "".join(destination.suffixes) or ".tmp"
    handle, name = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=suffix, dir=destination.parent)
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
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, OSError, ValueError) as error:
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
