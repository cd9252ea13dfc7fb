"""Paired image-to-image datasets: (input, target) images → normalised, augmented patch pairs.

Two sources of pairs:

* :class:`PairedImages` — files on disk, e.g. noisy/clean folders matched by name
  (:func:`match_paired_folders`) or an explicit list of ``(input, target)`` paths;
* :class:`SyntheticPairs` — clean files and a degradation ``transform(x, generator)`` applied
  on the fly (a new noise draw for every sample).

:class:`PairedPatchDataset` is a map-style dataset whose item ``i`` in epoch ``e`` is a pure
function of ``(seed, e, i)``: every random choice (noise, patch position, flips) is drawn from
a ``torch.Generator`` seeded by :func:`sample_seed`. Nothing depends on the order in which
items are asked for, which worker asks, or what came before — so an interrupted run resumes
exactly and distributed ranks can share out indices freely. Index it with ``(epoch, index)``.

Tensors are ``(C, *spatial)`` float32. Images stored as ``(*spatial)`` get ``C = 1``; images
stored as ``(*spatial, T)`` (a trailing frame/colour axis) use that axis as channels.
The target may be finer than the input by an integer factor per axis (super-resolution);
patch positions, ``patch_size`` and ``stride`` are then given on the *input* grid and the
target patch is the matching region, ``factor`` times larger.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
import torch.utils.data

from medrestore.core.errors import ConfigError, InputError
from medrestore.core.random import make_generator
from medrestore.data.augment import RandomFlipRotate
from medrestore.data.normalisation import AffineParameters, NoNormalisation, Normalisation
from medrestore.data.patches import (
    check_patch_fits,
    count_grid_positions,
    extract_patch,
    grid_position,
    random_position,
)
from medrestore.io import read_image

Degradation = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
"""``transform(clean (C, *spatial), generator) -> degraded`` (a physics degradation)."""

TRAINING_STREAM = 0
VALIDATION_STREAM = 1
CROP_STREAM = 3

T = TypeVar("T")


def sample_seed(seed: int, epoch: int, index: int, stream: int = TRAINING_STREAM) -> int:
    """A 63-bit seed for sample ``index`` of ``epoch``: NumPy ``SeedSequence((seed, stream, epoch, index))``.

    Distinct tuples give statistically independent streams (the SeedSequence hash), unlike
    ``seed + index``, whose neighbouring streams overlap between epochs.
    """
    if min(seed, epoch, index, stream) < 0:
        raise ValueError(f"seed, epoch, index and stream must be >= 0, got {(seed, epoch, index, stream)}")
    words = np.random.SeedSequence((seed, stream, epoch, index)).generate_state(2, dtype=np.uint32)
    return (int(words[0]) << 31) ^ int(words[1])


# -- files ------------------------------------------------------------------------------------
def list_image_files(folder: str | Path, pattern: str = "*") -> tuple[Path, ...]:
    """Regular, non-hidden files in ``folder`` matching the glob ``pattern``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "is not a folder")
    files = tuple(sorted(p for p in folder.glob(pattern) if p.is_file() and not p.name.startswith(".")))
    if not files:
        raise InputError(folder, f"no files match {pattern!r}")
    return files


def match_paired_folders(
    input_dir: str | Path, target_dir: str | Path, pattern: str = "*"
) -> tuple[tuple[Path, Path], ...]:
    """Pair each file of ``input_dir`` with the file of the same name in ``target_dir``.

    Raises :class:`InputError` naming the missing target when an input has no partner.
    """
    pairs = []
    for input_path in list_image_files(input_dir, pattern):
        target_path = Path(target_dir) / input_path.name
        if not target_path.is_file():
            raise InputError(target_path, f"missing: no target file for input {input_path}")
        pairs.append((input_path, target_path))
    return tuple(pairs)


def split_by_file(items: Sequence[T], fraction: float, seed: int) -> tuple[tuple[T, ...], tuple[T, ...]]:
    """Split whole files (never patches) into (training, validation) with a seeded permutation.

    ``round(fraction · n)`` items (at least one when ``fraction > 0``) go to validation; both parts
    keep the original order. Raises :class:`ConfigError` if nothing would be left to train on.
    """
    if not 0.0 <= fraction < 1.0:
        raise ConfigError(f"validation fraction must be in [0, 1), got {fraction}")
    count = round(fraction * len(items))
    if fraction > 0 and count == 0:
        count = 1
    if count >= len(items):
        raise ConfigError(f"a validation fraction of {fraction} leaves no training file out of {len(items)}")
    chosen = set(torch.randperm(len(items), generator=make_generator(seed))[:count].tolist())
    training = tuple(item for i, item in enumerate(items) if i not in chosen)
    validation = tuple(item for i, item in enumerate(items) if i in chosen)
    return training, validation


def load_channels_first(path: str | Path, spatial_ndim: int) -> torch.Tensor:
    """Read an image through :func:`medrestore.io.read_image` as float32 ``(C, *spatial)``.

    Raises :class:`InputError` if the file has the wrong number of axes or non-finite values.
    """
    data = read_image(path).data
    if data.ndim == spatial_ndim:
        data = data.unsqueeze(0)
    elif data.ndim == spatial_ndim + 1:
        data = data.movedim(-1, 0)
    else:
        raise InputError(path, f"has shape {tuple(data.shape)}; expected {spatial_ndim} spatial axes (+ optional channels)")
    data = data.to(torch.float32).contiguous()
    if not bool(torch.isfinite(data).all()):
        raise InputError(path, "contains NaN or infinite values")
    return data


def scale_factor(input_shape: Sequence[int], target_shape: Sequence[int], path: str | Path | None) -> tuple[int, ...]:
    """Integer factor per axis with ``input·k ≤ target < input·(k+1)``; InputError if there is none."""
    factors = tuple(t // i if i > 0 else 0 for i, t in zip(input_shape, target_shape, strict=True))
    if any(k < 1 for k in factors):
        raise InputError(path, f"target of spatial shape {tuple(target_shape)} is smaller than its input {tuple(input_shape)}")
    return factors


# -- sources of whole-image pairs -------------------------------------------------------------
class ImagePairSource(abc.ABC):
    """Whole-image (input, target) pairs, un-normalised, ``(C, *spatial)`` float32."""

    spatial_ndim: int

    @abc.abstractmethod
    def __len__(self) -> int: ...

    @abc.abstractmethod
    def name(self, index: int) -> str:
        """A label for image ``index`` (its target file path)."""

    @abc.abstractmethod
    def input_shape(self, index: int) -> tuple[int, ...]:
        """Spatial shape of the input of image ``index``."""

    @abc.abstractmethod
    def factor(self, index: int) -> tuple[int, ...]:
        """Target-to-input scale factor per spatial axis (all ones for same-size pairs)."""

    @abc.abstractmethod
    def pair(self, index: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(input, target) of image ``index``; random sources draw from ``generator`` only."""

    def degrades_patches(self) -> bool:
        """Whether :meth:`patch_pair` can degrade a patch alone (voxel-wise degradations such as
        noise): training then cuts the clean patch first and never degrades the whole image."""
        return False

    def patch_pair(
        self, index: int, start: Sequence[int], size: Sequence[int], generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(input, target) of the patch ``[start, start + size)`` of image ``index`` (only where
        :meth:`degrades_patches`); same distribution as cutting the patch out of :meth:`pair`."""
        raise NotImplementedError(f"{type(self).__name__} degrades whole images only")


class PairedImages(ImagePairSource):
    """Pairs read from disk once and kept in memory.

    Args:
        pairs: ``(input_path, target_path)`` tuples.
        spatial_ndim: 2 or 3.
    """

    def __init__(self, pairs: Sequence[tuple[str | Path, str | Path]], spatial_ndim: int) -> None:
        if not pairs:
            raise ConfigError("no image pairs to read")
        self.spatial_ndim = spatial_ndim
        self.paths = tuple((Path(a), Path(b)) for a, b in pairs)
        self._images: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._factors: list[tuple[int, ...]] = []
        for input_path, target_path in self.paths:
            source = load_channels_first(input_path, spatial_ndim)
            target = load_channels_first(target_path, spatial_ndim)
            self._factors.append(scale_factor(source.shape[1:], target.shape[1:], target_path))
            self._images.append((source, target))

    def __len__(self) -> int:
        return len(self._images)

    def name(self, index: int) -> str:
        return str(self.paths[index][1])

    def input_shape(self, index: int) -> tuple[int, ...]:
        return tuple(self._images[index][0].shape[1:])

    def factor(self, index: int) -> tuple[int, ...]:
        return self._factors[index]

    def pair(self, index: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return self._images[index]


class SyntheticPairs(ImagePairSource):
    """Clean images read once; the input is ``degradation(clean, generator)``, drawn anew each call.

    The input geometry is learnt from one degradation at construction (blur-and-downsample
    makes the input smaller than the target).
    """

    def __init__(self, files: Sequence[str | Path], degradation: Degradation, spatial_ndim: int) -> None:
        if not files:
            raise ConfigError("no clean images to read")
        self.spatial_ndim = spatial_ndim
        self.paths = tuple(Path(f) for f in files)
        self.degradation = degradation
        self._clean = [load_channels_first(path, spatial_ndim) for path in self.paths]
        self._input_shapes: list[tuple[int, ...]] = []
        self._factors: list[tuple[int, ...]] = []
        for path, clean in zip(self.paths, self._clean, strict=True):
            shape = tuple(degradation(clean, make_generator(0)).shape[1:])
            self._input_shapes.append(shape)
            self._factors.append(scale_factor(shape, clean.shape[1:], path))

    def __len__(self) -> int:
        return len(self._clean)

    def name(self, index: int) -> str:
        return str(self.paths[index])

    def input_shape(self, index: int) -> tuple[int, ...]:
        return self._input_shapes[index]

    def factor(self, index: int) -> tuple[int, ...]:
        return self._factors[index]

    def pair(self, index: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        clean = self._clean[index]
        return self.degradation(clean, generator).to(torch.float32), clean


@dataclasses.dataclass(frozen=True, eq=False)
class ValidationImage:
    """A whole validation image: the normalised input, the raw target and the normalisation used.

    Attributes:
        name: label of the image (its target file).
        input: normalised input ``(C, *spatial)``, or several tensors for networks that take more
            than an image (``model(*input)``, e.g. image, k-space, mask and coil maps).
        target: un-normalised target ``(C, *spatial·factor)``.
        parameters: affine normalisation of this input; ``denormalise`` maps outputs back.
    """

    name: str
    input: torch.Tensor | tuple[torch.Tensor, ...]
    target: torch.Tensor
    parameters: AffineParameters


def validation_images(source: ImagePairSource, normalisation: Normalisation, seed: int) -> list[ValidationImage]:
    """Every image of ``source`` as a :class:`ValidationImage`, identical in every epoch.

    Synthetic degradations of image ``i`` are drawn with ``sample_seed(seed, 0, i, VALIDATION_STREAM)``.
    """
    images = []
    for index in range(len(source)):
        generator = make_generator(sample_seed(seed, 0, index, VALIDATION_STREAM))
        source_image, target = source.pair(index, generator)
        parameters = normalisation.parameters(source_image)
        images.append(ValidationImage(source.name(index), normalisation.normalise(source_image, parameters), target, parameters))
    return images


# -- the patch dataset ------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class PatchSampling:
    """How patches are drawn from each image pair.

    Attributes:
        patch_size: input patch size, 2 or 3 ints.
        patches_per_image: random patches per image and epoch (ignored with ``stride``).
        stride: if set, a deterministic grid of patches with this step (every grid patch of
            every image is one item, each epoch) instead of random positions.
        augment: random flips and in-plane quarter turns (see :mod:`medrestore.data.augment`).
        crop_size: with ``stride``: lay the grid inside ``crops_per_image`` random crops of this
            size per image instead of over the whole image. Crop ``c`` of image ``i`` is drawn
            once for the run (``sample_seed(seed, c, i, CROP_STREAM)``), like a data set of crops
            saved before training.
        crops_per_image: random crops per image (with ``crop_size``).
    """

    patch_size: tuple[int, ...]
    patches_per_image: int = 8
    stride: tuple[int, ...] | None = None
    augment: bool = False
    crop_size: tuple[int, ...] | None = None
    crops_per_image: int = 1

    def __post_init__(self) -> None:
        if len(self.patch_size) not in (2, 3) or min(self.patch_size) < 1:
            raise ConfigError(f"patch_size must be 2 or 3 positive ints, got {self.patch_size}")
        if self.stride is not None and (len(self.stride) != len(self.patch_size) or min(self.stride) < 1):
            raise ConfigError(f"stride {self.stride} must have one positive int per patch axis {self.patch_size}")
        if self.patches_per_image < 1:
            raise ConfigError(f"patches_per_image must be >= 1, got {self.patches_per_image}")
        if self.crop_size is not None:
            if self.stride is None or len(self.crop_size) != len(self.patch_size):
                raise ConfigError(f"crop_size {self.crop_size} needs a stride and one size per patch axis {self.patch_size}")
            if any(c < p for c, p in zip(self.crop_size, self.patch_size, strict=True)):
                raise ConfigError(f"crop_size {self.crop_size} is smaller than patch_size {self.patch_size}")
        if self.crops_per_image < 1:
            raise ConfigError(f"crops_per_image must be >= 1, got {self.crops_per_image}")

    def grid_count(self, spatial_shape: Sequence[int]) -> int:
        """Grid patches per image of ``spatial_shape`` (all crops together when ``crop_size`` is set)."""
        assert self.stride is not None
        if self.crop_size is None:
            return count_grid_positions(spatial_shape, self.patch_size, self.stride)
        return self.crops_per_image * count_grid_positions(self.crop_size, self.patch_size, self.stride)


class PairedPatchDataset(torch.utils.data.Dataset):
    """Normalised, augmented ``(input, target)`` patches; item ``(epoch, i)`` depends only on ``(seed, epoch, i)``.

    Item ``i`` belongs to image ``i // patches_per_image`` (random sampling) or to the grid
    patch ``i`` counted over all images in order (``stride`` set; crop by crop with
    ``crop_size``). Per item: draw the input
    (synthetic sources), compute the normalisation parameters on the *whole* input image, apply
    them to input and target, cut the patch, augment both identically. Sources that degrade
    voxel by voxel (:meth:`ImagePairSource.degrades_patches`) with random positions and no
    normalisation take a faster path: position first, then only the patch is degraded.

    Returns ``(input (C, *patch_size), target (C, *patch_size·factor))`` float32.
    """

    def __init__(self, source: ImagePairSource, normalisation: Normalisation, sampling: PatchSampling, seed: int) -> None:
        if len(sampling.patch_size) != source.spatial_ndim:
            raise ConfigError(f"patch_size {sampling.patch_size} does not match {source.spatial_ndim}-D images")
        self.source = source
        self.normalisation = normalisation
        self.sampling = sampling
        self.seed = int(seed)
        counts = []
        for index in range(len(source)):
            check_patch_fits(source.input_shape(index), sampling.crop_size or sampling.patch_size, source.name(index))
            plane_factors = source.factor(index)[-2:]
            if sampling.augment and plane_factors[0] != plane_factors[1]:
                raise InputError(source.name(index), f"in-plane scale factors {plane_factors} differ; quarter turns need equal ones")
            if sampling.stride is None:
                counts.append(sampling.patches_per_image)
            else:
                counts.append(sampling.grid_count(source.input_shape(index)))
        self._offsets = np.cumsum([0, *counts])
        plane = sampling.patch_size[-2:]
        self._augmentation = RandomFlipRotate(source.spatial_ndim, plane[0] == plane[1]) if sampling.augment else None
        self._patch_first = source.degrades_patches() and sampling.stride is None and isinstance(normalisation, NoNormalisation)

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def locate(self, index: int) -> tuple[int, int]:
        """(image index, patch index within that image) of item ``index``."""
        if not 0 <= index < len(self):
            raise IndexError(f"item {index} outside [0, {len(self)})")
        image_index = int(np.searchsorted(self._offsets, index, side="right")) - 1
        return image_index, index - int(self._offsets[image_index])

    def item(self, epoch: int, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Item ``index`` of ``epoch`` (see the class docstring)."""
        image_index, patch_index = self.locate(index)
        generator = make_generator(sample_seed(self.seed, epoch, index))
        if self._patch_first:
            return self._patch_first_item(image_index, generator)
        source_image, target = self.source.pair(image_index, generator)
        parameters = self.normalisation.parameters(source_image)
        patch_size = self.sampling.patch_size
        if self.sampling.stride is None:
            start = random_position(source_image.shape[1:], patch_size, generator)
        else:
            start = self.grid_start(image_index, tuple(source_image.shape[1:]), patch_index)
        factor = self.source.factor(image_index)
        input_patch = extract_patch(source_image, start, patch_size)
        target_patch = extract_patch(
            target, [s * k for s, k in zip(start, factor, strict=True)], [p * k for p, k in zip(patch_size, factor, strict=True)]
        )
        input_patch = self.normalisation.normalise(input_patch, parameters)
        target_patch = self.normalisation.normalise(target_patch, parameters)
        return self._augmented(input_patch, target_patch, generator)

    def _patch_first_item(self, image_index: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Random position first, then the source degrades only that patch (no normalisation)."""
        patch_size = self.sampling.patch_size
        start = random_position(self.source.input_shape(image_index), patch_size, generator)
        input_patch, target_patch = self.source.patch_pair(image_index, start, patch_size, generator)
        return self._augmented(input_patch, target_patch, generator)

    def _augmented(self, input_patch: torch.Tensor, target_patch: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """The same random flip/turn of both patches (none without ``augment``)."""
        if self._augmentation is None:
            return input_patch, target_patch
        transform = self._augmentation.sample(generator)
        return transform(input_patch), transform(target_patch)

    def grid_start(self, image_index: int, spatial_shape: tuple[int, ...], patch_index: int) -> tuple[int, ...]:
        """Start of grid patch ``patch_index`` of image ``image_index`` (inside its crop with ``crop_size``)."""
        sampling = self.sampling
        assert sampling.stride is not None
        if sampling.crop_size is None:
            return grid_position(spatial_shape, sampling.patch_size, sampling.stride, patch_index)
        per_crop = count_grid_positions(sampling.crop_size, sampling.patch_size, sampling.stride)
        crop, within = divmod(patch_index, per_crop)
        crop_generator = make_generator(sample_seed(self.seed, crop, image_index, CROP_STREAM))
        corner = random_position(spatial_shape, sampling.crop_size, crop_generator)
        offset = grid_position(sampling.crop_size, sampling.patch_size, sampling.stride, within)
        return tuple(c + o for c, o in zip(corner, offset, strict=True))

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, index = key
        return self.item(int(epoch), int(index))
