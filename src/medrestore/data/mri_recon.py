"""Training data for MRI reconstruction networks: retrospectively undersampled multi-coil k-space.

Two sources of fully sampled slices:

* **real brain images** (NIfTI volumes — axial slices over ``slice_range`` of the last axis —
  and 2-D pictures), turned into multi-coil k-space by
  :mod:`medrestore.physics.mri.simulation`: a random coil array (birdcage loops or Gaussian
  profiles, ``Σ_c |S_c|² = 1``, phase aligned to coil 0 as ESPIRiT maps are), a smooth random
  phase, complex noise;
* **fastMRI HDF5** files (:func:`medrestore.io.read_fastmri`): the measured k-space of every
  slice with ESPIRiT maps from its fully sampled centre (computed once per slice).

Each sample (a pure function of ``(seed, epoch, index)``) is then undersampled with a mask
drawn by :func:`medrestore.physics.mri.masks.sample_mask` (kind from ``masks``, acceleration
uniform in ``acceleration_range`` — rounded for equispaced lines — lines along either axis; Poisson-disc patterns come from a bank of
``poisson_seeds`` masks per acceleration in ``poisson_accelerations``, drawn once — they take
seconds each), and scaled by ``s = q₀.₉₉(|x₀|)`` of its zero-filled image so networks see O(1)
values (the scale is computed from measured data only, as at reconstruction time)::

    x₀ = Aᴴ y / s = Σ_c conj(S_c) ifftc(M ⊙ y_c) / s          (coil-combined zero-filled image)
    target = x / s                                           (x = the fully sampled complex image)

:class:`MRIReconSample` holds ``image`` (``x₀`` as 2 channels), ``kspace`` (``M ⊙ y / s``),
``mask`` (full-grid float 0/1), ``coil_maps`` and ``target`` (2 channels). Coil axes are padded
with zero maps (and zero k-space) to ``max_coils`` so that arrays of different sizes batch
together; zero coils change neither ``Aᴴy`` nor ``AᴴA``.

The trainer sees ``(inputs, target)`` pairs: ``inputs`` is ``image`` (``inputs: image``, for
image-domain networks such as the U-Net) or the tuple ``(image, kspace, mask, coil_maps)``
(``inputs: physics``, for unrolled networks with data consistency).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from medrestore.core.files import expand_files
from medrestore.core.complex import complex_to_channels
from medrestore.core.errors import ConfigError, InputError
from medrestore.core.fft import ifftc
from medrestore.core.random import make_generator
from medrestore.data.normalisation import AffineParameters
from medrestore.data.paired import ValidationImage, sample_seed
from medrestore.data.radial_recon import RadialReconSample, RadialSampling, network_scale, pad_axis, radial_inputs, radial_sample
from medrestore.io import read_image
from medrestore.io.raw_fastmri import read_fastmri
from medrestore.physics.mri.espirit import RECON_ESPIRIT, espirit_maps
from medrestore.physics.mri.masks import MASK_KINDS, MaskSpec, sample_mask
from medrestore.physics.mri.sense import coil_combine
from medrestore.physics.mri.simulation import (
    CoilSimulation,
    align_phase_to_coil,
    random_coil_maps,
    simulate_kspace,
    smooth_phase,
)

__all__ = [
    "INPUT_KINDS",
    "MRIReconDataConfig",
    "MRIReconDataset",
    "MRIReconSample",
    "MRISliceSource",
    "load_brain_slices",
    "mri_recon_sources",
    "network_inputs",
    "undersampled_sample",
    "validation_samples",
]

INPUT_KINDS = ("image", "physics")
MASK_STREAM = 7

class MRIReconSample(NamedTuple):
    """One undersampled slice, scaled by ``scale`` (see the module docstring).

    Attributes:
        image: float32 ``(2, H, W)`` — the coil-combined zero-filled image ``Aᴴy / s``.
        kspace: complex64 ``(coils, H, W)`` — the undersampled k-space ``M ⊙ y / s``.
        mask: float32 ``(H, W)`` — 1 where sampled.
        coil_maps: complex64 ``(coils, H, W)``.
        target: float32 ``(2, H, W)`` — the fully sampled complex image ``x / s``.
        scale: float32 ``()`` — ``s``.
    """

    image: torch.Tensor
    kspace: torch.Tensor
    mask: torch.Tensor
    coil_maps: torch.Tensor
    target: torch.Tensor
    scale: torch.Tensor


@dataclasses.dataclass(frozen=True)
class MRISliceSource:
    """Where fully sampled slices come from.

    Attributes:
        files: NIfTI volumes (axial slices: last axis) and 2-D pictures (luma), or folders of them.
        slice_range: fractions ``[start, stop]`` of a volume's last axis to take slices from.
        slice_step: take every ``slice_step``-th slice in that range.
        fastmri_files: fastMRI HDF5 files (multi-coil, fully sampled); every slice is used.
    """

    files: tuple[str, ...] = ()
    slice_range: tuple[float, float] = (0.3, 0.7)
    slice_step: int = 4
    fastmri_files: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0.0 <= self.slice_range[0] <= self.slice_range[1] <= 1.0:
            raise ConfigError(f"slice_range: expected 0 <= start <= stop <= 1, got {self.slice_range}")
        if self.slice_step < 1:
            raise ConfigError(f"slice_step: must be >= 1, got {self.slice_step}")

    def resolved(self, base: Path) -> MRISliceSource:
        """Relative paths made absolute against ``base``."""

        def resolve(path: str) -> str:
            candidate = Path(path).expanduser()
            return str(candidate if candidate.is_absolute() else (base / candidate).resolve())

        return dataclasses.replace(
            self, files=tuple(resolve(p) for p in self.files), fastmri_files=tuple(resolve(p) for p in self.fastmri_files)
        )


@dataclasses.dataclass(frozen=True)
class MRIReconDataConfig:
    """The ``data.mri`` section of a training configuration (layout ``mri-recon``).

    Attributes:
        training: slices to train on; validation: slices for the trainer's validation (may be empty).
        image_size: brain images are zero-padded to a square and resampled to this size.
        inputs: ``image`` (zero-filled image only) or ``physics`` (+ k-space, mask, coil maps).
        masks: mask kinds drawn uniformly (``random``, ``equispaced``, ``poisson``).
        acceleration_range: line-mask acceleration, uniform in this range.
        poisson_accelerations: accelerations of the Poisson-disc bank.
        poisson_seeds: Poisson-disc masks per acceleration in the bank.
        center_fraction: fully sampled centre fraction.
        samples_per_image: draws per slice per epoch (new coils, phase, mask every epoch).
        validation_acceleration: acceleration of the (fixed) validation draws.
        augment: random flips and transposition of brain images.
        coils: coil-array, phase and noise simulation ranges.
        max_coils: coil axis padding (≥ the largest array; fastMRI files need their coil count).
        radial: acquire radially instead (:mod:`medrestore.data.radial_recon`; the mask options
            and ``coils.noise_range`` are then unused: radial noise is ``radial.noise_range``).
        zoom_range: brain images are magnified by a factor drawn in this range (a random square
            window of ``size / factor`` pixels resampled to ``size``), so that the anatomy also
            fills the field of view; ``[1, 1]`` (default) keeps the whole slice.
    """

    training: MRISliceSource = MRISliceSource()
    validation: MRISliceSource = MRISliceSource(files=())
    image_size: int = 128
    inputs: str = "image"
    masks: tuple[str, ...] = ("random", "equispaced", "poisson")
    acceleration_range: tuple[float, float] = (4.0, 8.0)
    poisson_accelerations: tuple[float, ...] = (4.0, 8.0)
    poisson_seeds: int = 3
    center_fraction: float = 0.08
    samples_per_image: int = 4
    validation_acceleration: float = 6.0
    augment: bool = True
    coils: CoilSimulation = CoilSimulation()
    max_coils: int = 16
    radial: RadialSampling | None = None
    zoom_range: tuple[float, float] = (1.0, 1.0)

    def __post_init__(self) -> None:
        if self.inputs not in INPUT_KINDS:
            raise ConfigError(f"inputs: {self.inputs!r} is not one of {', '.join(INPUT_KINDS)}")
        unknown = [kind for kind in self.masks if kind not in MASK_KINDS]
        if unknown or not self.masks:
            raise ConfigError(f"masks: give one or more of {', '.join(MASK_KINDS)}; got {list(self.masks)}")
        low, high = self.acceleration_range
        if not 1.0 < low <= high:
            raise ConfigError(f"acceleration_range: expected 1 < low <= high, got {self.acceleration_range}")
        if self.image_size < 16 or self.samples_per_image < 1 or self.poisson_seeds < 1:
            raise ConfigError("image_size must be >= 16; samples_per_image and poisson_seeds >= 1")
        if not 1.0 <= self.zoom_range[0] <= self.zoom_range[1]:
            raise ConfigError(f"zoom_range: expected 1 <= low <= high, got {self.zoom_range}")
        if max(self.coils.coils) > self.max_coils:
            raise ConfigError(f"max_coils: {self.max_coils} is below the largest simulated array ({max(self.coils.coils)})")

    def resolved(self, base: Path) -> MRIReconDataConfig:
        return dataclasses.replace(self, training=self.training.resolved(base), validation=self.validation.resolved(base))


# -- fully sampled slices -------------------------------------------------------------------------
def _square_resample(plane: np.ndarray, size: int) -> torch.Tensor:
    """Zero-pad to a square, resample to ``size × size`` (area/bilinear), scale to robust max 1; float32."""
    height, width = plane.shape
    side = max(height, width)
    padded = np.zeros((side, side), dtype=np.float32)
    top, left = (side - height) // 2, (side - width) // 2
    padded[top : top + height, left : left + width] = plane
    tensor = torch.from_numpy(padded)[None, None]
    mode = "area" if side >= size else "bilinear"
    resized = F.interpolate(tensor, size=(size, size), mode=mode)[0, 0].clamp_min(0)
    peak = float(torch.quantile(resized.flatten(), 0.995)) or 1.0
    return (resized / peak).clamp_max(1.5)


def load_brain_slices(source: MRISliceSource, size: int) -> list[tuple[str, torch.Tensor]]:
    """``[(name, magnitude (size, size) float32), ...]``: axial volume slices and 2-D pictures."""
    slices: list[tuple[str, torch.Tensor]] = []
    for path in expand_files(source.files, "a slice source of data.mri"):
        data = read_image(path).data.to(torch.float32)
        if data.ndim == 3 and data.shape[0] in (3, 4) and data.shape[0] < min(data.shape[1:]):
            data = (0.299 * data[0] + 0.587 * data[1] + 0.114 * data[2]) if data.shape[0] >= 3 else data[0]
        if data.ndim == 2:
            slices.append((path.name, _square_resample(data.numpy(), size)))
            continue
        if data.ndim != 3:
            raise InputError(path, f"has shape {tuple(data.shape)}; expected a 2-D picture or a 3-D volume")
        depth = data.shape[-1]
        start, stop = (int(round(f * (depth - 1))) for f in source.slice_range)
        for index in range(start, stop + 1, source.slice_step):
            plane = np.rot90(data[..., index].numpy())  # (x, y) → rows anterior-up
            slices.append((f"{path.name}[z={index}]", _square_resample(np.ascontiguousarray(plane), size)))
    return slices


@dataclasses.dataclass(frozen=True, eq=False)
class _MeasuredSlice:
    """A fully sampled measured slice: k-space ``(coils, H, W)`` and its ESPIRiT maps."""

    name: str
    kspace: torch.Tensor
    coil_maps: torch.Tensor


def _fastmri_slices(files: Sequence[str]) -> list[_MeasuredSlice]:
    """Every slice of every fastMRI file, with ESPIRiT maps from its fully sampled data."""
    slices = []
    for path in expand_files(files, "a slice source of data.mri"):
        kspace = read_fastmri(path)
        if kspace.mask is not None:
            raise InputError(path, "is undersampled; training needs fully sampled fastMRI files")
        data = kspace.data if kspace.data.ndim == 4 else kspace.data[:, None]  # single-coil: one coil
        if data.ndim != 4:
            raise InputError(path, f"k-space of shape {tuple(kspace.data.shape)}; expected (slices, [coils,] H, W)")
        for index in range(data.shape[0]):
            maps, _ = espirit_maps(data[index], None, RECON_ESPIRIT)
            slices.append(_MeasuredSlice(f"{Path(path).name}[{index}]", data[index].to(torch.complex64), maps))
    return slices


# -- undersampling --------------------------------------------------------------------------------
@functools.lru_cache(maxsize=64)
def _poisson_mask(shape: tuple[int, int], acceleration: float, center_fraction: float, seed: int) -> torch.Tensor:
    return sample_mask(MaskSpec("poisson", acceleration, center_fraction, seed), shape)


def _draw_mask(config: MRIReconDataConfig, shape: tuple[int, int], generator: torch.Generator, acceleration: float | None) -> torch.Tensor:
    """A full-grid float mask drawn as ``config`` says (``acceleration`` fixes R when given)."""
    kind = config.masks[int(torch.randint(len(config.masks), (), generator=generator))]
    seed = int(torch.randint(2**31 - 1, (), generator=generator))
    if kind == "poisson":
        choices = config.poisson_accelerations
        rate = acceleration or choices[int(torch.randint(len(choices), (), generator=generator))]
        mask = _poisson_mask(shape, float(rate), config.center_fraction, seed % config.poisson_seeds)
    else:
        low, high = config.acceleration_range
        rate = acceleration or low + (high - low) * float(torch.rand((), generator=generator))
        if kind == "equispaced":
            rate = float(max(2, round(rate)))
        axis = -2 if float(torch.rand((), generator=generator)) < 0.5 else -1
        mask = sample_mask(MaskSpec(kind, rate, config.center_fraction, seed, axis), shape)  # type: ignore[arg-type]
    return torch.broadcast_to(mask, shape).to(torch.float32)


def undersampled_sample(
    full_kspace: torch.Tensor, coil_maps: torch.Tensor, target: torch.Tensor | None, mask: torch.Tensor, max_coils: int
) -> MRIReconSample:
    """Undersample ``full_kspace`` ``(coils, H, W)`` with ``mask`` and scale everything by ``q₀.₉₉|Aᴴy|``.

    ``target`` is the complex ``(H, W)`` image in the frame of ``coil_maps`` (``x = Sᴴ F⁻¹ y_full``
    for measured data, the simulated object for simulated data); ``None`` at reconstruction
    time (zeros are returned in its place). Already undersampled k-space passes unchanged
    (``M ⊙ M ⊙ y = M ⊙ y``).
    """
    if target is None:
        target = torch.zeros(full_kspace.shape[-2:], dtype=torch.complex64)
    kspace = full_kspace * mask
    zero_filled = coil_combine(ifftc(kspace, 2), coil_maps)
    scale = network_scale(zero_filled)
    return MRIReconSample(
        image=complex_to_channels(zero_filled / scale),
        kspace=pad_axis((kspace / scale).to(torch.complex64), 0, max_coils, "data.mri.max_coils"),
        mask=mask.to(torch.float32),
        coil_maps=pad_axis(coil_maps.to(torch.complex64), 0, max_coils, "data.mri.max_coils"),
        target=complex_to_channels(target / scale),
        scale=torch.tensor(scale, dtype=torch.float32),
    )


def _augment(image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    flips = torch.rand(3, generator=generator) < 0.5
    if flips[0]:
        image = image.flip(-1)
    if flips[1]:
        image = image.flip(-2)
    return image.transpose(-1, -2) if flips[2] else image


def _zoom(image: torch.Tensor, zoom_range: tuple[float, float], generator: torch.Generator) -> torch.Tensor:
    """A random square window of ``size / f`` pixels (``f`` uniform in ``zoom_range``) resampled to ``size`` (bilinear)."""
    size = int(image.shape[-1])
    low, high = zoom_range
    factor = low + (high - low) * float(torch.rand((), generator=generator))
    width = max(8, int(round(size / factor)))
    top, left = (int(torch.randint(size - width + 1, (), generator=generator)) for _ in range(2))
    window = image[top : top + width, left : left + width]
    return F.interpolate(window[None, None], size=(size, size), mode="bilinear", align_corners=False)[0, 0]


def network_inputs(sample: MRIReconSample | RadialReconSample, kind: str) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """What a network receives: the zero-filled image, or ``(image, kspace, mask, coil_maps)`` (radial: :func:`radial_inputs`)."""
    if isinstance(sample, RadialReconSample):
        return radial_inputs(sample, kind)
    if kind == "image":
        return sample.image
    return (sample.image, sample.kspace, sample.mask, sample.coil_maps)


class MRIReconDataset(torch.utils.data.Dataset):
    """Undersampled samples, item ``(epoch, i)`` a pure function of ``(seed, epoch, i)``.

    Item ``i`` uses slice ``i // samples_per_image``; brain slices get a new coil array, phase,
    noise and mask every draw, fastMRI slices a new mask. Returns ``(inputs, target)`` (see
    :func:`network_inputs`).
    """

    def __init__(self, config: MRIReconDataConfig, source: MRISliceSource, seed: int) -> None:
        self.config = config
        self.seed = int(seed)
        self.brain = load_brain_slices(source, config.image_size)
        self.measured = _fastmri_slices(source.fastmri_files)
        if not self.brain and not self.measured:
            raise ConfigError("data.mri: no slices (give files or fastmri_files)")

    @property
    def slices(self) -> int:
        return len(self.brain) + len(self.measured)

    def name(self, index: int) -> str:
        return self.brain[index][0] if index < len(self.brain) else self.measured[index - len(self.brain)].name

    def __len__(self) -> int:
        return self.slices * self.config.samples_per_image

    def sample(
        self, epoch: int, index: int, acceleration: float | None = None, augment: bool | None = None, spokes: int | None = None
    ) -> MRIReconSample | RadialReconSample:
        """The sample of item ``index`` of ``epoch`` (:class:`RadialReconSample` when ``radial`` is set)."""
        if not 0 <= index < len(self):
            raise IndexError(f"item {index} outside [0, {len(self)})")
        generator = make_generator(sample_seed(self.seed, epoch, index, MASK_STREAM))
        slice_index = index // self.config.samples_per_image
        radial = self.config.radial
        if slice_index >= len(self.brain):
            measured = self.measured[slice_index - len(self.brain)]
            shape = (int(measured.kspace.shape[-2]), int(measured.kspace.shape[-1]))
            target = coil_combine(ifftc(measured.kspace, 2), measured.coil_maps)
            if radial is not None:
                return radial_sample(target, measured.coil_maps, radial, generator, self.config.max_coils, spokes)
            mask = _draw_mask(self.config, shape, generator, acceleration)
            return undersampled_sample(measured.kspace, measured.coil_maps, target, mask, self.config.max_coils)
        magnitude = self.brain[slice_index][1]
        if self.config.augment if augment is None else augment:
            magnitude = _augment(magnitude, generator)
            if self.config.zoom_range[1] > 1.0:
                magnitude = _zoom(magnitude, self.config.zoom_range, generator)
        shape = (int(magnitude.shape[0]), int(magnitude.shape[1]))
        simulation = self.config.coils
        coil_maps = random_coil_maps(shape, simulation, generator)
        image = torch.polar(magnitude, smooth_phase(shape, generator, max_phase=simulation.max_phase))
        # ESPIRiT's convention (coil 0 real): the target carries the phase a reconstruction returns
        aligned = align_phase_to_coil(coil_maps)
        target = image * (coil_maps[0] / coil_maps[0].abs().clamp_min(1e-12))
        if radial is not None:  # S x = S_aligned x_aligned: acquire the aligned pair directly
            return radial_sample(target, aligned, radial, generator, self.config.max_coils, spokes)
        low, high = simulation.noise_range
        noise = low + (high - low) * float(torch.rand((), generator=generator))
        full = simulate_kspace(image, coil_maps, noise, generator)
        mask = _draw_mask(self.config, shape, generator, acceleration)
        return undersampled_sample(full, aligned, target, mask, self.config.max_coils)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor | tuple[torch.Tensor, ...], torch.Tensor]:
        epoch, index = key
        sample = self.sample(int(epoch), int(index))
        return network_inputs(sample, self.config.inputs), sample.target


def validation_samples(config: MRIReconDataConfig, dataset: MRIReconDataset) -> list[ValidationImage]:
    """One fixed draw per validation slice (epoch 0, no augmentation, ``validation_acceleration`` or ``radial.validation_spokes``)."""
    images = []
    for slice_index in range(dataset.slices):
        spokes = None if config.radial is None else config.radial.validation_spokes
        sample = dataset.sample(0, slice_index * config.samples_per_image, config.validation_acceleration, augment=False, spokes=spokes)
        inputs = network_inputs(sample, config.inputs)
        images.append(ValidationImage(dataset.name(slice_index), inputs, sample.target, AffineParameters(0.0, 1.0)))  # type: ignore[arg-type]
    return images


def mri_recon_sources(config: MRIReconDataConfig, seed: int) -> tuple[MRIReconDataset, list[ValidationImage]]:
    """The training dataset and the validation images of ``config``."""
    training = MRIReconDataset(config, config.training, seed)
    has_validation = bool(config.validation.files or config.validation.fastmri_files)
    validation = validation_samples(config, MRIReconDataset(config, config.validation, seed + 1)) if has_validation else []
    return training, validation
