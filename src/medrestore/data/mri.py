"""Training pairs for MRI denoising: a clean brain volume and Rician noise drawn on the fly.

The ``data.mri_denoise`` section of a training configuration (``data.layout: mri-denoise``) names one clean
volume (Colin27, ``ch2.nii.gz``: an average of 27 scans) and a slab of slices held out for
validation. Training images are the rest of the volume: every axial slice with enough brain
(2-D patches) or the two sub-volumes on either side of the slab (3-D patches), plus any
``extra_volumes`` (other brains, used whole) and synthetic phantom heads. Each sample
draws ``σ ~ U[sigma_range] · max(volume)`` and the input is ``|x + σn₁ + iσn₂|``
(:func:`~medrestore.physics.noise.add_rician_noise`): one model for the whole 1–10 % range,
*blind* to σ by default (no noise map needed at inference). With ``sigma_map: true``
the input gets a second channel holding σ at every voxel (the *σ-conditioned* variant, in the
same scaled units; at inference σ is estimated from the image,
:func:`~medrestore.physics.noise_estimation.estimate_sigma`, and divided by the same scale).

Intensities are divided by :func:`intensity_scale` (a robust maximum, the 99.9th percentile of
the non-zero voxels) both here and at inference (:mod:`medrestore.tasks.denoise_mri`), so the
training configuration uses ``normalisation: none``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from medrestore.core.errors import ConfigError, InputError
from medrestore.core.regions import bounding_box
from medrestore.data.mri_phantom import brain_phantom
from medrestore.data.paired import ImagePairSource
from medrestore.data.patches import extract_patch
from medrestore.io import read_image
from medrestore.physics.noise import add_rician_noise

SCALE_QUANTILE = 0.999
PHANTOM_SHAPE = (144, 160, 128)
"""Size of the synthetic phantom heads added by ``synthetic_phantoms`` (2-D: the last two sides)."""
PHANTOM_FIRST_SEED = 1000
MIN_BRAIN_FRACTION = 0.05
"""2-D training slices with less non-zero tissue than this are skipped."""


def intensity_scale(volume: torch.Tensor | np.ndarray) -> float:
    """Robust maximum: the :data:`SCALE_QUANTILE` quantile of the voxels above 5 % of the maximum.

    Noise raises the plain maximum by several σ; this quantile moves by a fraction of σ.
    Returns 1.0 for an all-zero input.
    """
    values = volume.detach().cpu().numpy() if isinstance(volume, torch.Tensor) else np.asarray(volume)
    values = values[np.isfinite(values)]
    if values.size == 0 or float(values.max()) <= 0:
        return 1.0
    bright = values[values > 0.05 * float(values.max())]
    return float(np.quantile(bright, SCALE_QUANTILE))


@dataclasses.dataclass(frozen=True)
class MRIDenoiseDataConfig:
    """The ``data.mri_denoise`` section.

    Attributes:
        volume: clean 3-D volume (NIfTI or any format :func:`medrestore.io.read_image` reads).
        axis: the slice axis (2: axial for an RAS volume such as Colin27).
        validation_slab: ``[start, stop)`` slices along ``axis`` held out for validation
            (never trained on).
        validation_every: 2-D: validate on every n-th slice of the slab.
        sigma_range: Rician σ as a fraction of the volume maximum, drawn uniformly per sample.
        sigma_map: append a constant σ channel to the input (σ-conditioned networks take 2 channels).
        noise_on_patches: draw the noise on each training patch only (the same distribution as
            cutting the patch from a noisy volume, ~100× less work for 3-D sub-volumes; the random
            stream differs, so runs made without it reproduce only with ``false``).
        gamma_range: contrast augmentation: every training sample's clean image becomes
            ``x^γ`` (``x`` scaled to a maximum of 1, then scaled back) with ``γ`` drawn
            log-uniformly in this range, so the network sees other T1 contrasts than Colin27's.
            ``[1, 1]``: none. Validation images are never changed.
        brightness_range: brightness augmentation: the clean image (after γ) is multiplied by a
            factor drawn log-uniformly in this range, σ staying in the volume's units, so the
            network does not rely on the tissue sitting at a fixed fraction of the intensity scale
            (a bright scalp or fat raises the robust maximum of an unstripped head). ``[1, 1]``: none.
        cut_probability: mask-cut augmentation: with this probability a training sample's clean image
            (and target) is set to zero outside a random curved boundary (:func:`random_cut`) before the
            noise, so the network sees hard tissue/background cuts at every tissue intensity, as
            skull-stripping leaves them. Colin27's mask cuts near grey-matter intensity; other brains'
            masks cut through CSF, where a network that never saw such a cut does worst (the outer layer
            of the brain mask, ``benchmarks/history.md``, MRI denoising;
            ``configs/mri-resunet3d-multibrain.yaml`` was measured and not shipped).
        scale_range: anatomical-scale augmentation (training patches only, with ``noise_on_patches``):
            each patch is cut from a region ``s_a`` times its side on each axis ``a`` (``log s_a`` uniform
            in ``log scale_range``, independently per axis; the region centred on the drawn patch and kept
            inside the image) and resampled to the patch size (trilinear/bilinear) before the noise, so a
            few brains show many sizes and shapes of folds and ventricles. The noise is drawn at the
            patch's grid, as a scanner would. ``[1, 1]``: none.
        synthetic_phantoms: add this many piecewise-constant phantom heads
            (:func:`~medrestore.data.mri_phantom.brain_phantom`, seeds 1000, 1001…, :data:`PHANTOM_SHAPE`)
            to the training images: flat tissue, a thin CSF layer and sharp boundaries, which one
            real brain alone does not teach (each phantom gets as many patches as each training image).
        extra_volumes: further clean 3-D brain volumes (other subjects or population templates), used
            whole for training, never for validation: each is divided by its own :func:`intensity_scale`
            and cropped to its tissue (:func:`tissue_crop`), and gets as many patches as each training
            image (2-D: its slices along ``axis`` with enough tissue). A network trained on one brain
            learns that brain and generalises poorly to others (measured in ``benchmarks/history.md``,
            "Three more brains"). Each is its own target.
        target: optional denoised copy of ``volume`` (same shape and units), the training and validation
            target, while the noise is still drawn on ``volume``. An average of a few scans keeps
            residual noise (Colin27: σ ≈ 1 grey level of 133, 0.8 % of the maximum, plus
            integer rounding); trained on it as the target, a network learns to keep noise of
            that size. ``null``: ``volume`` is the target.
    """

    volume: str
    axis: int = 2
    validation_slab: tuple[int, int] = (96, 128)
    validation_every: int = 4
    sigma_range: tuple[float, float] = (0.01, 0.10)
    sigma_map: bool = False
    noise_on_patches: bool = False
    gamma_range: tuple[float, float] = (1.0, 1.0)
    brightness_range: tuple[float, float] = (1.0, 1.0)
    cut_probability: float = 0.0
    scale_range: tuple[float, float] = (1.0, 1.0)
    synthetic_phantoms: int = 0
    extra_volumes: tuple[str, ...] = ()
    target: str | None = None

    def __post_init__(self) -> None:
        if not 0 < self.brightness_range[0] <= self.brightness_range[1]:
            raise ConfigError(f"mri_denoise.brightness_range: needs 0 < low <= high, got {self.brightness_range}")
        if not 0.0 <= self.cut_probability <= 1.0:
            raise ConfigError(f"mri_denoise.cut_probability: must be in [0, 1], got {self.cut_probability}")
        if not 0 < self.scale_range[0] <= self.scale_range[1]:
            raise ConfigError(f"mri_denoise.scale_range: needs 0 < low <= high, got {self.scale_range}")
        if self.scale_range != (1.0, 1.0) and not self.noise_on_patches:
            raise ConfigError("mri_denoise.scale_range: needs noise_on_patches: true (the patches are resampled, then noised)")
        if self.synthetic_phantoms < 0:
            raise ConfigError(f"mri_denoise.synthetic_phantoms: must be >= 0, got {self.synthetic_phantoms}")
        if not 0 < self.gamma_range[0] <= self.gamma_range[1]:
            raise ConfigError(f"mri_denoise.gamma_range: needs 0 < low <= high, got {self.gamma_range}")
        low, high = self.sigma_range
        if not 0 <= low <= high:
            raise ConfigError(f"mri_denoise.sigma_range: needs 0 <= low <= high, got {self.sigma_range}")
        start, stop = self.validation_slab
        if not 0 <= start < stop:
            raise ConfigError(f"mri_denoise.validation_slab: needs 0 <= start < stop, got {self.validation_slab}")
        if self.axis not in (0, 1, 2) or self.validation_every < 1:
            raise ConfigError("mri_denoise.axis must be 0, 1 or 2 and mri_denoise.validation_every >= 1")

    def resolved(self, base: Path) -> MRIDenoiseDataConfig:
        """``volume`` made absolute against ``base`` (the configuration's folder)."""
        def absolute(name: str) -> str:
            path = Path(name).expanduser()
            return str(path if path.is_absolute() else (base / path).resolve())

        return dataclasses.replace(
            self,
            volume=absolute(self.volume),
            target=None if self.target is None else absolute(self.target),
            extra_volumes=tuple(absolute(name) for name in self.extra_volumes),
        )


class RicianPairs(ImagePairSource):
    """Clean images ``(1, *spatial)`` (already divided by the scale); inputs get Rician noise per call.

    Args:
        images: clean images, each ``(*spatial)``.
        sigma_range: absolute σ range (in the units of ``images``).
        names: labels of the images.
        sigma_map: inputs are ``(2, *spatial)``: the noisy image and a constant map of its σ.
        noise_on_patches: training may draw the noise on patches alone (:meth:`patch_pair`).
        gamma_range: contrast augmentation ``x ↦ m·(x/m)^γ`` (``m``: the image maximum), ``log γ``
            uniform in ``log gamma_range``; applied before the noise.
        brightness_range: then ``x ↦ b·x``, ``log b`` uniform in ``log brightness_range``.
        cut_probability: then, with this probability, ``x ↦ x·𝟙[cut]`` (:func:`random_cut`), target too.
        scale_range: :meth:`patch_pair` resamples a region ``s_a`` times the patch side per axis
            (:func:`scaled_patch`), target too, before everything above.
        targets: training targets, one per image and of its shape (default: the images themselves).
            The noise is drawn on the image and the target is returned, with the same γ and
            brightness: a denoised copy of an averaged scan teaches the network to remove the
            scan's own residual noise instead of keeping it.
    """

    def __init__(
        self,
        images: list[torch.Tensor],
        sigma_range: tuple[float, float],
        names: list[str],
        sigma_map: bool = False,
        noise_on_patches: bool = False,
        gamma_range: tuple[float, float] = (1.0, 1.0),
        brightness_range: tuple[float, float] = (1.0, 1.0),
        targets: list[torch.Tensor] | None = None,
        cut_probability: float = 0.0,
        scale_range: tuple[float, float] = (1.0, 1.0),
    ) -> None:
        if not images:
            raise ConfigError("mri_denoise: no training or validation images (check validation_slab against the volume)")
        if targets is not None and [tuple(t.shape) for t in targets] != [tuple(i.shape) for i in images]:
            raise ConfigError("mri_denoise: every target must have the shape of its image")
        self._images = [image[None].to(torch.float32).contiguous() for image in images]
        self._targets = None if targets is None else [t[None].to(torch.float32).contiguous() for t in targets]
        self._maxima = [max(float(image.max()), 1e-12) for image in self._images]
        self.spatial_ndim = images[0].ndim
        self.sigma_range = sigma_range
        self._names = names
        self.sigma_map = sigma_map
        self.noise_on_patches = noise_on_patches
        self.gamma_range = gamma_range
        self.brightness_range = brightness_range
        self.cut_probability = cut_probability
        self.scale_range = scale_range

    def __len__(self) -> int:
        return len(self._images)

    def name(self, index: int) -> str:
        return self._names[index]

    def input_shape(self, index: int) -> tuple[int, ...]:
        return tuple(self._images[index].shape[1:])

    def factor(self, index: int) -> tuple[int, ...]:
        return (1,) * self.spatial_ndim

    def pair(self, index: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        target = None if self._targets is None else self._targets[index]
        return self._degrade(self._images[index], index, generator, target)

    def degrades_patches(self) -> bool:
        return self.noise_on_patches

    def patch_pair(
        self, index: int, start: Sequence[int], size: Sequence[int], generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.scale_range == (1.0, 1.0):
            target = None if self._targets is None else extract_patch(self._targets[index], start, size)
            return self._degrade(extract_patch(self._images[index], start, size), index, generator, target)
        scales = [_log_uniform(self.scale_range, generator) for _ in size]
        target = None if self._targets is None else scaled_patch(self._targets[index], start, size, scales)
        return self._degrade(scaled_patch(self._images[index], start, size, scales), index, generator, target)

    def _degrade(
        self, clean: torch.Tensor, index: int, generator: torch.Generator, target: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(noisy input, target) of ``clean`` ``(1, *spatial)``: σ drawn, then γ (if any), then noise.

        ``target`` (default ``clean``) gets the same γ and brightness as ``clean``.
        """
        low, high = self.sigma_range
        unit = float(torch.rand((), generator=generator, dtype=torch.float64))
        sigma = low + (high - low) * unit
        target = clean if target is None else target
        if self.gamma_range != (1.0, 1.0):
            gamma = _log_uniform(self.gamma_range, generator)
            maximum = self._maxima[index]
            clean = maximum * (clean.clamp_min(0.0) / maximum) ** gamma
            target = maximum * (target.clamp_min(0.0) / maximum) ** gamma
        if self.brightness_range != (1.0, 1.0):
            brightness = _log_uniform(self.brightness_range, generator)
            clean, target = clean * brightness, target * brightness
        if self.cut_probability > 0 and float(torch.rand((), generator=generator, dtype=torch.float64)) < self.cut_probability:
            keep = random_cut(tuple(clean.shape[1:]), generator).to(clean.dtype)[None]
            clean, target = clean * keep, target * keep
        noisy = add_rician_noise(clean, sigma, generator)
        return (with_sigma_map(noisy, sigma) if self.sigma_map else noisy), target.contiguous()


INTERPOLATION_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}
"""Spatial dimensions → the linear interpolation mode of ``torch.nn.functional.interpolate``."""
CUT_GRID = 8
""":func:`random_cut`: the random field is drawn on a grid ``CUT_GRID`` times coarser than the image."""
CUT_KEPT = (0.4, 0.8)


def random_cut(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """A random region with a smooth curved boundary: ``(*shape)`` bool, ``True`` inside.

    A Gaussian random field is drawn on a grid :data:`CUT_GRID` times coarser than ``shape`` (at least
    2 points a side), interpolated (bi/trilinear, corners aligned) to ``shape`` and thresholded at its
    ``1 − k`` quantile, ``k ~ U`` :data:`CUT_KEPT`: the region keeps 40–80 % of the voxels and its
    boundary bends on a scale of ~``CUT_GRID`` voxels.
    """
    coarse = tuple(max(2, -(-n // CUT_GRID)) for n in shape)
    field = torch.randn((1, 1, *coarse), generator=generator)
    smooth = torch.nn.functional.interpolate(field, size=shape, mode=INTERPOLATION_MODES[len(shape)], align_corners=True)[0, 0]
    kept = CUT_KEPT[0] + (CUT_KEPT[1] - CUT_KEPT[0]) * float(torch.rand((), generator=generator, dtype=torch.float64))
    values = smooth.flatten()
    dropped = min(values.numel() - 1, max(0, round((1.0 - kept) * values.numel())))
    return smooth > torch.kthvalue(values, dropped + 1).values if dropped > 0 else torch.ones_like(smooth, dtype=torch.bool)


def scaled_patch(image: torch.Tensor, start: Sequence[int], size: Sequence[int], scales: Sequence[float]) -> torch.Tensor:
    """A patch ``(C, *size)`` resampled from a region of ``round(size_a · scales_a)`` voxels of ``image`` ``(C, *spatial)``.

    The region is centred on the patch ``[start, start + size)`` and shifted (and, where the image is
    smaller, shrunk) to lie inside the image; it is resampled to ``size`` by tri/bilinear interpolation
    (voxel centres, ``align_corners=False``). ``scales`` of 1 give :func:`extract_patch` exactly.
    """
    region_start: list[int] = []
    region_size: list[int] = []
    for a, (first, side, scale) in enumerate(zip(start, size, scales, strict=True)):
        length = image.shape[1 + a]
        extent = min(length, max(1, round(side * scale)))
        centre = first + side / 2.0
        region_start.append(int(min(max(round(centre - extent / 2.0), 0), length - extent)))
        region_size.append(extent)
    region = extract_patch(image, region_start, region_size)
    if tuple(region_size) == tuple(size):
        return region
    return torch.nn.functional.interpolate(region[None], size=tuple(size), mode=INTERPOLATION_MODES[len(size)], align_corners=False)[0]


def _log_uniform(bounds: tuple[float, float], generator: torch.Generator) -> float:
    """A draw ``v`` with ``log v`` uniform in ``[log low, log high]``."""
    log_low, log_high = math.log(bounds[0]), math.log(bounds[1])
    return math.exp(log_low + (log_high - log_low) * float(torch.rand((), generator=generator, dtype=torch.float64)))


def with_sigma_map(image: torch.Tensor, sigma: float, channel_axis: int = 0) -> torch.Tensor:
    """``(C, *spatial)`` → ``(C + 1, *spatial)``: a constant channel ``σ`` appended (σ-conditioned input).

    ``channel_axis``: where the channels are (1 for a batch ``(N, C, *spatial)``).
    """
    return torch.cat([image, torch.full_like(image.narrow(channel_axis, 0, 1), float(sigma))], dim=channel_axis)


def _slices(
    volume: torch.Tensor, axis: int, indices: range, name: str, reference: torch.Tensor | None = None
) -> tuple[list[torch.Tensor], list[str]]:
    """Slices of ``volume`` whose slice of ``reference`` (default ``volume``) has enough tissue."""
    reference = volume if reference is None else reference
    images, names = [], []
    for index in indices:
        image = volume.select(axis, index)
        if float((reference.select(axis, index) > 0).float().mean()) >= MIN_BRAIN_FRACTION:
            images.append(image.contiguous())
            names.append(f"{name}[{axis}={index}]")
    return images, names


def synthetic_heads(count: int, spatial_ndim: int) -> tuple[list[torch.Tensor], list[str]]:
    """``count`` phantom heads of :data:`PHANTOM_SHAPE` (its last ``spatial_ndim`` sides), each divided
    by its :func:`intensity_scale` like the training volume."""
    images, names = [], []
    for index in range(count):
        seed = PHANTOM_FIRST_SEED + index
        image = torch.from_numpy(brain_phantom(PHANTOM_SHAPE[-spatial_ndim:], seed=seed)[0])
        images.append(image / intensity_scale(image))
        names.append(f"brain_phantom(seed={seed})")
    return images, names


TISSUE_FRACTION = 0.05
""":func:`tissue_crop`: voxels above this fraction of the robust maximum are tissue."""
CROP_MARGIN = 4


def tissue_crop(volume: torch.Tensor) -> torch.Tensor:
    """``volume`` ``(*spatial)`` cut to the bounding box of its voxels above :data:`TISSUE_FRACTION` of its
    :func:`intensity_scale`, with :data:`CROP_MARGIN` voxels around it (the whole volume if none is)."""
    box = bounding_box((volume > TISSUE_FRACTION * intensity_scale(volume)).numpy(), CROP_MARGIN)
    return volume if box is None else volume[box].contiguous()


def extra_training_images(config: MRIDenoiseDataConfig, spatial_ndim: int) -> tuple[list[torch.Tensor], list[str]]:
    """``config.extra_volumes``, each scaled and cropped (:func:`tissue_crop`): whole volumes (3-D) or
    their slices along ``config.axis`` with enough tissue (2-D)."""
    images: list[torch.Tensor] = []
    names: list[str] = []
    for name in config.extra_volumes:
        path = Path(name)
        volume = read_image(path).data.to(torch.float32)
        if volume.ndim != 3:
            raise InputError(path, f"has shape {tuple(volume.shape)}; mri_denoise.extra_volumes must be 3-D volumes")
        if not bool(torch.isfinite(volume).all()) or float(volume.max()) <= 0:
            raise InputError(path, "has no positive finite intensities; mri_denoise.extra_volumes must be clean images")
        volume = tissue_crop(volume / intensity_scale(volume))
        if spatial_ndim == 2:
            slices, slice_names = _slices(volume, config.axis, range(volume.shape[config.axis]), path.name)
            images += slices
            names += slice_names
        else:
            images.append(volume)
            names.append(path.name)
    return images, names


def mri_denoise_sources(config: MRIDenoiseDataConfig, spatial_ndim: int) -> tuple[RicianPairs, RicianPairs]:
    """Training and validation sources for ``spatial_ndim``-D patches (2: slices, 3: sub-volumes)."""
    path = Path(config.volume)
    volume = read_image(path).data.to(torch.float32)
    if volume.ndim != 3:
        raise InputError(path, f"has shape {tuple(volume.shape)}; the mri-denoise layout needs one 3-D volume")
    start, stop = config.validation_slab
    length = volume.shape[config.axis]
    if stop > length:
        raise ConfigError(f"mri_denoise.validation_slab: {config.validation_slab} exceeds the {length} slices of {path}")
    scale = intensity_scale(volume)
    maximum = float(volume.max()) / scale
    volume = volume / scale
    target = None
    if config.target is not None:
        target = read_image(Path(config.target)).data.to(torch.float32) / scale
        if target.shape != volume.shape:
            raise InputError(Path(config.target), f"has shape {tuple(target.shape)}; the target must have the volume's {tuple(volume.shape)}")
    sigma_range = (config.sigma_range[0] * maximum, config.sigma_range[1] * maximum)
    phantoms, phantom_names = synthetic_heads(config.synthetic_phantoms, spatial_ndim)
    extras, extra_names = extra_training_images(config, spatial_ndim)
    phantoms, phantom_names = phantoms + extras, phantom_names + extra_names  # each its own target
    training, names, validation, validation_names = _pieces(volume, config, spatial_ndim, path.name)
    training_targets = validation_targets = None
    if target is not None:
        training_targets, _, validation_targets, _ = _pieces(target, config, spatial_ndim, path.name, volume)
        training_targets = training_targets + phantoms
    augmentation = (config.noise_on_patches, config.gamma_range, config.brightness_range)
    return (RicianPairs(training + phantoms, sigma_range, names + phantom_names, config.sigma_map, *augmentation, training_targets,
                        config.cut_probability, config.scale_range),
            RicianPairs(validation, sigma_range, validation_names, config.sigma_map, targets=validation_targets))


def _pieces(
    volume: torch.Tensor, config: MRIDenoiseDataConfig, spatial_ndim: int, name: str, reference: torch.Tensor | None = None
) -> tuple[list[torch.Tensor], list[str], list[torch.Tensor], list[str]]:
    """(training images, names, validation images, names): slices (2-D) or the sub-volumes beside the slab (3-D).

    2-D slices are kept where ``reference`` (default ``volume``; a target is cut like its image) has
    enough tissue.
    """
    start, stop = config.validation_slab
    length = volume.shape[config.axis]
    if spatial_ndim == 2:
        below, below_names = _slices(volume, config.axis, range(0, start), name, reference)
        above, above_names = _slices(volume, config.axis, range(stop, length), name, reference)
        validation, validation_names = _slices(volume, config.axis, range(start, stop, config.validation_every), name, reference)
        return below + above, below_names + above_names, validation, validation_names
    chunks = [(a, b) for a, b in ((0, start), (stop, length)) if b - a >= 16]
    training = [volume.narrow(config.axis, a, b - a).contiguous() for a, b in chunks]
    names = [f"{name}[{config.axis}={a}:{b}]" for a, b in chunks]
    validation = [volume.narrow(config.axis, start, stop - start).contiguous()]
    return training, names, validation, [f"{name}[{config.axis}={start}:{stop}]"]
