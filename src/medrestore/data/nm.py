"""Nuclear-medicine super-resolution data: activity maps → (coarse counts, fine counts) pairs.

The pairs model the chain ``medrestore degrade --kind gamma-camera`` followed by
``medrestore superres --modality nm``, with the *original* image as the target:

1. **Activity maps** (:func:`load_activity_maps`): every source image is turned into
   ``crops_per_image`` square maps of ``image_size`` fine pixels with values in ``[0, 1]``.
   Photographs, MR slices and other pictures become paper-phantom activity through the
   printer model of :mod:`~medrestore.physics.paper_phantom` (luma → inked area fraction, with
   a random tone curve ``γ`` and dot gain); 3-D volumes give slices along each axis at
   ``slice_fractions`` of its length; scintigram-like maps are generated in code
   (:mod:`~medrestore.data.nm_phantoms`).
2. **The original** (:func:`simulate_pair`): the map seen by a camera of its own (a Gaussian
   blur of FWHM ``f ~ U[original_fwhm_range]`` fine pixels, 0 for a fraction
   ``sharp_fraction`` of draws: a printed original is sharp, a scintigram is not), scaled to
   ``p`` expected counts at its brightest pixel (``p`` log-uniform in
   ``original_peak_range``): ``t = p · (a ⊛ g_f) / max(a ⊛ g_f)``. With probability
   ``noisy_original_fraction`` the original is a Poisson draw ``o ~ Poisson(t)`` (a real
   scintigram carries its own counting noise), otherwise ``o = t``.
3. **The degradation**: :class:`~medrestore.physics.degradations.GammaCamera` with its defaults
   except for the drawn pixel size (log-uniform in ``pixel_size_range``: the width of the
   system response in pixels, ``R_s / Δ``, depends on it) and distance: the original's values
   are counts, the ``k × k`` binned acquisition keeps its total counts.
4. **Input and target on one scale**: the input is the coarse counts divided by ``k²`` (counts
   per *fine*-pixel area, so input and target share units and any per-image normalisation of
   the input applies to the target), or (``input: mlem``) the ML-EM reconstruction on the fine
   grid (:func:`~medrestore.solvers.mlem.mlem_super_resolution`) with the system response
   ``superres`` assumes: the default camera (LEGP at 10 cm, Tc-99m) at the drawn pixel size —
   not the drawn distance, so a network refining it learns to absorb that mismatch. The
   target is ``t``, the noise-free original: the best estimate of the original given the
   coarse image (``E[o | input] = t`` for the Poisson part).

:class:`ScintigraphyPairs` draws a new pair (blur, counts, pixel size, noise) for every call,
so every epoch sees new acquisitions of the same maps; with ``fixed_draws = n`` the pairs
are drawn once (``n`` per map) when the source is built, which pays an expensive input
(ML-EM) once. :class:`NMDataConfig` is the
``data.nm`` section of a training configuration (``data.layout: nm``); :func:`nm_sources`
builds the training and validation sources from it, split by source image (never by crop).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import skimage.data
import torch
from skimage.transform import resize

from medrestore.core.files import expand_files
from medrestore.core.errors import ConfigError, InputError
from medrestore.core.random import make_generator
from medrestore.data.nm_phantoms import bone_scan_phantom, hot_spot_phantom, skeleton_phantom
from medrestore.data.paired import ImagePairSource, sample_seed
from medrestore.data.phantoms import random_ellipses
from medrestore.io import read_image
from medrestore.physics.blur import gaussian_blur
from medrestore.physics.degradations import RandomGammaCamera
from medrestore.physics.gamma_camera import PlanarAcquisition
from medrestore.solvers.dct_denoise import denoise_counts
from medrestore.solvers.mlem import mlem_super_resolution
from medrestore.physics.paper_phantom import PrinterModel, ink_coverage, luminance

BUNDLED_SKIMAGE_IMAGES = (
    "astronaut", "brick", "camera", "cat", "cell", "chelsea", "clock", "coffee", "coins", "colorwheel",
    "grass", "gravel", "horse", "hubble_deep_field", "immunohistochemistry", "logo", "microaneurysms",
    "moon", "page", "retina", "rocket", "text",
)  # fmt: skip
"""scikit-image sample images shipped inside the package (no download needed)."""

GENERATORS: dict[str, Callable[[int, torch.Generator], np.ndarray]] = {
    "hot-spot": hot_spot_phantom,
    "skeleton": skeleton_phantom,
    "ellipses": random_ellipses,
    "bone-scan": bone_scan_phantom,
}
"""Generated activity maps by kind (see :mod:`~medrestore.data.nm_phantoms`)."""

ACTIVITY_STREAM = 4
MINIMUM_CONTRAST = 0.03
CROP_ATTEMPTS = 20


def _check_range(owner: str, name: str, bounds: tuple[float, float], minimum: float, strictly: bool) -> None:
    low, high = bounds
    below = (low <= minimum) if strictly else (low < minimum)
    if below or high < low or not (math.isfinite(low) and math.isfinite(high)):
        relation = "<" if strictly else "<="
        raise ConfigError(f"{owner}: {name} must be a range (low, high) with {minimum:g} {relation} low <= high, got {bounds}")


@dataclasses.dataclass(frozen=True)
class NMSources:
    """Where activity maps come from (one group: training, validation or test).

    Attributes:
        files: image files or folders of them (any format :func:`medrestore.io.read_image`
            reads; colour is read as luma); 3-D volumes give slices.
        slice_fractions: positions of the slices taken from a 3-D volume along each of its
            axes, as fractions of the axis length (0.5 = the middle slice).
        skimage_images: names from :data:`BUNDLED_SKIMAGE_IMAGES`.
        generated: ``(kind, count)`` pairs of generated maps (kinds of :data:`GENERATORS`).
        phantom_seed: seed of the generated maps (give each group its own).
        crops_per_image: random square crops taken from every picture (generated maps are
            made at the final size and used whole).
    """

    files: tuple[str, ...] = ()
    slice_fractions: tuple[float, ...] = (0.5,)
    skimage_images: tuple[str, ...] = ()
    generated: tuple[tuple[str, int], ...] = ()
    phantom_seed: int = 0
    crops_per_image: int = 1

    def __post_init__(self) -> None:
        unknown = [name for name in self.skimage_images if name not in BUNDLED_SKIMAGE_IMAGES]
        if unknown:
            raise ConfigError(f"skimage_images: {unknown} are not bundled; choose from {', '.join(BUNDLED_SKIMAGE_IMAGES)}")
        for kind, count in self.generated:
            if kind not in GENERATORS or count < 0:
                raise ConfigError(f"generated: ({kind!r}, {count}) needs a kind from {', '.join(GENERATORS)} and a count >= 0")
        if any(not 0.0 <= fraction <= 1.0 for fraction in self.slice_fractions):
            raise ConfigError(f"slice_fractions: must lie in [0, 1], got {self.slice_fractions}")
        if self.crops_per_image < 1 or self.phantom_seed < 0:
            raise ConfigError("crops_per_image must be >= 1 and phantom_seed >= 0")

    def resolved(self, base: Path) -> NMSources:
        """A copy with relative ``files`` made absolute against ``base``."""
        files = tuple(str(path if Path(path).is_absolute() else (base / path).resolve()) for path in self.files)
        return dataclasses.replace(self, files=files)


@dataclasses.dataclass(frozen=True)
class NMSimulation:
    """How originals and their coarse acquisitions are drawn (module docstring, steps 2–3).

    Attributes:
        scale: binning factor ``k`` (fine pixels per coarse pixel along each axis).
        collimators, distance_range, isotope: the camera (:class:`~medrestore.physics.degradations.RandomGammaCamera`).
        pixel_size_range: fine pixel size (mm), drawn log-uniformly.
        original_fwhm_range: blur of the original (fine pixels), uniform.
        sharp_fraction: share of originals without blur.
        original_peak_range: expected counts at the original's brightest pixel, log-uniform.
        noisy_original_fraction: share of originals that are Poisson draws.
        printer_gamma_range, dot_gain_range: tone curve of the paper-phantom printer, uniform.
    """

    scale: int = 4
    collimators: tuple[str, ...] = ("LEGP",)
    distance_range: tuple[float, float] = (80.0, 120.0)
    isotope: str = "Tc-99m"
    pixel_size_range: tuple[float, float] = (0.6, 5.0)
    original_fwhm_range: tuple[float, float] = (0.0, 4.0)
    sharp_fraction: float = 0.3
    original_peak_range: tuple[float, float] = (10.0, 1000.0)
    noisy_original_fraction: float = 0.5
    printer_gamma_range: tuple[float, float] = (0.7, 1.4)
    dot_gain_range: tuple[float, float] = (0.0, 0.2)

    def __post_init__(self) -> None:
        owner = "nm.simulation"
        _check_range(owner, "pixel_size_range", self.pixel_size_range, 0.0, strictly=True)
        _check_range(owner, "original_fwhm_range", self.original_fwhm_range, 0.0, strictly=False)
        _check_range(owner, "original_peak_range", self.original_peak_range, 0.0, strictly=True)
        _check_range(owner, "printer_gamma_range", self.printer_gamma_range, 0.0, strictly=True)
        _check_range(owner, "dot_gain_range", self.dot_gain_range, 0.0, strictly=False)
        if self.dot_gain_range[1] > 0.25:
            raise ConfigError(f"{owner}: dot_gain_range must stay within [0, 0.25], got {self.dot_gain_range}")
        for name in ("sharp_fraction", "noisy_original_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{owner}: {name} must be in [0, 1], got {getattr(self, name)}")
        self.camera()  # validates scale, collimators, distances and isotope

    def camera(self) -> RandomGammaCamera:
        """The camera sampler: the input's total counts, a drawn pixel size and distance."""
        return RandomGammaCamera(
            collimators=self.collimators,
            distance_range=self.distance_range,
            counts_range=None,
            scale=self.scale,
            isotope=self.isotope,
            pixel_size_range=self.pixel_size_range,
        )


def _draw(generator: torch.Generator, low: float, high: float, log: bool = False) -> float:
    unit = float(torch.rand((), generator=generator, dtype=torch.float64))
    if log:
        return math.exp(math.log(low) + (math.log(high) - math.log(low)) * unit)
    return low + (high - low) * unit


def simulate_original(activity: torch.Tensor, simulation: NMSimulation, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``(original o, expected original t)`` of an activity map (module docstring, step 2), float64 ``(H, W)``."""
    sharp = float(torch.rand((), generator=generator, dtype=torch.float64)) < simulation.sharp_fraction
    fwhm = _draw(generator, *simulation.original_fwhm_range)
    clean = activity if sharp or fwhm <= 0 else gaussian_blur(activity, fwhm=fwhm)
    peak = _draw(generator, *simulation.original_peak_range, log=True)
    expected = clean * (peak / max(float(clean.max()), 1e-12))
    noisy = float(torch.rand((), generator=generator, dtype=torch.float64)) < simulation.noisy_original_fraction
    original = torch.poisson(expected, generator=generator) if noisy else expected
    if float(original.sum()) <= 0:  # a Poisson draw of a very dim map may hold no counts
        original = expected
    return original, expected


RECONSTRUCTED_INPUTS = ("mlem", "dct-mlem")
"""Input kinds that are ML-EM reconstructions on the fine grid (of the raw or the denoised counts)."""
INPUT_KINDS = ("coarse", *RECONSTRUCTED_INPUTS)
DEFAULT_ACQUISITION = PlanarAcquisition()
"""The camera ``superres`` assumes without a recorded acquisition or a collimator named by the file: LEGP at 10 cm,
Tc-99m."""


def simulate_pair(
    activity: torch.Tensor, simulation: NMSimulation, generator: torch.Generator, input_kind: str = "coarse",
    mlem_iterations: int = 10,
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """One training pair from an activity map ``(H, W)`` (module docstring, steps 2–4).

    Returns:
        ``(input, target (1, H, W))`` float32: the input is the coarse counts / ``k²``
        ``(1, H/k, W/k)`` or their ML-EM reconstruction ``(1, H, W)``; the target is the
        expected original in counts per fine pixel.
    """
    original, expected = simulate_original(activity.to(torch.float64), simulation, generator)
    camera = simulation.camera().sample(generator)
    low = camera(original, generator)
    if input_kind in RECONSTRUCTED_INPUTS:
        fwhm = DEFAULT_ACQUISITION.resolution_mm / float(camera.pixel_size_mm)  # type: ignore[arg-type]
        counts = denoise_counts(low) if input_kind == "dct-mlem" else low
        fine, _ = mlem_super_resolution(counts.to(torch.float32), fwhm, simulation.scale, mlem_iterations)
        return fine.to(torch.float32).unsqueeze(0), expected.to(torch.float32).unsqueeze(0)
    coarse = low / simulation.scale**2
    return coarse.to(torch.float32).unsqueeze(0), expected.to(torch.float32).unsqueeze(0)


def simulated_scintigram(
    activity: torch.Tensor, pixel_size_mm: float, total_counts: float, generator: torch.Generator,
    acquisition: PlanarAcquisition = PlanarAcquisition("LEHR", distance_mm=75.0),
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """A planar scintigram of ``activity`` on its own grid: ``(Poisson counts, expected counts)`` float64.

    The activity is blurred by the camera's system response (``R_s / pixel_size_mm`` pixels,
    default LEHR at 7.5 cm) and scaled to ``total_counts`` expected counts; the counts are a
    Poisson draw. A stand-in for a real scintigram (the *original* of a test chain).
    """
    blurred = gaussian_blur(activity.to(torch.float64), fwhm=acquisition.resolution_mm / pixel_size_mm)
    expected = blurred * (total_counts / float(blurred.sum()))
    return torch.poisson(expected, generator=generator), expected


# -- activity maps ----------------------------------------------------------------------------
def _square_crop(plane: np.ndarray, size: int, generator: torch.Generator) -> np.ndarray:
    """A random square crop (side 35–100 % of the shorter axis) resized to ``size × size``."""
    height, width = plane.shape
    shortest = min(height, width)
    side = max(8, int(round(_draw(generator, 0.35, 1.0) * shortest)))
    top = int(torch.randint(height - side + 1, (1,), generator=generator))
    left = int(torch.randint(width - side + 1, (1,), generator=generator))
    crop = plane[top : top + side, left : left + side]
    return resize(crop, (size, size), order=1, anti_aliasing=side > size, preserve_range=True)


def _printed(plane: np.ndarray, simulation: NMSimulation, generator: torch.Generator) -> np.ndarray:
    """Paper-phantom activity (inked area fraction) of a picture, with a random printer."""
    printer = PrinterModel(
        polarity="negative",
        gamma=_draw(generator, *simulation.printer_gamma_range),
        dot_gain=_draw(generator, *simulation.dot_gain_range),
        lower_percentile=0.5,
        upper_percentile=99.5,
    )
    return ink_coverage(torch.from_numpy(plane), printer).numpy()


def _picture_maps(
    name: str, plane: np.ndarray, sources: NMSources, size: int, simulation: NMSimulation, index: int
) -> list[tuple[str, np.ndarray]]:
    """``crops_per_image`` activity maps of one picture (crops with too little contrast are redrawn)."""
    maps = []
    for crop in range(sources.crops_per_image):
        generator = make_generator(sample_seed(sources.phantom_seed, crop, index, ACTIVITY_STREAM))
        for _ in range(CROP_ATTEMPTS):
            candidate = _square_crop(plane, size, generator)
            low, high = np.percentile(candidate, [0.5, 99.5])
            if high > low and float(candidate.std()) > MINIMUM_CONTRAST * float(high - low):
                break
        maps.append((f"{name}#{crop}", _printed(candidate, simulation, generator)))
    return maps


def _volume_planes(name: str, volume: np.ndarray, fractions: Sequence[float]) -> list[tuple[str, np.ndarray]]:
    planes = []
    for axis in range(3):
        for fraction in fractions:
            index = min(volume.shape[axis] - 1, int(round(fraction * (volume.shape[axis] - 1))))
            planes.append((f"{name}[axis{axis}={index}]", np.take(volume, index, axis=axis)))
    return planes


def _file_planes(path: Path, fractions: Sequence[float]) -> list[tuple[str, np.ndarray]]:
    """2-D planes of an image file (luma of colour; slices of a volume)."""
    image = read_image(path)
    data = image.data.to(torch.float64)
    if image.spatial_ndim == 3 and data.ndim == 3:
        return _volume_planes(path.name, data.numpy(), fractions)
    if image.spatial_ndim == 2:
        return [(path.name, luminance(data).numpy())]
    raise InputError(path, f"has shape {tuple(data.shape)}; expected a 2-D picture (grey or colour) or a 3-D volume")


def _skimage_plane(name: str) -> np.ndarray:
    image = np.asarray(getattr(skimage.data, name)(), dtype=np.float64)
    return luminance(torch.from_numpy(image)).numpy()


def load_activity_maps(sources: NMSources, size: int, simulation: NMSimulation = NMSimulation()) -> list[tuple[str, torch.Tensor]]:
    """``[(name, activity (size, size) float64 in [0, 1]), ...]`` for every source (module docstring, step 1)."""
    planes: list[tuple[str, np.ndarray]] = []
    for path in expand_files(sources.files, "an activity source of data.nm"):
        planes += _file_planes(path, sources.slice_fractions)
    planes += [(f"skimage:{name}", _skimage_plane(name)) for name in sources.skimage_images]
    maps: list[tuple[str, np.ndarray]] = []
    for index, (name, plane) in enumerate(planes):
        maps += _picture_maps(name, plane, sources, size, simulation, index)
    for kind_index, (kind, count) in enumerate(sources.generated):
        for number in range(count):
            generator = make_generator(sample_seed(sources.phantom_seed, number, 1000 + kind_index, ACTIVITY_STREAM))
            maps.append((f"{kind}:{sources.phantom_seed}:{number}", np.asarray(GENERATORS[kind](size, generator), np.float64)))
    if not maps:
        raise ConfigError("data.nm: no activity maps (give files, skimage_images or generated maps)")
    return [(name, torch.from_numpy(np.ascontiguousarray(activity))) for name, activity in maps]


# -- pair source and configuration -----------------------------------------------------------
class ScintigraphyPairs(ImagePairSource):
    """(input, expected original) pairs drawn anew for every call (:func:`simulate_pair`).

    Args:
        maps: ``(name, activity (H, W))`` with ``H`` and ``W`` multiples of ``simulation.scale``.
        simulation: how originals and acquisitions are drawn.
        input_kind: ``coarse`` (counts / k²), ``mlem`` (fine-grid ML-EM reconstruction) or
            ``dct-mlem`` (the same of the counts denoised first, :func:`~medrestore.solvers.dct_denoise.denoise_counts`).
        mlem_iterations: ML-EM iterations of the ``mlem`` and ``dct-mlem`` inputs.
    """

    spatial_ndim = 2

    def __init__(
        self, maps: Sequence[tuple[str, torch.Tensor]], simulation: NMSimulation, input_kind: str = "coarse",
        mlem_iterations: int = 10,
    ) -> None:  # fmt: skip
        if not maps:
            raise ConfigError("no activity maps to simulate")
        for name, activity in maps:
            if activity.ndim != 2 or any(n % simulation.scale for n in activity.shape):
                problem = f"activity map {tuple(activity.shape)} is not 2-D with sides that are multiples of {simulation.scale}"
                raise InputError(name, problem)
        if input_kind not in INPUT_KINDS:
            raise ConfigError(f"nm.input: {input_kind!r} is not one of {', '.join(INPUT_KINDS)}")
        self.maps = list(maps)
        self.simulation = simulation
        self.input_kind = input_kind
        self.mlem_iterations = mlem_iterations

    def __len__(self) -> int:
        return len(self.maps)

    def name(self, index: int) -> str:
        return self.maps[index][0]

    def factor(self, index: int) -> tuple[int, ...]:
        scale = 1 if self.input_kind in RECONSTRUCTED_INPUTS else self.simulation.scale
        return (scale, scale)

    def input_shape(self, index: int) -> tuple[int, ...]:
        return tuple(n // self.factor(index)[0] for n in self.maps[index][1].shape)

    def pair(self, index: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return simulate_pair(self.maps[index][1], self.simulation, generator, self.input_kind, self.mlem_iterations)


class FixedPairs(ImagePairSource):
    """``draws`` pairs per map of a :class:`ScintigraphyPairs`, drawn once (seeded) and kept in memory."""

    spatial_ndim = 2

    def __init__(self, source: ScintigraphyPairs, draws: int, seed: int) -> None:
        self.names: list[str] = []
        self.pairs: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.factors: list[tuple[int, ...]] = []
        for index in range(len(source)):
            for draw in range(draws):
                generator = make_generator(sample_seed(seed, draw, index, ACTIVITY_STREAM + 1))
                self.pairs.append(source.pair(index, generator))
                self.names.append(f"{source.name(index)}/draw{draw}")
                self.factors.append(source.factor(index))

    def __len__(self) -> int:
        return len(self.pairs)

    def name(self, index: int) -> str:
        return self.names[index]

    def input_shape(self, index: int) -> tuple[int, ...]:
        return tuple(self.pairs[index][0].shape[1:])

    def factor(self, index: int) -> tuple[int, ...]:
        return self.factors[index]

    def pair(self, index: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return self.pairs[index]


@dataclasses.dataclass(frozen=True)
class NMDataConfig:
    """The ``data.nm`` section of a training configuration (``data.layout: nm``).

    Attributes:
        training: sources of the training maps.
        validation: sources of the validation maps (other images than the training ones).
        simulation: originals and acquisitions.
        image_size: side of every activity map in fine pixels (a multiple of ``simulation.scale``).
        input: ``coarse`` (the coarse counts / k²), ``mlem`` (their ML-EM reconstruction on
            the fine grid, for networks that refine it) or ``dct-mlem`` (the ML-EM reconstruction
            of the denoised counts, as ``superres --method dct-mlem`` makes it before its post-filter).
        mlem_iterations: ML-EM iterations of the ``mlem`` and ``dct-mlem`` inputs.
        fixed_draws: 0 draws new pairs for every sample; ``n > 0`` draws ``n`` pairs per map once.
    """

    training: NMSources
    validation: NMSources | None = None
    simulation: NMSimulation = NMSimulation()
    image_size: int = 192
    input: str = "coarse"
    mlem_iterations: int = 10
    fixed_draws: int = 0

    def __post_init__(self) -> None:
        if self.image_size < self.simulation.scale or self.image_size % self.simulation.scale:
            raise ConfigError(f"nm.image_size: {self.image_size} must be a positive multiple of the scale {self.simulation.scale}")
        if self.input not in INPUT_KINDS:
            raise ConfigError(f"nm.input: {self.input!r} is not one of {', '.join(INPUT_KINDS)}")
        if self.mlem_iterations < 0 or self.fixed_draws < 0:
            raise ConfigError("nm.mlem_iterations and nm.fixed_draws must be >= 0")

    def resolved(self, base: Path) -> NMDataConfig:
        """Relative source files made absolute against ``base`` (the configuration's folder)."""
        validation = None if self.validation is None else self.validation.resolved(base)
        return dataclasses.replace(self, training=self.training.resolved(base), validation=validation)


def _pairs(config: NMDataConfig, sources: NMSources, seed: int) -> ImagePairSource:
    maps = load_activity_maps(sources, config.image_size, config.simulation)
    pairs = ScintigraphyPairs(maps, config.simulation, config.input, config.mlem_iterations)
    return FixedPairs(pairs, config.fixed_draws, seed) if config.fixed_draws else pairs


def nm_sources(config: NMDataConfig, seed: int = 0) -> tuple[ImagePairSource, ImagePairSource | None]:
    """Training and validation pair sources of a ``data.nm`` section (``seed``: of fixed draws)."""
    training = _pairs(config, config.training, seed)
    return training, None if config.validation is None else _pairs(config, config.validation, seed + 1)
