"""BART ``.cfl``/``.hdr`` pairs (Uecker et al., the Berkeley Advanced Reconstruction Toolbox).

``name.hdr`` is text: a comment line ``# Dimensions`` then the sizes of (up to 16) dimensions;
``name.cfl`` holds complex64 samples in column-major (Fortran) order, so a C-order array of
shape ``reversed(dims)`` has the same bytes. Either file of the pair (or the stem) may be given.

BART's dimensions (:data:`BART_DIMENSIONS`, ``misc/mri.h``) are ``READ, PHS1, PHS2, COIL, MAPS,
TE, COEFF, COEFF2, ITER, CSHIFT, TIME, TIME2, LEVEL, SLICE, AVG, BATCH``.

Cartesian k-space (:func:`read_bart_kspace` without a trajectory)
    The spatial dimensions are ``READ``/``PHS1``/``PHS2``: exactly two above 1 make a 2-D slice
    wherever the singleton sits (``[nx, ny, 1]``, ``[1, ny, nz]``, ``[nx, 1, nz]``), three a
    3-D volume. The grid keeps BART's order reversed, the first non-singleton BART dimension
    last: ``[nx, ny, 1, coils]`` → ``(coils, ny, nx)``, ``[1, ny, nz, coils]`` → ``(coils, nz, ny)``.
    Dimensions after ``COIL`` that :data:`BATCH_DIMENSIONS` names (``TE`` → contrast, ``TIME`` →
    repetition, ``TIME2``, ``SLICE`` → slice, ``AVG`` → average, ``BATCH``) become batch axes in
    reversed BART order, outermost first: ``[nx, ny, 1, coils, 1, echoes, …, slices]`` →
    ``(slices, echoes, coils, ny, nx)``; ``metadata["batch_axes"]`` names them. ``AVG`` is
    averaged (complex mean) only on request. ``MAPS``, ``COEFF``, ``COEFF2``, ``ITER``,
    ``CSHIFT`` and ``LEVEL`` above 1 are refused. ``metadata["bart_dims"]`` keeps the 16 sizes,
    so :func:`write_bart_kspace` writes the same dims back (e.g. after undersampling).

Non-Cartesian k-space (with ``trajectory``, another ``.cfl``/``.hdr`` pair)
    k-space ``[1, samples, spokes, coils]`` and trajectory ``[3, samples, spokes]`` (BART's
    ``traj``). BART's coordinates are cycles per field of view of the image BART reconstructs,
    which is exactly medrestore's grid unit: ``traj -x X -o OS`` gives ``OS·X`` samples per
    spoke, ``1/OS`` apart, covering ``[-X/2, X/2)`` (``-c``: a sample at the centre, otherwise
    half a sample off it). Coordinate 0 runs along ``READ`` (image dimension 0, our last axis),
    coordinate 1 along ``PHS1`` (our ``ky``), so our trajectory is ``(c1, c0)`` (``(c2, c1, c0)``
    when the third coordinate is used). The matrix is BART's own estimate (``estimate_im_dims``
    of ``nufft``/``pics``): ``2·⌊(2·max|c| + 1.5)/2⌋`` per coordinate. Gradient delays of BART
    data are reported in BART's axes (``metadata["delay_axes"] = "bart"``, see
    :mod:`medrestore.tasks.radial`). A header cannot tell radial k-space from a Cartesian
    ``[1, ny, nz, coils]`` slice: read without its trajectory, it is taken as the latter.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from medrestore.core.errors import InputError
from medrestore.core.files import atomic_path
from medrestore.core.image import affine_from_spacing
from medrestore.core.kspace import KSpace
from medrestore.io.common import library_errors
from medrestore.io.raw_common import build_kspace, build_non_cartesian_kspace, check_kspace_array

BART_DIMENSIONS = (
    "READ", "PHS1", "PHS2", "COIL", "MAPS", "TE", "COEFF", "COEFF2", "ITER", "CSHIFT", "TIME", "TIME2", "LEVEL", "SLICE",
    "AVG", "BATCH",
)
SPATIAL_DIMENSIONS = (0, 1, 2)
COIL_DIMENSION = 3
MAPS_DIMENSION = 4
AVERAGE_DIMENSION = 14
BATCH_DIMENSIONS = {5: "contrast", 10: "repetition", 11: "time2", 13: "slice", 14: "average", 15: "batch"}
"""BART dimensions kept as batch axes of k-space, and the name each gets in ``metadata["batch_axes"]``."""


def bart_stem(path: str | Path) -> Path:
    """``x`` for ``x``, ``x.cfl`` or ``x.hdr``."""
    path = Path(path)
    return path.with_suffix("") if path.suffix in (".cfl", ".hdr") else path


def read_bart_array(path: str | Path) -> tuple[np.ndarray, list[int]]:
    """A BART array as C-order complex64 of shape ``reversed(dims)`` and its 16 dims (padded with 1s)."""
    stem = bart_stem(path)
    header, payload = stem.with_suffix(".hdr"), stem.with_suffix(".cfl")
    for required in (header, payload):
        if not required.is_file():
            raise InputError(required, "file not found (BART data needs both .hdr and .cfl)")
    with library_errors(header, "read the BART header"):
        lines = [line for line in header.read_text().splitlines() if line.strip() and not line.startswith("#")]
        dims = [int(value) for value in lines[0].split()]
    if any(size < 1 for size in dims) or any(size > 1 for size in dims[len(BART_DIMENSIONS):]):
        raise InputError(header, f"BART dims {dims}: sizes must be at least 1, and at most 16 dimensions are used")
    dims = (dims + [1] * len(BART_DIMENSIONS))[: len(BART_DIMENSIONS)]
    count = math.prod(dims)
    if payload.stat().st_size != count * 8:
        raise InputError(payload, f"holds {payload.stat().st_size} bytes but the header's dims {dims} need {count * 8}")
    with library_errors(payload, "read the BART data"):
        return np.fromfile(payload, dtype=np.complex64).reshape(dims[::-1]), dims


def read_cfl(path: str | Path) -> np.ndarray:
    """A BART array as C-order complex64 of shape ``reversed(dims)`` with trailing 1s of BART dropped."""
    values, dims = read_bart_array(path)
    while len(dims) > 1 and dims[-1] == 1:
        dims.pop()
    return values.reshape(dims[::-1])


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


def _refuse_other_dimensions(header: Path, dims: Sequence[int], allowed: set[int]) -> None:
    """One clear error for the first dimension above 1 that is neither spatial, coil nor in ``allowed``."""
    for dimension, size in enumerate(dims):
        if size > 1 and dimension not in (*SPATIAL_DIMENSIONS, COIL_DIMENSION) and dimension not in allowed:
            kept = ", ".join(f"{BART_DIMENSIONS[d]} ({d})" for d in sorted(allowed)) or "none"
            raise InputError(header, f"BART dimension {dimension} ({BART_DIMENSIONS[dimension]}) has size {size}: "
                                     f"not a k-space axis medrestore reads (batch dimensions kept here: {kept})")


def cartesian_layout(header: str | Path, dims: Sequence[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(grid dims, batch dims)`` of Cartesian BART k-space, both in our (reversed BART) axis order.

    Raises:
        InputError: fewer than two spatial dimensions above 1, or a dimension above 1 that is not
            a batch dimension (:data:`BATCH_DIMENSIONS`).
    """
    header = Path(header)
    spatial = [dimension for dimension in SPATIAL_DIMENSIONS if dims[dimension] > 1]
    if len(spatial) < 2:
        raise InputError(header, f"BART dims {list(dims)}: {len(spatial)} of READ/PHS1/PHS2 exceed 1; "
                                 "k-space needs two (a 2-D slice) or three (a volume)")
    _refuse_other_dimensions(header, dims, set(BATCH_DIMENSIONS))
    batch = [dimension for dimension in sorted(BATCH_DIMENSIONS, reverse=True) if dims[dimension] > 1]
    return tuple(spatial[::-1]), tuple(batch)


def read_bart_kspace(path: str | Path, trajectory: str | Path | None = None, average: bool = False) -> KSpace:
    """BART k-space → :class:`KSpace` (see the module notes for the layouts).

    Args:
        path: the k-space ``.cfl``/``.hdr`` (or stem).
        trajectory: a BART trajectory ``[3, samples, spokes]`` for non-Cartesian k-space.
        average: average the ``AVG`` dimension (complex mean) instead of keeping it as a batch axis.
    """
    stem = bart_stem(path)
    values, dims = read_bart_array(stem)
    if trajectory is not None:
        return _read_non_cartesian(stem, values, dims, Path(trajectory))
    if average and dims[AVERAGE_DIMENSION] > 1:
        values = values.mean(axis=len(dims) - 1 - AVERAGE_DIMENSION, keepdims=True).astype(np.complex64)
        dims[AVERAGE_DIMENSION] = 1
    grid, batch = cartesian_layout(stem.with_suffix(".hdr"), dims)
    shape = [dims[dimension] for dimension in (*batch, COIL_DIMENSION, *grid)]
    metadata = {"format": "bart", "bart_dims": list(dims), "batch_axes": [BATCH_DIMENSIONS[d] for d in batch]}
    return build_kspace(stem.with_suffix(".cfl"), values.reshape(shape), (1.0,) * len(grid), metadata, None, len(grid))


def bart_image_shape(coordinates: np.ndarray) -> tuple[int, ...]:
    """BART's matrix estimate per coordinate of ``coordinates (..., ndim)``: ``2·⌊(2·max|c| + 1.5)/2⌋`` (1 if all zero)."""
    extent = np.abs(coordinates.reshape(-1, coordinates.shape[-1])).max(axis=0)
    return tuple(1 if value == 0 else 2 * int((2.0 * float(value) + 1.5) / 2.0) for value in extent)


def trajectory_from_bart(path: str | Path, coordinates: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """Our trajectory ``(spokes, samples, ndim)`` in grid-axis order and its matrix, from BART's ``(spokes, samples, 3)``.

    The coordinates are already grid units (see the module notes); only their order is reversed,
    and an all-zero third coordinate (a 2-D trajectory) is dropped.
    """
    if np.abs(coordinates.imag).max(initial=0.0) > 1e-6 * max(1.0, float(np.abs(coordinates.real).max(initial=0.0))):
        raise InputError(path, "a BART trajectory holds real coordinates; this one has imaginary parts")
    real = coordinates.real.astype(np.float32)
    if not np.isfinite(real).all():
        raise InputError(path, "the trajectory contains NaN or infinite coordinates")
    used = 3 if np.any(real[..., 2] != 0) else 2
    ordered = np.ascontiguousarray(real[..., :used][..., ::-1])
    return ordered, bart_image_shape(ordered)


def _read_non_cartesian(stem: Path, values: np.ndarray, dims: list[int], trajectory_path: Path) -> KSpace:
    """BART k-space ``[1, samples, spokes, coils]`` with its trajectory ``[3, samples, spokes]``."""
    header = stem.with_suffix(".hdr")
    coordinates, trajectory_dims = read_bart_array(trajectory_path)
    trajectory_header = bart_stem(trajectory_path).with_suffix(".hdr")
    if dims[0] != 1:
        raise InputError(header, f"non-Cartesian BART k-space has READ = 1 ([1, samples, spokes, coils]); dims are {dims}")
    _refuse_other_dimensions(header, dims, set())
    if trajectory_dims[0] != 3 or any(size > 1 for size in trajectory_dims[3:]):
        raise InputError(trajectory_header, f"a BART trajectory has dims [3, samples, spokes]; found {trajectory_dims}")
    if trajectory_dims[1:3] != dims[1:3]:
        raise InputError(trajectory_header, f"trajectory of {trajectory_dims[1]} samples × {trajectory_dims[2]} spokes does "
                                            f"not match the k-space's {dims[1]} × {dims[2]} ({stem.with_suffix('.cfl')})")
    trajectory, image_shape = trajectory_from_bart(trajectory_header, coordinates.reshape(dims[2], dims[1], 3))
    data = check_kspace_array(stem.with_suffix(".cfl"), values.reshape(dims[3], dims[2], dims[1]), 1)
    metadata = {"format": "bart", "source_path": str(stem.with_suffix(".cfl")), "bart_dims": list(dims),
                "trajectory_path": str(bart_stem(trajectory_path).with_suffix(".cfl")), "delay_axes": "bart"}
    return build_non_cartesian_kspace(stem.with_suffix(".cfl"), data, image_shape, trajectory,
                                      affine_from_spacing((1.0,) * len(image_shape)), metadata)


def _bart_dims_for(kspace: KSpace, stem: Path) -> list[int]:
    """The 16 BART dims to write ``kspace`` with: the dims it was read with when they still fit, else built."""
    shape = tuple(kspace.data.shape)
    recorded = kspace.metadata.get("bart_dims")
    if recorded is not None and len(recorded) == len(BART_DIMENSIONS):
        kept = tuple(int(size) for dimension, size in reversed(list(enumerate(recorded)))
                     if size > 1 or dimension == COIL_DIMENSION)
        if kept == shape:
            return [int(size) for size in recorded]
    dims = [1] * len(BART_DIMENSIONS)
    grid = shape[len(shape) - kspace.sample_ndim:]
    for dimension, size in zip((0, 1, 2), reversed(grid)):
        dims[dimension] = size
    dims[COIL_DIMENSION] = kspace.n_coils
    batch = shape[: len(shape) - kspace.sample_ndim - 1]
    names = list(kspace.metadata.get("batch_axes") or (["slice"] if len(batch) == 1 else []))
    by_name = {name: dimension for dimension, name in BATCH_DIMENSIONS.items()}
    if len(names) != len(batch) or any(name not in by_name for name in names):
        raise InputError(stem, f"k-space of shape {shape}: cannot tell which BART dimensions its batch axes {names or ''} are")
    for name, size in zip(names, batch):
        dims[by_name[name]] = size
    return dims


def write_bart_kspace(kspace: KSpace, path: str | Path) -> Path:
    """Write Cartesian k-space as BART; returns the stem.

    k-space read from BART is written with the dims it was read with (``metadata["bart_dims"]``),
    so a ``[1, ny, nz, coils]`` slice stays one. Other k-space ``(*batch, coils, *grid)`` is
    written as ``[nx, ny, nz, coils]`` with its batch axes in the BART dimensions that
    ``metadata["batch_axes"]`` names (:data:`BATCH_DIMENSIONS`; a single unnamed batch axis is ``SLICE``).
    """
    stem = bart_stem(path)
    if not kspace.is_cartesian:
        raise InputError(stem, "BART output holds Cartesian k-space; write non-Cartesian k-space as .npz or ISMRMRD .h5")
    dims = _bart_dims_for(kspace, stem)
    data = kspace.data.detach().cpu().numpy().reshape(dims[::-1])
    return write_cfl(data, stem)
