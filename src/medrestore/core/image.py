"""The :class:`Image` data type: pixel data with its geometry and provenance.

Conventions
-----------
``data`` is a real ``torch.Tensor`` of shape ``(*spatial)`` or ``(*spatial, T)`` where
``spatial`` has ``spatial_ndim`` (2 or 3) axes in array order, and ``T`` is an optional
trailing time/repetition axis (fMRI, multi-frame OCT). Axes are kept in the order the file
stored them; ``affine`` says where they point.

``affine`` is a 4×4 float64 matrix mapping a voxel index ``(i, j, k, 1)`` to world
coordinates in millimetres, in the RAS+ convention of NIfTI (DICOM's LPS is converted on
read). For 2-D images the third index is 0 and the third column still carries a slice
spacing (1 mm by default). ``spacing`` is derived from it: the column norms
``‖A[:3, a]‖`` for each spatial axis ``a``, so the two can never disagree.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from medrestore.core.errors import InputError

MODALITIES = ("mri", "ct", "nm", "oct", "photo", "unknown")


def affine_from_spacing(spacing: Sequence[float], origin: Sequence[float] | None = None) -> np.ndarray:
    """Diagonal affine ``diag(spacing, 1)`` with ``origin`` in the last column (mm).

    ``spacing`` has 2 or 3 entries; a missing third spacing is 1 mm.
    """
    values = [float(s) for s in spacing] + [1.0] * (3 - len(spacing))
    affine = np.diag(values[:3] + [1.0])
    if origin is not None:
        affine[: len(origin), 3] = [float(o) for o in origin]
    return affine


@dataclasses.dataclass(frozen=True, eq=False)
class Image:
    """A medical image: tensor + geometry + modality + source metadata.

    Attributes:
        data: real tensor, shape ``(*spatial)`` or ``(*spatial, T)``.
        affine: 4×4 float64 voxel→world (mm, RAS+) matrix.
        spatial_ndim: number of spatial axes (2 or 3).
        modality: one of :data:`MODALITIES`.
        metadata: read-only source metadata (file format, original dtype, DICOM identifiers...).

    Example:
        >>> image = Image.from_array(np.zeros((4, 5), np.float32), spacing=(0.5, 0.25))
        >>> image.shape, image.spacing
        ((4, 5), (0.5, 0.25))
    """

    data: torch.Tensor
    affine: np.ndarray
    spatial_ndim: int
    modality: str = "unknown"
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.data, torch.Tensor):
            object.__setattr__(self, "data", torch.as_tensor(np.asarray(self.data)))
        if self.data.is_complex():
            raise InputError(None, "Image data must be real, not complex; use KSpace or take the magnitude first")
        if self.spatial_ndim not in (2, 3):
            raise InputError(None, f"spatial_ndim must be 2 or 3, got {self.spatial_ndim}")
        if self.data.ndim not in (self.spatial_ndim, self.spatial_ndim + 1):
            raise InputError(
                None,
                f"data has {self.data.ndim} axes but spatial_ndim={self.spatial_ndim} "
                f"(expected {self.spatial_ndim} or {self.spatial_ndim + 1})",
            )
        affine = np.array(self.affine, dtype=np.float64)
        if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
            raise InputError(None, f"affine must be a finite 4x4 matrix, got shape {affine.shape}")
        affine.setflags(write=False)
        object.__setattr__(self, "affine", affine)
        if self.modality not in MODALITIES:
            raise InputError(None, f"unknown modality {self.modality!r}; expected one of {MODALITIES}")
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_array(
        cls,
        array: np.ndarray | torch.Tensor,
        spacing: Sequence[float] | None = None,
        affine: np.ndarray | None = None,
        spatial_ndim: int | None = None,
        modality: str = "unknown",
        metadata: Mapping[str, Any] | None = None,
    ) -> Image:
        """Wrap an array. ``spatial_ndim`` defaults to ``min(ndim, 3)``; spacing defaults to 1 mm."""
        tensor = array if isinstance(array, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(array))
        ndim = spatial_ndim if spatial_ndim is not None else min(tensor.ndim, 3)
        if affine is None:
            affine = affine_from_spacing(spacing if spacing is not None else (1.0,) * ndim)
        return cls(tensor, affine, ndim, modality, dict(metadata or {}))

    # -- geometry -----------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape[: self.spatial_ndim])

    @property
    def n_frames(self) -> int:
        """Length of the trailing time axis (1 when there is none)."""
        return int(self.data.shape[-1]) if self.data.ndim > self.spatial_ndim else 1

    @property
    def spacing(self) -> tuple[float, ...]:
        """Voxel size in mm per spatial axis: ``‖affine[:3, a]‖``."""
        norms = np.linalg.norm(self.affine[:3, :3], axis=0)
        return tuple(float(round(v, 9)) for v in norms[: self.spatial_ndim])

    def with_data(self, data: torch.Tensor | np.ndarray, **changes: Any) -> Image:
        """Same geometry and metadata, new pixel data (same spatial shape required)."""
        tensor = data if isinstance(data, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(data))
        if tuple(tensor.shape[: self.spatial_ndim]) != self.spatial_shape and "affine" not in changes:
            raise InputError(None, f"new data shape {tuple(tensor.shape)} does not match spatial shape {self.spatial_shape}")
        return dataclasses.replace(self, data=tensor, **changes)

    def with_metadata(self, **entries: Any) -> Image:
        """Copy with metadata entries added or replaced."""
        return dataclasses.replace(self, metadata={**self.metadata, **entries})

    def permute(self, axes: Sequence[int]) -> Image:
        """Reorder spatial axes; the affine's columns follow so every voxel keeps its world position."""
        axes = list(axes)
        if sorted(axes) != list(range(self.spatial_ndim)):
            raise InputError(None, f"axes {axes} is not a permutation of the {self.spatial_ndim} spatial axes")
        full = axes + list(range(self.spatial_ndim, self.data.ndim))
        affine = self.affine.copy()
        affine[:, : self.spatial_ndim] = self.affine[:, axes]
        return dataclasses.replace(self, data=self.data.permute(full).contiguous(), affine=affine)

    def frame(self, index: int) -> Image:
        """One frame of a time series as a spatial-only image."""
        if self.data.ndim == self.spatial_ndim:
            if index != 0:
                raise IndexError(index)
            return self
        return dataclasses.replace(self, data=self.data[..., index])

    def numpy(self) -> np.ndarray:
        """Pixel data as a NumPy array (a copy on GPU, a view on CPU)."""
        return self.data.detach().cpu().numpy()

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> Image:
        """Move/cast the pixel data; geometry is unchanged."""
        return dataclasses.replace(self, data=self.data.to(device=device, dtype=dtype))

    def __repr__(self) -> str:
        return (
            f"Image(shape={self.shape}, dtype={self.data.dtype}, spacing={self.spacing}, "
            f"modality={self.modality!r})"
        )


SLICES_LAST_FORMATS = frozenset({"nifti", "nifti-pair", "mgh", "minc", "parrec", "afni", "nrrd", "metaimage"})
"""Formats whose readers keep the file's voxel order ``(i, j, k)``: a stack of planes runs along the last axis
(dcm2niix writes an NM multi-frame file as ``(columns, rows, frames)``). Every other reader (DICOM, Interfile, NumPy,
TIFF pages) puts the stack first."""
_SQUARE_TOLERANCE = 1e-3


def planar_stack_axis(image: Image) -> int:
    """The axis of a 3-D image along which its planar frames are stacked.

    The first axis for an image read from a format that stacks planes first (DICOM, Interfile, NumPy, TIFF pages); the
    slice axis a NIfTI header records (``dim_info``); otherwise the format's convention (last for
    :data:`SLICES_LAST_FORMATS`, first for an image of unknown origin) where the two other axes have equal (square)
    spacing, else the one axis whose two others do (a stack written first-axis-first into a NIfTI by another tool).
    """
    source = image.metadata.get("format")
    if source and source not in SLICES_LAST_FORMATS:
        return 0
    recorded = ((image.metadata.get("nifti") or {}).get("dim_info") or [None, None, None])[2]
    if recorded in (0, 1, 2) and not isinstance(recorded, bool):
        return int(recorded)
    spacing = image.spacing

    def square(axis: int) -> bool:
        first, second = (spacing[other] for other in range(3) if other != axis)
        return abs(first - second) <= _SQUARE_TOLERANCE * max(first, second)

    conventional = 2 if source else 0
    squares = [axis for axis in range(3) if square(axis)]
    return conventional if square(conventional) or len(squares) != 1 else squares[0]


def planar_frames(image: Image) -> tuple[torch.Tensor, tuple[int, int]]:
    """The planar frames of a scintigram, ``(F, h, w)`` (a view of ``image.data``), and their in-plane axes.

    A 2-D image is one frame, or ``T`` frames when it has a trailing frame axis; a 3-D image is a stack of planar
    frames along :func:`planar_stack_axis`: an NM multi-frame file (energy windows, detectors — the anterior and
    posterior views of a whole-body scan —, time frames, projections, or the slices of a reconstruction) as DICOM
    holds it ``(frames, rows, columns)`` or as dcm2niix converts it ``(columns, rows, frames)``.
    :func:`from_planar_frames` puts frames of the same count back into ``image``'s layout.

    Raises:
        InputError: a 3-D image with a time axis (frames of frames).
    """
    data = image.data
    if image.spatial_ndim == 2:
        return (data.unsqueeze(0) if data.ndim == 2 else data.movedim(-1, 0)), (0, 1)
    if data.ndim != 3:
        raise InputError(None, f"a 3-D image is read as a stack of planar frames; got shape {tuple(data.shape)} with a time axis")
    stack = planar_stack_axis(image)
    axes = tuple(axis for axis in range(3) if axis != stack)
    return data.movedim(stack, 0), (axes[0], axes[1])


def from_planar_frames(image: Image, frames: torch.Tensor) -> torch.Tensor:
    """``frames (F, h', w')`` (one per frame of :func:`planar_frames`) in ``image``'s axis layout."""
    if image.spatial_ndim == 3:
        return frames.movedim(0, planar_stack_axis(image)).contiguous()
    return frames[0] if image.data.ndim == 2 else frames.movedim(0, -1).contiguous()
