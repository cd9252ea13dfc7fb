"""Flip and quarter-turn augmentation applied identically to an input and its target.

Three tiers, as everywhere in medrestore:

* :class:`RandomFlipRotate` samples the parameters with an explicit ``torch.Generator``;
* :class:`FlipRotate` is the deterministic transform those parameters describe;
* :func:`flip_rotate` is the pure function doing the work.

Tensors are ``(C, *spatial)`` with 2 or 3 spatial axes. Quarter turns are in-plane: they
rotate the last two spatial axes (for 3-D volumes the first spatial axis, the slice axis, is
never swapped with the others, so anisotropic voxels stay consistent). Flips may act on any
spatial axis. For a 2-D square patch the sampled transforms cover the dihedral group of
the square (8 elements); for a non-square plane only half turns are drawn so the shape is kept.
"""

from __future__ import annotations

import dataclasses

import torch


def flip_rotate(image: torch.Tensor, flip_axes: tuple[int, ...], quarter_turns: int) -> torch.Tensor:
    """Flip ``image`` (``(C, *spatial)``) along spatial ``flip_axes``, then turn the last two axes.

    ``quarter_turns`` counts 90° turns from the second-to-last towards the last spatial axis
    (``torch.rot90`` convention). Returns a new tensor; ``image`` is not modified.
    """
    spatial_ndim = image.ndim - 1
    if any(not 0 <= axis < spatial_ndim for axis in flip_axes):
        raise ValueError(f"flip axes {flip_axes} outside the {spatial_ndim} spatial axes")
    result = image
    if flip_axes:
        result = torch.flip(result, dims=[axis + 1 for axis in flip_axes])
    if quarter_turns % 4:
        result = torch.rot90(result, k=quarter_turns % 4, dims=(image.ndim - 2, image.ndim - 1))
    if result is image:
        result = image.clone()
    return result.contiguous()


@dataclasses.dataclass(frozen=True)
class FlipRotate:
    """A fixed flip/rotation: flip ``flip_axes`` (spatial indices), then ``quarter_turns`` in-plane."""

    flip_axes: tuple[int, ...] = ()
    quarter_turns: int = 0

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return flip_rotate(image, self.flip_axes, self.quarter_turns)


@dataclasses.dataclass(frozen=True)
class RandomFlipRotate:
    """Draw a :class:`FlipRotate`: each spatial axis flipped with probability ½, turns uniform.

    Attributes:
        spatial_ndim: 2 or 3.
        square_plane: whether the last two spatial axes have equal length; if not, only
            0 or 2 quarter turns are drawn so the patch shape is preserved.
    """

    spatial_ndim: int
    square_plane: bool = True

    def sample(self, generator: torch.Generator) -> FlipRotate:
        flips = torch.randint(2, (self.spatial_ndim,), generator=generator).tolist()
        turns = int(torch.randint(4, (1,), generator=generator))
        if not self.square_plane:
            turns = 2 * (turns % 2)
        return FlipRotate(tuple(axis for axis, flip in enumerate(flips) if flip), turns)
