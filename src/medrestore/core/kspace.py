"""The :class:`KSpace` data type: complex multi-coil samples with their sampling pattern.

Conventions
-----------
``data`` is ``torch.complex64`` of shape ``(*batch, coils, *samples)``:

* Cartesian: ``samples = (ky, kx)`` or ``(kz, ky, kx)`` — the full grid, with unsampled
  locations set to zero and ``mask`` (bool, broadcastable to ``samples``) saying which were
  acquired. ``kx`` is the readout.
* Non-Cartesian (radial, ...): ``samples = (spokes, readout)`` (or any flattening), with
  ``trajectory`` of shape ``(*samples, ndim)`` in cycles per field of view, i.e. in
  ``[-N/2, N/2)`` grid units for a matrix of size ``N``.

``image_shape`` is the reconstruction matrix, ``affine`` the image geometry (same convention as
:class:`~medrestore.core.image.Image`), so a reconstruction keeps its geometry.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from medrestore.core.errors import InputError
from medrestore.core.image import Image, affine_from_spacing


@dataclasses.dataclass(frozen=True, eq=False)
class KSpace:
    """Complex k-space with a coil axis, a sampling mask or a trajectory, and image geometry.

    Attributes:
        data: complex64, ``(*batch, coils, *samples)``.
        image_shape: reconstruction matrix, e.g. ``(ny, nx)``.
        mask: bool tensor broadcastable to ``samples`` (Cartesian) or ``None``.
        trajectory: float32 ``(*samples, ndim)`` in grid units (non-Cartesian) or ``None``.
        affine: 4×4 voxel→world matrix of the reconstructed image.
        metadata: read-only header information (vendor, TE/TR, field strength, source file...).
    """

    data: torch.Tensor
    image_shape: tuple[int, ...]
    mask: torch.Tensor | None = None
    trajectory: torch.Tensor | None = None
    affine: np.ndarray = dataclasses.field(default_factory=lambda: np.eye(4))
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        data = self.data if isinstance(self.data, torch.Tensor) else torch.as_tensor(np.asarray(self.data))
        if not data.is_complex():
            raise InputError(None, "KSpace data must be complex")
        object.__setattr__(self, "data", data.to(torch.complex64))
        object.__setattr__(self, "image_shape", tuple(int(n) for n in self.image_shape))
        if self.mask is not None and self.trajectory is not None:
            raise InputError(None, "KSpace takes either a Cartesian mask or a trajectory, not both")
        n_sample_axes = self.sample_ndim
        if data.ndim < n_sample_axes + 1:
            raise InputError(None, f"KSpace data of shape {tuple(data.shape)} has no coil axis")
        if self.mask is not None:
            mask = torch.as_tensor(self.mask).to(torch.bool)
            try:
                torch.broadcast_shapes(mask.shape, self.samples_shape)
            except RuntimeError as error:
                raise InputError(None, f"mask of shape {tuple(mask.shape)} does not fit samples {self.samples_shape}") from error
            object.__setattr__(self, "mask", mask)
        if self.trajectory is not None:
            trajectory = torch.as_tensor(self.trajectory).to(torch.float32)
            if tuple(trajectory.shape[:-1]) != self.samples_shape:
                raise InputError(
                    None, f"trajectory of shape {tuple(trajectory.shape)} does not match samples {self.samples_shape}"
                )
            object.__setattr__(self, "trajectory", trajectory)
        affine = np.array(self.affine, dtype=np.float64)
        affine.setflags(write=False)
        object.__setattr__(self, "affine", affine)
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))

    @property
    def is_cartesian(self) -> bool:
        return self.trajectory is None

    @property
    def sample_ndim(self) -> int:
        """Number of sample axes: the image dimensionality for Cartesian data, else the trajectory's."""
        if self.trajectory is None:
            return len(self.image_shape)
        return torch.as_tensor(self.trajectory).ndim - 1

    @property
    def samples_shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape[-self.sample_ndim :])

    @property
    def n_coils(self) -> int:
        return int(self.data.shape[-self.sample_ndim - 1])

    @property
    def coil_axis(self) -> int:
        """Index of the coil axis (negative, counted from the end)."""
        return -self.sample_ndim - 1

    @property
    def acceleration(self) -> float:
        """Nominal acceleration: grid size / number of sampled locations (Cartesian only)."""
        if self.mask is None:
            return 1.0
        full = torch.broadcast_to(self.mask, self.samples_shape)
        return float(full.numel() / max(int(full.sum()), 1))

    def with_data(self, data: torch.Tensor, **changes: Any) -> KSpace:
        """Same geometry and sampling, new samples (e.g. after noise or coil compression)."""
        return dataclasses.replace(self, data=data, **changes)

    def geometry_image(self, data: torch.Tensor, modality: str = "mri") -> Image:
        """Wrap a reconstructed real image (shape ``image_shape``) with this k-space's geometry."""
        return Image(data, self.affine, len(self.image_shape), modality, dict(self.metadata))

    @classmethod
    def from_array(
        cls,
        array: np.ndarray | torch.Tensor,
        mask: np.ndarray | torch.Tensor | None = None,
        spacing: tuple[float, ...] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> KSpace:
        """Cartesian k-space from an array ``(coils, *grid)``; image shape = grid shape."""
        tensor = torch.as_tensor(array)
        grid = tuple(tensor.shape[-2:]) if tensor.ndim <= 3 else tuple(tensor.shape[-3:])
        affine = affine_from_spacing(spacing if spacing is not None else (1.0,) * len(grid))
        return cls(tensor, grid, None if mask is None else torch.as_tensor(mask), None, affine, dict(metadata or {}))

    def __repr__(self) -> str:
        kind = "cartesian" if self.is_cartesian else "non-cartesian"
        return f"KSpace(shape={tuple(self.data.shape)}, {kind}, coils={self.n_coils}, image_shape={self.image_shape})"
