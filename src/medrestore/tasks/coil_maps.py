"""Where a reconstruction's coil maps come from.

``recon --coil-maps`` takes ``espirit`` (ESPIRiT on each slice's calibration region), a maps
file (``.npy``/``.npz``/BART ``.cfl``, :func:`~medrestore.io.read_coil_maps`) or a body-coil
acquisition of the same slice, told apart from a maps file by what it holds:

* twix ``.dat``, ISMRMRD/fastMRI HDF5 and ``.npz`` k-space files (a ``kspace`` array) are
  acquisitions;
* a BART ``.cfl`` is a maps file when it has a ``MAPS`` dimension above 1 or as many coils as the
  k-space, else an acquisition (a body coil has fewer channels than the array);
* ``.npy`` is a maps file.

An acquisition gives body-coil referenced maps (:mod:`medrestore.physics.mri.body_coil`).
Maps are estimated from each slice's k-space after coil compression
(:mod:`medrestore.tasks.recon_slices`); maps read from a file are compressed with the same matrices.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from medrestore.core.errors import InputError
from medrestore.core.kspace import KSpace
from medrestore.io import read_coil_maps, read_kspace
from medrestore.io.kspace_api import kspace_format
from medrestore.io.raw_bart import COIL_DIMENSION, MAPS_DIMENSION, read_bart_array
from medrestore.physics.mri.body_coil import BodyCoilOptions, body_coil_maps
from medrestore.physics.mri.coil_compression import compress_maps
from medrestore.physics.mri.espirit import EspiritOptions, calibration_shape, espirit_map_sets, kernel_width_for
from medrestore.tasks.recon_slices import SliceData

MapSourceKind = Literal["espirit", "file", "body-coil"]


@dataclasses.dataclass(frozen=True)
class CoilMapPlan:
    """The coil maps of one reconstruction, resolved once before its slices.

    Attributes:
        kind: ``espirit``, ``file`` or ``body-coil``.
        espirit: ESPIRiT settings (``maps`` = number of map sets).
        maps: the file's maps ``(coils, *image)`` or ``(sets, coils, *image)`` (``file``).
        body: the body-coil acquisition (``body-coil``).
        body_coil: settings of body-coil referenced maps.
    """

    kind: MapSourceKind
    espirit: EspiritOptions
    maps: torch.Tensor | None = None
    body: KSpace | None = None
    body_coil: BodyCoilOptions = BodyCoilOptions()


def _is_acquisition(path: Path, kspace: KSpace) -> bool:
    """Whether ``path`` holds k-space (a body-coil scan) rather than coil maps (see the module notes)."""
    format_name = kspace_format(path)
    if format_name in ("twix", "fastmri", "ismrmrd"):
        return True
    if format_name == "npz":
        with np.load(path, allow_pickle=False) as archive:
            return "kspace" in archive.files and "coil_maps" not in archive.files
    if format_name == "bart":
        _, dims = read_bart_array(path)
        return dims[MAPS_DIMENSION] == 1 and dims[COIL_DIMENSION] != kspace.n_coils
    return False


def _read_body_coil(path: Path, kspace: KSpace) -> KSpace:
    """The body-coil acquisition, checked to share the array scan's grid, geometry and slices."""
    body = read_kspace(path)
    if not body.is_cartesian or body.image_shape != kspace.image_shape:
        raise InputError(path, f"a body-coil scan must be Cartesian on the array scan's grid {kspace.image_shape}, "
                               f"this one is {'non-Cartesian' if not body.is_cartesian else body.image_shape}")
    if tuple(body.data.shape[: body.coil_axis]) != tuple(kspace.data.shape[: kspace.coil_axis]):
        raise InputError(path, "the body-coil scan must hold the same slices as the array scan")
    if not np.allclose(body.affine, kspace.affine, atol=1e-3):
        raise InputError(path, "the body-coil scan's geometry (voxel size, position) differs from the array scan's")
    return body


def plan_coil_maps(source: str, kspace: KSpace, espirit: EspiritOptions) -> CoilMapPlan:
    """Resolve ``--coil-maps`` (``espirit``, a maps file or a body-coil scan) once for ``kspace``."""
    if source == "espirit":
        return CoilMapPlan("espirit", espirit)
    path = Path(source)
    if _is_acquisition(path, kspace):
        if espirit.maps > 1:
            raise InputError(path, "body-coil referenced maps are one set; leave --maps at 1")
        return CoilMapPlan("body-coil", espirit, body=_read_body_coil(path, kspace))
    return CoilMapPlan("file", espirit, maps=read_coil_maps(path, kspace, espirit.maps))


def _acquired_kernel(options: EspiritOptions, piece: SliceData) -> EspiritOptions:
    """ESPIRiT settings whose adaptive kernel width is the one the acquired coils give: compressing
    to fewer virtual coils leaves the calibration's information as it was, so it should not widen
    the kernel (a wider kernel than the acquired coils support changes the maps, not the data)."""
    if options.kernel_width is not None or piece.acquired_coils in (None, piece.kspace.shape[0]):
        return options
    region = calibration_shape(piece.mask, tuple(piece.kspace.shape[1:]), options.calibration_width)
    return dataclasses.replace(options, kernel_width=kernel_width_for(options, region, int(piece.acquired_coils)))


def slice_coil_maps(plan: CoilMapPlan, piece: SliceData, source: str | None) -> torch.Tensor:
    """Maps of one slice: ``(coils, *grid)``, or ``(sets, coils, *grid)`` for several ESPIRiT map sets."""
    if plan.kind == "file":
        assert plan.maps is not None
        maps = plan.maps if piece.readout_index is None else plan.maps[..., piece.readout_index]
        matrices = piece.matrices
        if matrices is None:
            return maps
        if matrices.ndim == 3 and piece.readout_index is not None:
            matrices = matrices[piece.readout_index]
        return compress_maps(maps, matrices, piece.kspace.ndim - 1)
    try:
        if plan.kind == "body-coil":
            assert piece.body is not None
            return body_coil_maps(piece.kspace, piece.body, piece.mask, piece.body_mask, plan.body_coil)
        maps, _ = espirit_map_sets(piece.kspace, piece.mask, _acquired_kernel(plan.espirit, piece))
    except ValueError as error:
        raise InputError(source, str(error)) from None
    return maps[0] if plan.espirit.maps == 1 else maps
