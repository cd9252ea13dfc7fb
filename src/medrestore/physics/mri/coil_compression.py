"""Coil compression: many receive channels → a few virtual coils that keep the signal.

Reconstruction cost grows with the number of coils (ESPIRiT's per-pixel eigen-decompositions
with its square or cube, every SENSE/CS iteration linearly), while the signal of a 16–32-channel
array lives in far fewer dimensions. Two linear compressions, both computed from the fully
sampled calibration region (as BART's ``cc`` does, ``-r 24`` by default):

* ``svd`` — one ``virtual × coils`` matrix for the whole data set (Buehrer et al., MRM 57(6),
  2007; Huang et al., MRI 26(1), 2008): the top eigenvectors ``v_m`` of the calibration data's
  coil covariance ``Σ y yᴴ``; virtual coil ``m`` is ``Σ_c conj(v_mc) y_c`` (BART ``cc -S``).
* ``geometric`` — one matrix per readout position (Zhang et al., "Coil compression for
  accelerated imaging with Cartesian sampling", MRM 69(2), 2013; BART ``cc -G``): the
  calibration region is zero-padded along the fully sampled readout and inverse-transformed
  there, the compression of each readout position ``x`` is the SVD one of its hybrid-space data,
  and consecutive matrices are aligned (``A_x ← P_x A_x`` with ``P_x`` the unitary closest to
  ``A_{x−1} A_xᴴ``, from the first position on) so that the virtual coils vary smoothly along
  ``x``; the data are compressed in hybrid space and transformed back. It keeps more signal per
  virtual coil when the coil profiles change along the readout, and needs every acquired line to
  be complete along the readout (the sampling mask constant along it).

The number of virtual coils is given, or the fewest whose eigenvalues hold a fraction
``energy`` of the calibration data's energy (of the global covariance, for both kinds).

Shapes: k-space ``(coils, *grid)`` with the readout as the last grid axis (``kx``, the layout of
:class:`~medrestore.core.kspace.KSpace`); a matrix is ``(virtual, coils)`` (``svd``) or
``(readout, virtual, coils)`` (``geometric``).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch

from medrestore.core.fft import fftc, ifftc
from medrestore.physics.mri.espirit import calibration_region

CompressionKind = Literal["auto", "svd", "geometric"]
COMPRESSION_KINDS = ("auto", "svd", "geometric")


@dataclasses.dataclass(frozen=True)
class CoilCompression:
    """How to compress coils.

    Attributes:
        kind: ``"svd"``, ``"geometric"`` (see the module notes) or ``"auto"``: geometric when every
            acquired line is complete along the readout, else svd.
        virtual_coils: number of virtual coils (``None``: chosen by ``energy``).
        energy: fraction of the calibration energy the virtual coils keep (used when
            ``virtual_coils`` is ``None``).
        calibration_width: side of the central calibration region (BART ``cc -r``).
    """

    kind: CompressionKind = "svd"
    virtual_coils: int | None = None
    energy: float = 0.99
    calibration_width: int = 24

    def __post_init__(self) -> None:
        if self.kind not in COMPRESSION_KINDS:
            raise ValueError(f"unknown coil compression {self.kind!r}; expected one of {', '.join(COMPRESSION_KINDS)}")
        if self.virtual_coils is not None and self.virtual_coils < 1:
            raise ValueError(f"coil compression needs at least one virtual coil, got {self.virtual_coils}")
        if not 0 < self.energy <= 1:
            raise ValueError(f"the energy kept by coil compression must lie in (0, 1], got {self.energy}")


def _calibration(kspace: torch.Tensor, mask: torch.Tensor | None, width: int) -> torch.Tensor:
    """The fully sampled central block ``(coils, *calibration)`` in complex128."""
    region = calibration_region(mask, tuple(kspace.shape[1:]), width)
    if any(part.stop <= part.start for part in region):
        raise ValueError("coil compression needs a fully sampled k-space centre")
    return kspace[(slice(None), *region)].to(torch.complex128)


def _principal_vectors(samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigen-decomposition of ``Σ y yᴴ`` over ``samples (..., coils, n)``: values ``(..., coils)`` descending, vectors as rows ``(..., coils, coils)``."""
    values, vectors = torch.linalg.eigh(samples @ samples.conj().transpose(-1, -2))
    return values.flip(-1), vectors.flip(-1).transpose(-1, -2)


def virtual_coil_count(kspace: torch.Tensor, mask: torch.Tensor | None, options: CoilCompression) -> int:
    """``options.virtual_coils`` (at most the coil count), or the fewest virtual coils holding ``options.energy``."""
    coils = int(kspace.shape[0])
    if options.virtual_coils is not None:
        return min(options.virtual_coils, coils)
    calibration = _calibration(kspace, mask, options.calibration_width).reshape(coils, -1)
    values, _ = _principal_vectors(calibration)
    fractions = torch.cumsum(values.clamp_min(0), 0) / values.clamp_min(0).sum().clamp_min(1e-300)
    return min(int((fractions < options.energy - 1e-12).sum()) + 1, coils)


def svd_compression_matrix(kspace: torch.Tensor, mask: torch.Tensor | None, virtual: int, width: int = 24) -> torch.Tensor:
    """``(virtual, coils)`` complex64: rows ``conj(v_m)`` for the top eigenvectors of the calibration covariance."""
    calibration = _calibration(kspace, mask, width).reshape(kspace.shape[0], -1)
    _, vectors = _principal_vectors(calibration)
    return vectors[:virtual].conj().to(torch.complex64)


def _align(matrices: torch.Tensor) -> torch.Tensor:
    """Align per-readout matrices ``(readout, virtual, coils)`` from the first on: ``A_x ← P_x A_x``, ``P_x = polar(A_{x−1} A_xᴴ)``."""
    aligned = [matrices[0]]
    for matrix in matrices[1:]:
        left, _, right = torch.linalg.svd(aligned[-1] @ matrix.conj().T)
        aligned.append((left @ right) @ matrix)
    return torch.stack(aligned)


def geometric_compression_matrices(
    kspace: torch.Tensor, mask: torch.Tensor | None, virtual: int, width: int = 24
) -> torch.Tensor:
    """``(readout, virtual, coils)`` complex64: the aligned per-readout-position compressions (BART ``cc -G``)."""
    calibration = _calibration(kspace, mask, width)
    readout = int(kspace.shape[-1])
    padded = torch.zeros((*calibration.shape[:-1], readout), dtype=calibration.dtype)
    start = readout // 2 - calibration.shape[-1] // 2
    padded[..., start : start + calibration.shape[-1]] = calibration
    hybrid = ifftc(padded, 1)  # (coils, *calibration, readout)
    samples = hybrid.movedim(-1, 0).reshape(readout, kspace.shape[0], -1)
    _, vectors = _principal_vectors(samples)
    return _align(vectors[:, :virtual].conj()).to(torch.complex64)


def compression_matrices(kspace: torch.Tensor, mask: torch.Tensor | None, options: CoilCompression) -> torch.Tensor:
    """The compression of ``kspace (coils, *grid)``: ``(virtual, coils)`` or ``(readout, virtual, coils)``.

    Raises:
        ValueError: no fully sampled centre, or ``geometric`` with a mask that varies along the readout.
    """
    virtual = virtual_coil_count(kspace, mask, options)
    complete_lines = mask is None or mask.shape[-1] == 1 or bool((mask == mask[..., :1]).all())
    if options.kind == "svd" or (options.kind == "auto" and not complete_lines):
        return svd_compression_matrix(kspace, mask, virtual, options.calibration_width)
    if not complete_lines:
        raise ValueError("geometric coil compression needs lines complete along the readout (a mask constant along kx); "
                         "use svd compression for this sampling pattern")
    return geometric_compression_matrices(kspace, mask, virtual, options.calibration_width)


def compress_kspace(kspace: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
    """Virtual-coil k-space ``(virtual, *grid)`` from ``kspace (coils, *grid)`` (zeros stay zeros along unsampled lines).

    ``svd``: ``y'_m = Σ_c A_mc y_c``. ``geometric``: the same per readout position ``x`` in hybrid
    space, ``y' = F_x (A_x F_xᴴ y)``.
    """
    if matrices.ndim == 2:
        return torch.einsum("vc,c...->v...", matrices.to(kspace.device), kspace)
    hybrid = ifftc(kspace, 1)
    compressed = torch.einsum("xvc,c...x->v...x", matrices.to(kspace.device), hybrid)
    return fftc(compressed, 1)


def compress_maps(coil_maps: torch.Tensor, matrices: torch.Tensor, grid_ndim: int) -> torch.Tensor:
    """Maps of the physical coils ``(*sets, coils, *grid)`` → maps of the virtual coils ``(*sets, virtual, *grid)``.

    The compression acts on coil images as on k-space (it is linear and, for ``geometric``, local
    in the readout position ``x``, the last image axis): ``S'_v(r) = Σ_c A_vc(x) S_c(r)``.
    """
    coil_axis = -grid_ndim - 1
    moved = coil_maps.movedim(coil_axis, -1).unsqueeze(-1)  # (*sets, *grid, coils, 1)
    # (virtual, coils) or (x, virtual, coils) broadcast against (..., x, coils, 1).
    compressed = (matrices.to(coil_maps.device, coil_maps.dtype) @ moved).squeeze(-1)
    return compressed.movedim(-1, coil_axis).contiguous()
