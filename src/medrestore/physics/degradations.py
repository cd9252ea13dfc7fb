"""Degradations in three tiers, and the catalogue that builds them by name.

1. Pure functions (:mod:`medrestore.physics.noise`, :mod:`medrestore.physics.blur`).
2. Deterministic transforms: frozen dataclasses holding every parameter
   (:class:`GaussianNoise`, :class:`RicianNoise`, :class:`PoissonNoise`, :class:`Speckle`,
   :class:`BlurDownsample`, :class:`GammaCamera`, :class:`Compose`). ``transform(x, generator)``
   degrades a tensor; ``transform.apply_image(image, seed)`` degrades an
   :class:`~medrestore.core.image.Image` and keeps its geometry right (parameters that default
   to the image's own, such as a pixel size, are filled in by ``resolve_for_image``);
   ``transform.record(seed)`` is a JSON-ready dict
   ``{"kind": ..., <parameters>, "seed": ...}`` that :func:`degradation_from_record` turns
   back into the same transform.
3. Random samplers (``Random*``): ranges of parameters; ``sampler.sample(generator)`` draws
   one deterministic transform.

Adding a kind: write the dataclass (fields = parameters, with type hints and checks in
``__post_init__``) and add one :class:`CatalogueEntry` line to :data:`CATALOGUE`;
:func:`build_degradation` validates parameter names and types from the dataclass fields.

Example:
    >>> transform = build_degradation("rician", {"sigma": 0.03, "relative": True})
    >>> transform.record(seed=7)
    {'kind': 'rician', 'sigma': 0.03, 'relative': True, 'seed': 7}
"""

from __future__ import annotations

import abc
import dataclasses
import math
import numbers
import typing
from collections.abc import Mapping, Sequence
from types import MappingProxyType, NoneType, UnionType
from typing import Any, ClassVar

import torch

from medrestore.core.errors import ConfigError, InputError
from medrestore.core.image import Image, from_planar_frames, planar_frames
from medrestore.core.random import make_generator
from medrestore.physics.blur import blur_downsample, default_fwhm, downsample_affine
from medrestore.physics.gamma_camera import (
    DEFAULT_COLLIMATOR,
    CountLevel,
    PlanarAcquisition,
    bin_counts,
    collimator_name,
    count_scale,
    detector_response,
    isotope_by_name,
)
from medrestore.physics.noise import (
    SPECKLE_FORMS,
    add_gaussian_noise,
    add_poisson_noise,
    add_rician_noise,
    add_speckle,
    resolve_sigma,
)
from medrestore.physics.scanner import ScannerProfile, scanner_profile, simulate_scanner

ParameterValue = float | int | str | bool | None


def _check_number(kind: str, name: str, value: object, minimum: float, strictly: bool = False) -> float:
    """``float(value)`` if it is a finite real number ``>= minimum`` (``> minimum`` when ``strictly``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{kind}: {name} must be a number, got {value!r}")
    number = float(value)
    below = number <= minimum if strictly else number < minimum
    if not math.isfinite(number) or below:
        bound = ">" if strictly else ">="
        raise ConfigError(f"{kind}: {name} must be a finite number {bound} {minimum:g}, got {value!r}")
    return number


def _as_floating(data: torch.Tensor) -> torch.Tensor:
    """Floating-point data keeps its dtype; integer data is computed in float32."""
    return data if data.is_floating_point() else data.to(torch.float32)


class Degradation(abc.ABC):
    """A deterministic degradation: all parameters fixed, randomness only from the generator.

    Subclasses are frozen dataclasses whose fields are exactly the recorded parameters.
    """

    kind: ClassVar[str]

    @abc.abstractmethod
    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Degrade a tensor (never modified); see each subclass for its shape convention."""

    def transform_image(self, image: Image, generator: torch.Generator) -> Image:
        """Degrade ``image`` (all frames) with ``generator``; geometry and metadata are kept.

        Integer pixel data is computed in float32; floating data keeps its dtype.
        """
        return image.with_data(self(_as_floating(image.data), generator))

    def apply_image(self, image: Image, seed: int) -> Image:
        """:meth:`transform_image` with a generator seeded by ``seed`` (on the image's device)."""
        return self.transform_image(image, make_generator(seed, image.data.device))

    def resolve_for_image(self, image: Image) -> Degradation:
        """The transform with parameters that default to the image's own (pixel size) filled in.

        Record the result, not ``self``, so the record states the values actually used. The
        default returns ``self``.
        """
        return self

    def parameters(self) -> dict[str, Any]:
        """The parameters as a JSON-ready dict (field name → value)."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}  # type: ignore[arg-type]

    def describe(self) -> dict[str, Any]:
        """``{"kind": ..., <parameters>}``."""
        return {"kind": self.kind, **self.parameters()}

    def record(self, seed: int | None = None) -> dict[str, Any]:
        """``{"kind": ..., <parameters>, "seed": seed}``: exactly how an output was made."""
        return {**self.describe(), "seed": seed}


@dataclasses.dataclass(frozen=True)
class GaussianNoise(Degradation):
    """Additive white Gaussian noise ``x + σ n`` (:func:`~medrestore.physics.noise.add_gaussian_noise`).

    Attributes:
        sigma: standard deviation; absolute, or a fraction of ``max|x|`` when ``relative``.
        relative: read ``sigma`` as a fraction of the image maximum (over all frames).
    """

    kind: ClassVar[str] = "gaussian"
    sigma: float
    relative: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "sigma", _check_number(self.kind, "sigma", self.sigma, 0.0))

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return add_gaussian_noise(x, resolve_sigma(x, self.sigma, self.relative), generator)


@dataclasses.dataclass(frozen=True)
class RicianNoise(Degradation):
    """Magnitude-MRI noise ``|x + σ n₁ + iσ n₂|`` (:func:`~medrestore.physics.noise.add_rician_noise`).

    Attributes:
        sigma: standard deviation of each Gaussian channel; absolute or relative to ``max|x|``.
        relative: read ``sigma`` as a fraction of the image maximum (over all frames).
    """

    kind: ClassVar[str] = "rician"
    sigma: float
    relative: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "sigma", _check_number(self.kind, "sigma", self.sigma, 0.0))

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return add_rician_noise(x, resolve_sigma(x, self.sigma, self.relative), generator)


@dataclasses.dataclass(frozen=True)
class PoissonNoise(Degradation):
    """Poisson counting noise, ``peak_counts`` expected at the maximum.

    See :func:`~medrestore.physics.noise.add_poisson_noise`.

    Attributes:
        peak_counts: expected counts at the image maximum (over all frames), ``> 0``.
        return_counts: output counts instead of values rescaled to the input's units.
    """

    kind: ClassVar[str] = "poisson"
    peak_counts: float
    return_counts: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "peak_counts", _check_number(self.kind, "peak_counts", self.peak_counts, 0.0, strictly=True)
        )

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return add_poisson_noise(x, self.peak_counts, generator, self.return_counts)


@dataclasses.dataclass(frozen=True)
class Speckle(Degradation):
    """Multiplicative speckle plus optional additive Gaussian noise (:func:`~medrestore.physics.noise.add_speckle`).

    Attributes:
        looks: number of looks ``L > 0`` (speckle variance ``1/L`` in intensity).
        form: ``"intensity"`` (Gamma multiplier) or ``"amplitude"`` (Nakagami multiplier).
        sigma: additive Gaussian standard deviation (0 = none); absolute or relative.
        relative: read ``sigma`` as a fraction of the image maximum (before speckle).
    """

    kind: ClassVar[str] = "speckle"
    looks: float
    form: str = "intensity"
    sigma: float = 0.0
    relative: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "looks", _check_number(self.kind, "looks", self.looks, 0.0, strictly=True))
        object.__setattr__(self, "sigma", _check_number(self.kind, "sigma", self.sigma, 0.0))
        if self.form not in SPECKLE_FORMS:
            raise ConfigError(f"{self.kind}: form must be one of {SPECKLE_FORMS}, got {self.form!r}")

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        additive_sigma = resolve_sigma(x, self.sigma, self.relative)
        return add_speckle(x, self.looks, generator, self.form, additive_sigma)


@dataclasses.dataclass(frozen=True)
class BlurDownsample(Degradation):
    """Gaussian blur and decimation by an integer factor (:func:`~medrestore.physics.blur.blur_downsample`).

    Attributes:
        factor: integer factor ``k >= 1`` on every spatial axis.
        fwhm: blur FWHM in input pixels; ``None`` becomes the default ``k`` (recorded as a number).
        spatial_ndim: spatial axes of a *tensor* given to ``__call__`` (its trailing axes;
            ``None`` = 2). :meth:`apply_image` uses the image's own ``spatial_ndim``.

    On an image, each frame is downsampled, the affine's spatial columns are multiplied by
    ``k`` and its origin moves to the first block's centre, so every output voxel keeps
    its world position (:func:`~medrestore.physics.blur.downsample_affine`).
    """

    kind: ClassVar[str] = "blur-downsample"
    factor: int
    fwhm: float | None = None
    spatial_ndim: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.factor, bool) or not isinstance(self.factor, int) or self.factor < 1:
            raise ConfigError(f"{self.kind}: factor must be an integer >= 1, got {self.factor!r}")
        fwhm = default_fwhm(self.factor) if self.fwhm is None else self.fwhm
        object.__setattr__(self, "fwhm", _check_number(self.kind, "fwhm", fwhm, 0.0, strictly=True))
        if self.spatial_ndim is not None and self.spatial_ndim not in (1, 2, 3):
            raise ConfigError(f"{self.kind}: spatial_ndim must be 1, 2, 3 or None, got {self.spatial_ndim!r}")

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``x``: ``(*batch, *spatial)``; returns ``(*batch, *⌊spatial/k⌋)``. ``generator`` is unused."""
        return blur_downsample(x, self.factor, self.fwhm, self.spatial_ndim or 2)

    def transform_image(self, image: Image, generator: torch.Generator) -> Image:
        data = _as_floating(image.data)
        has_frames = data.ndim > image.spatial_ndim
        frames_first = data.movedim(-1, 0) if has_frames else data
        reduced = blur_downsample(frames_first, self.factor, self.fwhm, image.spatial_ndim)
        reduced = reduced.movedim(0, -1).contiguous() if has_frames else reduced
        affine = downsample_affine(image.affine, self.factor, image.spatial_ndim)
        return image.with_data(reduced, affine=affine)


PAPER_PHANTOM_PEAK_COUNTS = 400.0
"""A count level of the paper-phantom study: its minimum of 25 counts per 0.67-mm pixel,
collected over a pixel 4 × 4 times larger (pass it as ``peak_counts`` to simulate that study)."""

DEFAULT_GAMMA_CAMERA_PIXEL_SIZE_MM = 0.67
"""Input pixel size assumed for a bare tensor: the paper-phantom study's 512 matrix at zoom 1.78."""


def recorded_collimator(image: Image) -> tuple[str | None, str]:
    """The collimator an image's file records, as ``(model name or None, where the collimator used comes from)``.

    An NM DICOM file names it in its first detector's ``CollimatorGridName`` (PS3.3 C.8.4.11): ``LEHR``, ``LEAP``...,
    or ``INTR``/``NONE`` for an intrinsic acquisition (:data:`~medrestore.physics.gamma_camera.INTRINSIC`). No name, or
    one the camera model does not know, gives ``None`` and says that
    :data:`~medrestore.physics.gamma_camera.DEFAULT_COLLIMATOR` is taken instead.
    """
    detectors = (image.metadata.get("dicom") or {}).get("DetectorInformationSequence") or []
    stored = detectors[0].get("CollimatorGridName") if detectors and isinstance(detectors[0], Mapping) else None
    name = stored.strip() if isinstance(stored, str) else ""
    if not name:
        return None, f"default {DEFAULT_COLLIMATOR} (the file names no collimator)"
    try:
        return collimator_name(name), f"the file's CollimatorGridName {name!r}"
    except ConfigError:
        return None, f"default {DEFAULT_COLLIMATOR}: the file's CollimatorGridName {name!r} is not a modelled collimator"


def binned_region_total(x: torch.Tensor, scale: int) -> float:
    """``Σ x`` over the part of the last two axes that binning by ``scale`` keeps (float64 sum)."""
    height, width = (x.shape[-2] // scale) * scale, (x.shape[-1] // scale) * scale
    return float(x[..., :height, :width].sum(dtype=torch.float64))


@dataclasses.dataclass(frozen=True)
class GammaCamera(Degradation):
    """A planar gamma-camera acquisition of an activity image (:mod:`~medrestore.physics.gamma_camera`).

    ``counts ~ Poisson(c · bin_k(S · a ⊛ h_Rs(z)))``: Gaussian system response of FWHM
    ``R_s(z)`` for the collimator, isotope and source distance, optional scatter, detector
    binning by ``scale`` (sums: counts add) and a count level fixed by ``peak_counts`` (at the
    brightest detector pixel, before noise), by ``total_counts``, or — when neither is given —
    by the input itself: its values are read as counts and the expected binned counts sum to
    the input's total over the binned region (``c = Σ a / Σ bin_k(S · a ⊛ h)``), i.e. the same
    acquisition seen through a matrix ``k`` times coarser. A restoration that keeps the total
    counts of the coarse image therefore returns to the input's count scale, which is what
    comparing a restored scintigram with its original needs. The defaults are the ×4
    super-resolution setting: N × N activity → N/4 × N/4 counts, LEGP collimator at 10 cm,
    Tc-99m, the input's total counts (use ``peak_counts=400`` for the paper-phantom study's
    level, :data:`PAPER_PHANTOM_PEAK_COUNTS`).

    Attributes:
        scale: integer binning factor ``k`` from the input grid to the detector matrix.
        collimator: ``LEHR``, ``LEGP``, ``LEUHR``, ``LEHS``, ``MEGP`` or ``HEGP`` (case-insensitive), or ``INTR``
            (``NONE``): an intrinsic acquisition, the camera's intrinsic resolution alone. ``None``: the one the
            image's file records (:func:`recorded_collimator`, filled in by :meth:`resolve_for_image`), else
            :data:`~medrestore.physics.gamma_camera.DEFAULT_COLLIMATOR`.
        distance_mm: source-to-collimator distance ``z``.
        isotope: ``Tc-99m``, ``I-123``, ``Tl-201`` or ``In-111``.
        pixel_size_mm: input pixel size; ``None`` = the image's spacing (filled in by
            :meth:`resolve_for_image`) or 0.67 mm for a bare tensor.
        peak_counts: expected counts at the maximum.
        total_counts: expected total counts instead. Neither: the input's total (see above);
            :meth:`resolve_for_image` records that total as ``total_counts``.
        scatter_fraction: fraction of counts scattered (broad 50-mm Gaussian response).
        return_counts: output counts (default) or counts divided by ``c · S · k²``, i.e. the
            blurred, binned, noisy activity in the input's units (block means).

    A tensor ``(*batch, H, W)`` gives ``(*batch, ⌊H/k⌋, ⌊W/k⌋)``; the count level applies to
    the whole tensor. On an image every planar frame (a 2-D image's trailing frames, or a 3-D
    image's planes along its stack axis, :func:`~medrestore.core.image.planar_frames`: an NM multi-frame
    file's views, windows or time frames)
    is acquired with the same count scale, the affine's in-plane columns are multiplied by ``k``
    (origin at the first block's centre) and the modality becomes ``nm``.
    """

    kind: ClassVar[str] = "gamma-camera"
    scale: int = 4
    collimator: str | None = None
    distance_mm: float = 100.0
    isotope: str = "Tc-99m"
    pixel_size_mm: float | None = None
    peak_counts: float | None = None
    total_counts: float | None = None
    scatter_fraction: float = 0.0
    return_counts: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.scale, bool) or not isinstance(self.scale, int) or self.scale < 1:
            raise ConfigError(f"{self.kind}: scale must be an integer >= 1, got {self.scale!r}")
        if self.collimator is not None:
            object.__setattr__(self, "collimator", collimator_name(self.collimator))
        object.__setattr__(self, "isotope", isotope_by_name(self.isotope).name)
        object.__setattr__(self, "distance_mm", _check_number(self.kind, "distance_mm", self.distance_mm, 0.0))
        if self.pixel_size_mm is not None:
            size = _check_number(self.kind, "pixel_size_mm", self.pixel_size_mm, 0.0, strictly=True)
            object.__setattr__(self, "pixel_size_mm", size)
        if self.peak_counts is not None and self.total_counts is not None:
            raise ConfigError(f"{self.kind}: give peak_counts or total_counts, not both")
        for name in ("peak_counts", "total_counts"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, _check_number(self.kind, name, getattr(self, name), 0.0, strictly=True))
        fraction = _check_number(self.kind, "scatter_fraction", self.scatter_fraction, 0.0)
        object.__setattr__(self, "scatter_fraction", fraction)
        _ = self.acquisition  # validates the scatter fraction and septal penetration

    @property
    def acquisition(self) -> PlanarAcquisition:
        """Collimator (:data:`~medrestore.physics.gamma_camera.DEFAULT_COLLIMATOR` while unresolved), isotope, distance
        and scatter as a :class:`PlanarAcquisition`."""
        return PlanarAcquisition(self.collimator or DEFAULT_COLLIMATOR, self.isotope, self.distance_mm, self.scatter_fraction)

    @property
    def keeps_input_total(self) -> bool:
        """Whether the count level is the input's own total (neither level given)."""
        return self.peak_counts is None and self.total_counts is None

    def count_level(self, x: torch.Tensor) -> CountLevel:
        """The count level for input ``x``: the given one, or ``Σ x`` over the binned region."""
        if not self.keeps_input_total:
            return CountLevel(peak_counts=self.peak_counts, total_counts=self.total_counts)
        total = binned_region_total(x, self.scale)
        if not (math.isfinite(total) and total > 0):
            raise InputError(None, f"the input holds no counts to keep (its total is {total:g})")
        return CountLevel(total_counts=total)

    def _expected(self, x: torch.Tensor) -> tuple[torch.Tensor, float]:
        """Expected counts ``c · bin_k(S · a ⊛ h)`` of ``x (*batch, H, W)`` and the count scale ``c``."""
        pixel = DEFAULT_GAMMA_CAMERA_PIXEL_SIZE_MM if self.pixel_size_mm is None else self.pixel_size_mm
        data = _as_floating(x)
        rate = bin_counts(detector_response(data, pixel, self.acquisition), self.scale)
        scale = count_scale(rate, self.count_level(data))
        return rate * scale, scale

    def expected_counts(self, x: torch.Tensor) -> torch.Tensor:
        """The noise-free acquisition of non-negative ``x (*batch, H, W)``: expected counts ``(*batch, ⌊H/k⌋, ⌊W/k⌋)``
        (what :meth:`__call__` draws its Poisson counts from)."""
        return self._expected(x)[0]

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``x``: non-negative ``(*batch, H, W)``; returns counts ``(*batch, ⌊H/k⌋, ⌊W/k⌋)``."""
        expected, scale = self._expected(x)
        counts = torch.poisson(expected, generator=generator)
        return counts if self.return_counts else counts / (scale * self.acquisition.sensitivity * self.scale**2)

    def resolve_for_image(self, image: Image) -> GammaCamera:
        """Fill ``pixel_size_mm`` from the image's in-plane spacing (square pixels required), ``collimator`` from
        the image's file (:func:`recorded_collimator`, else
        :data:`~medrestore.physics.gamma_camera.DEFAULT_COLLIMATOR`) and, when no count level is given,
        ``total_counts`` from the image's total over the binned region (all frames), so the record states the
        values used. The in-plane axes are those of :func:`~medrestore.core.image.planar_frames`."""
        resolved = self
        frames, axes = planar_frames(image)
        if self.collimator is None:
            resolved = dataclasses.replace(resolved, collimator=recorded_collimator(image)[0] or DEFAULT_COLLIMATOR)
        if self.pixel_size_mm is None:
            rows, columns = (image.spacing[axis] for axis in axes)
            if abs(rows - columns) > 1e-3 * max(rows, columns):
                raise InputError(None, f"gamma-camera needs square pixels; the spacing is {rows:g} x {columns:g} mm")
            resolved = dataclasses.replace(resolved, pixel_size_mm=float(rows))
        if self.keeps_input_total:
            data = _as_floating(frames)
            total = binned_region_total(data, self.scale)
            if math.isfinite(total) and total > 0 and float(data.min()) >= 0:
                resolved = dataclasses.replace(resolved, total_counts=total)
        return resolved

    def transform_image(self, image: Image, generator: torch.Generator) -> Image:
        """Every planar frame of ``image`` (:func:`~medrestore.core.image.planar_frames`: a 2-D image and its
        frames, or a 3-D stack of planar frames such as an NM multi-frame file) acquired with one count scale."""
        resolved = self.resolve_for_image(image)
        frames, axes = planar_frames(image)
        counts = resolved(_as_floating(frames), generator)
        affine = downsample_affine(image.affine, self.scale, image.spatial_ndim, axes)
        return image.with_data(from_planar_frames(image, counts), affine=affine, modality="nm")


@dataclasses.dataclass(frozen=True)
class Compose(Degradation):
    """Apply ``transforms`` in order, all drawing from the same generator.

    Recorded as ``{"kind": "compose", "transforms": [<child descriptions>], "seed": ...}``.
    """

    kind: ClassVar[str] = "compose"
    transforms: tuple[Degradation, ...]

    def __post_init__(self) -> None:
        transforms = tuple(self.transforms)
        for transform in transforms:
            if not isinstance(transform, Degradation):
                raise ConfigError(f"compose: {transform!r} is not a degradation")
        object.__setattr__(self, "transforms", transforms)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        for transform in self.transforms:
            x = transform(x, generator)
        return x

    def transform_image(self, image: Image, generator: torch.Generator) -> Image:
        for transform in self.transforms:
            image = transform.transform_image(image, generator)
        return image

    def resolve_for_image(self, image: Image) -> Compose:
        """Each child resolved against the image it will receive (after the previous children)."""
        resolved: list[Degradation] = []
        for index, transform in enumerate(self.transforms):
            resolved.append(transform.resolve_for_image(image))
            if index + 1 < len(self.transforms):  # the next child sees this one's output geometry
                image = resolved[-1].transform_image(image, make_generator(0, image.data.device))
        return Compose(tuple(resolved))

    def parameters(self) -> dict[str, Any]:
        return {"transforms": [transform.describe() for transform in self.transforms]}


@dataclasses.dataclass(frozen=True)
class ScannerAppearance(Degradation):
    """The look of scanner ``a`` (1.5 T-like) or ``b`` (3 T-like) (:mod:`~medrestore.physics.scanner`).

    Contrast curve, local (occipital) hyperintensity, bias field, blur and correlated Rician
    noise, in that order. Every appearance parameter left ``None`` takes the scanner's profile
    value (:data:`~medrestore.physics.scanner.PROFILES`) and is recorded as that number.

    A tensor is read as ``(*batch, H, W)`` slices in display orientation (rows anterior →
    posterior). On a 2-D image the same holds; a 3-D (RAS+) volume is simulated axial slice by
    axial slice (its third axis), each slice turned to display orientation and back.

    Attributes:
        scanner: ``"a"`` or ``"b"``.
        gamma: contrast-curve exponent ``γ``. gain: global gain ``s``.
        noise_sigma: Rician σ relative to the slice's robust brain maximum.
        noise_correlation: noise correlation width in pixels (0 = white).
        bias_strength, bias_angle: bias field ``β`` and its direction ``θ`` (radians).
        blur_fwhm: point-spread FWHM in pixels (0 = none).
        hyperintensity: relative amplitude ``a`` of the posterior bump (0 = none).
        hyperintensity_width: bump width as a fraction of the slice size.
    """

    kind: ClassVar[str] = "scanner"
    scanner: str = "a"
    gamma: float | None = None
    gain: float | None = None
    noise_sigma: float | None = None
    noise_correlation: float | None = None
    bias_strength: float | None = None
    bias_angle: float | None = None
    blur_fwhm: float | None = None
    hyperintensity: float | None = None
    hyperintensity_width: float | None = None

    def __post_init__(self) -> None:
        profile = scanner_profile(self.scanner)
        object.__setattr__(self, "scanner", self.scanner.lower())
        for field in dataclasses.fields(ScannerProfile):
            value = getattr(self, field.name)
            value = getattr(profile, field.name) if value is None else value
            strictly = field.name in ("gamma", "gain", "hyperintensity_width")
            minimum = -math.inf if field.name == "bias_angle" else 0.0
            object.__setattr__(self, field.name, _check_number(self.kind, field.name, value, minimum, strictly))

    @property
    def profile(self) -> ScannerProfile:
        """The resolved appearance parameters."""
        return ScannerProfile(**{field.name: getattr(self, field.name) for field in dataclasses.fields(ScannerProfile)})

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return simulate_scanner(x, self.profile, generator)

    def transform_image(self, image: Image, generator: torch.Generator) -> Image:
        data = _as_floating(image.data)
        if data.ndim != image.spatial_ndim:
            raise InputError(None, f"scanner simulation takes one 2-D slice or 3-D volume, got shape {tuple(data.shape)}")
        if image.spatial_ndim == 2:
            return image.with_data(self(data, generator))
        slices = data.permute(2, 1, 0).flip(1)  # (Z, Y, X) with rows anterior → posterior
        simulated = self(slices.contiguous(), generator)
        return image.with_data(simulated.flip(1).permute(2, 1, 0).contiguous())


# -- catalogue -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CatalogueEntry:
    """One degradation kind: its transform class, the modality it models, a one-line summary."""

    kind: str
    transform: type[Degradation]
    modality: str
    description: str


CATALOGUE: Mapping[str, CatalogueEntry] = MappingProxyType(
    {
        entry.kind: entry
        for entry in (
            CatalogueEntry("gaussian", GaussianNoise, "any", "additive white Gaussian noise"),
            CatalogueEntry("rician", RicianNoise, "mri", "Rician noise of magnitude MR images"),
            CatalogueEntry("poisson", PoissonNoise, "nm", "Poisson counting noise at a given peak count"),
            CatalogueEntry("speckle", Speckle, "oct", "multiplicative speckle (Gamma / Nakagami)"),
            CatalogueEntry("blur-downsample", BlurDownsample, "any", "Gaussian blur and integer decimation"),
            CatalogueEntry("gamma-camera", GammaCamera, "nm", "planar gamma camera: collimator, binning, counts"),
            CatalogueEntry("scanner", ScannerAppearance, "mri", "MRI scanner appearance a (1.5 T-like) / b (3 T-like)"),
        )
    }
)
DEGRADATION_KINDS: tuple[str, ...] = tuple(CATALOGUE)


def catalogue_entry(kind: str) -> CatalogueEntry:
    """The entry for ``kind``; :class:`ConfigError` naming the known kinds otherwise."""
    try:
        return CATALOGUE[kind]
    except KeyError:
        raise ConfigError(f"unknown degradation kind {kind!r}; known kinds: {', '.join(DEGRADATION_KINDS)}") from None


def parameter_types(kind: str) -> dict[str, Any]:
    """Parameter name → type annotation (e.g. ``float``, ``int | None``) for ``kind``, in field order."""
    transform = catalogue_entry(kind).transform
    hints = typing.get_type_hints(transform)
    return {field.name: hints[field.name] for field in dataclasses.fields(transform)}  # type: ignore[arg-type]


def required_parameters(kind: str) -> tuple[str, ...]:
    """Names of the parameters ``kind`` cannot do without (no default)."""
    transform = catalogue_entry(kind).transform
    return tuple(
        field.name
        for field in dataclasses.fields(transform)  # type: ignore[arg-type]
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
    )


def _allowed_types(annotation: Any) -> tuple[type, ...]:
    if isinstance(annotation, UnionType) or typing.get_origin(annotation) is typing.Union:
        return typing.get_args(annotation)
    return (annotation,)


def _coerce(kind: str, name: str, value: object, annotation: Any) -> ParameterValue:
    """Check ``value`` against the field's annotation; integral floats are accepted for ints."""
    allowed = _allowed_types(annotation)
    if value is None and NoneType in allowed:
        return None
    if bool in allowed and isinstance(value, bool):
        return value
    number = float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else None
    if int in allowed and number is not None and math.isfinite(number) and number.is_integer():
        return int(number)
    if float in allowed and number is not None:
        return number
    if str in allowed and isinstance(value, str):
        return value
    names = " or ".join("None" if t is NoneType else t.__name__ for t in allowed)
    raise ConfigError(f"{kind}: parameter {name!r} must be {names}, got {value!r}")


def build_degradation(kind: str, parameters: Mapping[str, ParameterValue]) -> Degradation:
    """Build the deterministic transform of ``kind`` from named parameters.

    Raises:
        ConfigError: unknown kind, unknown or missing parameter, or a value of the wrong type
            or out of range; the message names the kind and the parameter.

    Example:
        >>> build_degradation("blur-downsample", {"factor": 2})
        BlurDownsample(factor=2, fwhm=2.0, spatial_ndim=None)
    """
    types = parameter_types(kind)
    unknown = sorted(set(parameters) - set(types))
    if unknown:
        raise ConfigError(
            f"{kind}: unknown parameter(s) {', '.join(map(repr, unknown))}; it takes {', '.join(types)}"
        )
    missing = [name for name in required_parameters(kind) if name not in parameters]
    if missing:
        raise ConfigError(f"{kind}: missing parameter(s) {', '.join(map(repr, missing))}")
    values = {name: _coerce(kind, name, value, types[name]) for name, value in parameters.items()}
    return catalogue_entry(kind).transform(**values)


def degradation_from_record(record: Mapping[str, Any]) -> tuple[Degradation, int | None]:
    """Inverse of :meth:`Degradation.record`: ``(transform, seed)`` (``compose`` included)."""
    if "kind" not in record:
        raise ConfigError(f"degradation record has no 'kind': {dict(record)!r}")
    seed = record.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ConfigError(f"degradation record seed must be an integer or null, got {seed!r}")
    parameters = {name: value for name, value in record.items() if name not in ("kind", "seed")}
    if record["kind"] != Compose.kind:
        return build_degradation(str(record["kind"]), parameters), seed
    children = parameters.get("transforms")
    if set(parameters) != {"transforms"} or not isinstance(children, Sequence) or isinstance(children, str):
        raise ConfigError("compose: the record must hold exactly a 'transforms' list")
    return Compose(tuple(degradation_from_record(child)[0] for child in children)), seed


# -- random samplers -------------------------------------------------------------------------


def _check_range(name: str, bounds: Sequence[float], minimum: float, strictly: bool = False) -> tuple[float, float]:
    if isinstance(bounds, str) or len(bounds) != 2:
        raise ConfigError(f"{name} must be a pair (low, high), got {bounds!r}")
    low, high = (_check_number("range", name, value, minimum, strictly) for value in bounds)
    if low > high:
        raise ConfigError(f"{name} must have low <= high, got {bounds!r}")
    return low, high


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    """One draw from ``U[low, high]`` (always consumes one number, even when ``low == high``)."""
    unit = float(torch.rand((), generator=generator, dtype=torch.float64, device=generator.device))
    return min(high, low + (high - low) * unit)


def _log_uniform(generator: torch.Generator, low: float, high: float) -> float:
    return min(high, max(low, math.exp(_uniform(generator, math.log(low), math.log(high)))))


class RandomDegradation(abc.ABC):
    """A family of degradations; :meth:`sample` draws one deterministic transform."""

    @abc.abstractmethod
    def sample(self, generator: torch.Generator) -> Degradation:
        """Draw parameters with ``generator`` and return the deterministic transform."""


@dataclasses.dataclass(frozen=True)
class RandomGaussianNoise(RandomDegradation):
    """:class:`GaussianNoise` with ``sigma ~ U[sigma_range]``."""

    sigma_range: tuple[float, float]
    relative: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "sigma_range", _check_range("sigma_range", self.sigma_range, 0.0))

    def sample(self, generator: torch.Generator) -> GaussianNoise:
        return GaussianNoise(_uniform(generator, *self.sigma_range), self.relative)


@dataclasses.dataclass(frozen=True)
class RandomRicianNoise(RandomDegradation):
    """:class:`RicianNoise` with ``sigma ~ U[sigma_range]``."""

    sigma_range: tuple[float, float]
    relative: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "sigma_range", _check_range("sigma_range", self.sigma_range, 0.0))

    def sample(self, generator: torch.Generator) -> RicianNoise:
        return RicianNoise(_uniform(generator, *self.sigma_range), self.relative)


@dataclasses.dataclass(frozen=True)
class RandomPoissonNoise(RandomDegradation):
    """:class:`PoissonNoise` with peak counts drawn log-uniformly (default) or uniformly from ``counts_range``.

    Log-uniform sampling gives each decade of counts (dose) the same probability.
    """

    counts_range: tuple[float, float]
    log_uniform: bool = True
    return_counts: bool = False

    def __post_init__(self) -> None:
        bounds = _check_range("counts_range", self.counts_range, 0.0, strictly=True)
        object.__setattr__(self, "counts_range", bounds)

    def sample(self, generator: torch.Generator) -> PoissonNoise:
        draw = _log_uniform if self.log_uniform else _uniform
        return PoissonNoise(draw(generator, *self.counts_range), self.return_counts)


@dataclasses.dataclass(frozen=True)
class RandomSpeckle(RandomDegradation):
    """:class:`Speckle` with ``looks ~ U[looks_range]`` and additive ``sigma ~ U[sigma_range]``."""

    looks_range: tuple[float, float]
    form: str = "intensity"
    sigma_range: tuple[float, float] = (0.0, 0.0)
    relative: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "looks_range", _check_range("looks_range", self.looks_range, 0.0, strictly=True))
        object.__setattr__(self, "sigma_range", _check_range("sigma_range", self.sigma_range, 0.0))
        if self.form not in SPECKLE_FORMS:
            raise ConfigError(f"speckle: form must be one of {SPECKLE_FORMS}, got {self.form!r}")

    def sample(self, generator: torch.Generator) -> Speckle:
        looks = _uniform(generator, *self.looks_range)
        sigma = _uniform(generator, *self.sigma_range)
        return Speckle(looks, self.form, sigma, self.relative)


@dataclasses.dataclass(frozen=True)
class RandomBlurDownsample(RandomDegradation):
    """:class:`BlurDownsample` with a factor drawn uniformly from ``factors`` and ``fwhm ~ U[fwhm_range]``.

    ``fwhm_range=None`` uses each factor's default width (FWHM = factor).
    """

    factors: tuple[int, ...]
    fwhm_range: tuple[float, float] | None = None
    spatial_ndim: int | None = None

    def __post_init__(self) -> None:
        factors = tuple(self.factors)
        if not factors or any(isinstance(f, bool) or not isinstance(f, int) or f < 1 for f in factors):
            raise ConfigError(f"factors must be a non-empty sequence of integers >= 1, got {self.factors!r}")
        object.__setattr__(self, "factors", factors)
        if self.fwhm_range is not None:
            bounds = _check_range("fwhm_range", self.fwhm_range, 0.0, strictly=True)
            object.__setattr__(self, "fwhm_range", bounds)

    def sample(self, generator: torch.Generator) -> BlurDownsample:
        index = int(torch.randint(len(self.factors), (), generator=generator, device=generator.device))
        fwhm = None if self.fwhm_range is None else _uniform(generator, *self.fwhm_range)
        return BlurDownsample(self.factors[index], fwhm, self.spatial_ndim)


@dataclasses.dataclass(frozen=True)
class RandomGammaCamera(RandomDegradation):
    """:class:`GammaCamera` with a collimator drawn uniformly from ``collimators``, ``distance_mm ~
    U[distance_range]``, ``peak_counts`` log-uniform in ``counts_range`` (``None``: the input's
    total counts) and ``scatter_fraction ~ U[scatter_fraction_range]``; with ``pixel_size_range``
    the input pixel size is drawn log-uniformly from it (after the other draws), so the system
    response spans a range of widths in pixels. The other parameters are fixed."""

    collimators: tuple[str, ...] = ("LEGP",)
    distance_range: tuple[float, float] = (50.0, 150.0)
    counts_range: tuple[float, float] | None = (100.0, 1600.0)
    scatter_fraction_range: tuple[float, float] = (0.0, 0.0)
    scale: int = 4
    isotope: str = "Tc-99m"
    pixel_size_mm: float | None = None
    return_counts: bool = True
    pixel_size_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        names = tuple(self.collimators)
        if not names or isinstance(self.collimators, str):
            raise ConfigError(f"collimators must be a non-empty sequence of names, got {self.collimators!r}")
        object.__setattr__(self, "collimators", tuple(collimator_name(name) for name in names))
        object.__setattr__(self, "distance_range", _check_range("distance_range", self.distance_range, 0.0))
        if self.counts_range is not None:
            bounds = _check_range("counts_range", self.counts_range, 0.0, strictly=True)
            object.__setattr__(self, "counts_range", bounds)
        bounds = _check_range("scatter_fraction_range", self.scatter_fraction_range, 0.0)
        object.__setattr__(self, "scatter_fraction_range", bounds)
        if self.pixel_size_range is not None:
            bounds = _check_range("pixel_size_range", self.pixel_size_range, 0.0, strictly=True)
            object.__setattr__(self, "pixel_size_range", bounds)
        self.sample(make_generator(0))  # validates scale, isotope and pixel size once

    def sample(self, generator: torch.Generator) -> GammaCamera:
        index = int(torch.randint(len(self.collimators), (), generator=generator, device=generator.device))
        distance = _uniform(generator, *self.distance_range)
        counts = None if self.counts_range is None else _log_uniform(generator, *self.counts_range)
        scatter = _uniform(generator, *self.scatter_fraction_range)
        pixel = self.pixel_size_mm
        if self.pixel_size_range is not None:
            pixel = _log_uniform(generator, *self.pixel_size_range)
        return GammaCamera(
            scale=self.scale,
            collimator=self.collimators[index],
            distance_mm=distance,
            isotope=self.isotope,
            pixel_size_mm=pixel,
            peak_counts=counts,
            scatter_fraction=scatter,
            return_counts=self.return_counts,
        )
