"""BART ``.cfl``/``.hdr`` pairs (Uecker et al., the Berkeley Advanced Reconstruction Toolbox).

``name.hdr`` is text: a comment line ``# Dimensions`` then the sizes of (up to 16) dimensions;
``name.cfl`` holds complex64 samples in column-major (Fortran) order. BART's dimensions are
``READ (kx), PHS1 (ky), PHS2 (kz), COIL, MAPS, TE, ...``, so a C-order array of shape
``reversed(dims)`` has the same bytes: k-space ``(coils, ny, nx)`` is BART ``[nx, ny, 1, coils]``.
Either file of the pair (or the stem) may be given.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medrestore.core.errors import InputError
from medrestore.core.files import atomic_path
from medrestore.core.kspace import KSpace
from medrestore.io.common import library_errors
from medrestore.io.raw_common import build_kspace


def bart_stem(path: str | Path) -> Path:
    """``x`` for ``x``, ``x.cfl`` or ``x.hdr``."""
    path = Path(path)
    return path.with_suffix("") if path.suffix in (".cfl", ".hdr") else path


def read_cfl(path: str | Path) -> np.ndarray:
    """A BART array as C-order complex64 of shape ``reversed(dims)`` with trailing 1s of BART dropped."""
    stem = bart_stem(path)
    header, payload = stem.with_suffix(".hdr"), stem.with_suffix(".cfl")
    for required in (header, payload):
        if not required.is_file():
            raise InputError(required, "file not found (BART data needs both .hdr and .cfl)")
    with library_errors(header, "read the BART header"):
        lines = [line for line in header.read_text().splitlines() if line.strip() and not line.startswith("#")]
        dims = [int(value) for value in lines[0].split()]
    count = int(np.prod(dims))
    if payload.stat().st_size != count * 8:
        raise InputError(payload, f"holds {payload.stat().st_size} bytes but the header's dims {dims} need {count * 8}")
    while len(dims) > 1 and dims[-1] == 1:
        dims.pop()
    with library_errors(payload, "read the BART data"):
        return np.fromfile(payload, dtype=np.complex64).reshape(dims[::-1])


def write_cfl(array: np.ndarray, path: str | Path) -> Path:
    """Write a C-order array as BART dims ``reversed(shape)``; returns the stem. Both files atomic."""
    stem = bart_stem(path)
    values = np.ascontiguousarray(array, dtype=np.complex64)
    dims = list(values.shape[::-1]) + [1] * max(0, 16 - values.ndim)
    with atomic_path(stem.with_suffix(".cfl")) as temporary:
        values.tofile(temporary)
    with atomic_path(stem.with_suffix(".hdr")) as temporary:
        temporary.write_text("# Dimensions\n" + " ".join(str(n) for n in dims) + "\n")
    return stem


def read_bart_kspace(path: str | Path) -> KSpace:
    """BART k-space ``[nx, ny, nz, coils]`` → :class:`KSpace` ``(coils, ny, nx)`` (or ``(coils, nz, ny, nx)``)."""
    stem = bart_stem(path)
    values = read_cfl(stem)
    if values.ndim > 4:
        raise InputError(stem.with_suffix(".hdr"), f"BART array of dims {values.shape[::-1]}: only [x, y, z, coils] k-space is read")
    values = values.reshape((1,) * (4 - values.ndim) + values.shape)  # (coils, nz, ny, nx)
    grid_ndim = 3 if values.shape[1] > 1 else 2
    data = values if grid_ndim == 3 else values[:, 0]
    spacing = (1.0,) * grid_ndim
    return build_kspace(stem.with_suffix(".cfl"), data, spacing, {"format": "bart"}, None, grid_ndim)


def write_bart_kspace(kspace: KSpace, path: str | Path) -> Path:
    """Write Cartesian ``(coils, *grid)`` k-space as BART ``[nx, ny, nz, coils]``; returns the stem."""
    stem = bart_stem(path)
    if not kspace.is_cartesian or kspace.data.ndim != kspace.sample_ndim + 1:
        raise InputError(stem, "BART output holds one Cartesian k-space (coils, *grid) without batch axes")
    data = kspace.data.detach().cpu().numpy()
    if kspace.sample_ndim == 2:
        data = data[:, None]
    return write_cfl(data, stem)
