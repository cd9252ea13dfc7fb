"""The 2-D problems a Cartesian reconstruction solves: slices of a stack, or readout positions of a volume.

* 2-D k-space ``(*batch, coils, ky, kx)``: one problem per batch entry (slice, echo, ...).
* 3-D k-space ``(coils, kz, ky, kx)``: the readout ``kx`` is fully sampled, so an inverse FFT
  along it (``ifftc`` over the last axis — the orthonormal centred FFT factorises over axes)
  leaves hybrid data ``(coils, kz, ky, x)`` in which every readout position ``x`` is an
  independent 2-D problem in ``(kz, ky)``, with its own 2-D coil maps (BART's usual ``fft -i``
  along the readout, then ``ecalib`` and ``pics`` per position). The images ``(z, y)`` of all
  positions are stacked along the last axis into the volume ``(z, y, x)`` — the k-space's
  ``image_shape``, in the geometry of its affine.

Coil compression (:mod:`medrestore.physics.mri.coil_compression`) runs first, on the whole slice
or volume (the geometric kind compresses along the readout of the volume).
"""

from __future__ import annotations

import dataclasses

import torch

from medrestore.core.errors import InputError
from medrestore.core.fft import ifftc
from medrestore.core.kspace import KSpace
from medrestore.physics.mri.coil_compression import CoilCompression, compress_kspace, compression_matrices


@dataclasses.dataclass(frozen=True)
class SliceData:
    """One 2-D reconstruction problem.

    Attributes:
        kspace: complex ``(coils, *grid)`` (virtual coils after compression).
        mask: sampling mask broadcastable to the grid (all ones when fully sampled).
        body: body-coil k-space ``(body_coils, *grid)`` of the slice, if any.
        body_mask: its mask (``None``: fully sampled).
        matrices: the coil compression applied (maps read from a file get the same).
        readout_index: 3-D data: the readout position ``x`` of this problem (hybrid space).
        acquired_coils: the coils before compression (ESPIRiT fits its kernel to them).
    """

    kspace: torch.Tensor
    mask: torch.Tensor
    body: torch.Tensor | None = None
    body_mask: torch.Tensor | None = None
    matrices: torch.Tensor | None = None
    readout_index: int | None = None
    acquired_coils: int | None = None


def compress(
    kspace: torch.Tensor, mask: torch.Tensor | None, options: CoilCompression | None, source: str | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(virtual-coil k-space, matrices)`` of ``kspace (coils, *grid)``; ``(kspace, None)`` without
    compression or when it would not reduce the coils."""
    if options is None:
        return kspace, None
    try:
        matrices = compression_matrices(kspace, mask, options)
    except ValueError as error:
        raise InputError(source, str(error)) from None
    if matrices.shape[-2] >= kspace.shape[0]:
        return kspace, None
    return compress_kspace(kspace, matrices), matrices


def _full_mask(mask: torch.Tensor | None, samples_shape: tuple[int, ...]) -> torch.Tensor:
    """The mask with one axis per grid axis (size-1 axes kept), all ones when ``None``."""
    if mask is None:
        return torch.ones(samples_shape, dtype=torch.bool)
    return mask.reshape((1,) * (len(samples_shape) - mask.ndim) + tuple(mask.shape))


def _readout_slices(mask: torch.Tensor, source: str | None) -> torch.Tensor:
    """The ``(kz, ky)`` mask of every readout position of a volume (refused unless constant along ``kx``)."""
    if mask.shape[-1] != 1 and not bool((mask == mask[..., :1]).all()):
        raise InputError(source, "3-D k-space must be fully sampled along the readout (kx): undersample in ky and kz only")
    return mask[..., 0]


def slice_problems(
    kspace: KSpace, batch_index: tuple[int, ...], body: KSpace | None, compression: CoilCompression | None
) -> list[SliceData]:
    """The 2-D problems of one batch entry: one for a 2-D slice, one per readout position for a volume."""
    source = kspace.metadata.get("source_path")
    data, matrices = compress(kspace.data[batch_index], kspace.mask, compression, source)
    mask = _full_mask(kspace.mask, kspace.samples_shape)
    body_data = None if body is None else body.data[batch_index]
    body_mask = None if body is None or body.mask is None else _full_mask(body.mask, body.samples_shape)
    if len(kspace.image_shape) == 2:
        return [SliceData(data, mask, body_data, body_mask, matrices, None, kspace.n_coils)]
    plane_mask = _readout_slices(mask, source)
    body_plane_mask = None if body_mask is None else _readout_slices(body_mask, body.metadata.get("source_path"))
    hybrid = ifftc(data, 1)
    body_hybrid = None if body_data is None else ifftc(body_data, 1)
    return [
        SliceData(hybrid[..., x].contiguous(), plane_mask, None if body_hybrid is None else body_hybrid[..., x].contiguous(),
                  body_plane_mask, matrices, x, kspace.n_coils)
        for x in range(hybrid.shape[-1])
    ]


def assemble(images: list[torch.Tensor], volume: bool) -> torch.Tensor:
    """The image of one batch entry from its problems' images: the slice, or the volume ``(z, y, x)`` (``volume``)."""
    return torch.stack(images, -1) if volume else images[0]
