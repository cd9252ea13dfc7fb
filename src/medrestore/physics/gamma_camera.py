"""Planar gamma-camera acquisitions: parallel-hole collimator response, intrinsic resolution,
sensitivity, detector binning and Poisson counting.

Equations (Cherry, Sorenson & Phelps, *Physics in Nuclear Medicine*, 4th ed., Saunders 2012,
ch. 14 "The Gamma Camera: Performance Characteristics", section on parallel-hole collimators):

* effective hole length, corrected for septal penetration:
  ``L_eff = L − 2/μ`` with ``μ`` the linear attenuation coefficient of lead at the photon
  energy (:func:`lead_attenuation_coefficient`);
* geometric (collimator) resolution at source distance ``z`` from the collimator face:
  ``R_g(z) = d · (L_eff + z + c) / L_eff`` (FWHM, mm), ``d`` the hole diameter and ``c`` the
  distance from the collimator's back face to the crystal mid-plane;
* intrinsic resolution ``R_i(E) = R_i(140.5 keV) · √(140.5 keV / E)``: the spread of the
  scintillation light statistics falls as ``1/√(number of light photons) ∝ 1/√E``;
* system resolution ``R_s(z) = √(R_g(z)² + R_i²)`` (Gaussian responses add in quadrature);
* geometric efficiency ``g ≈ K² · (d / L_eff)² · d² / (d + t)²`` with ``t`` the septal
  thickness and ``K ≈ 0.26`` for hexagonal holes in a hexagonal array (Cherry's eq. 14-7;
  the efficiency falls as ``d⁴`` at a fixed fill factor, not with the source distance);
* system sensitivity ``S = g · Σ yields · ε`` counts per second per becquerel, ``ε`` the
  photopeak detection efficiency of the crystal.
* an **intrinsic** acquisition (no collimator, :data:`INTRINSIC`: the QC images of NEMA NU 1's
  intrinsic tests, a slit mask or a point source far from the bare crystal, DICOM
  ``CollimatorGridName`` ``INTR``/``NONE``) has ``R_s = R_i`` at any distance, and a
  sensitivity ``S = ½ · Σ yields · ε`` (a source on the crystal face, 2π geometry).

So a high-resolution collimator (smaller or longer holes) is sharper *and* collects fewer
counts in the same time: with the e.cam values below at 140.5 keV, LEHR has
``R_s(100 mm) ≈ 7.24 mm`` and ``g ≈ 1.17·10⁻⁴`` (≈ 208 cpm/µCi with ε = 0.9), LEGP
``R_s(100 mm) ≈ 8.88 mm`` and ``g ≈ 2.01·10⁻⁴`` (≈ 358 cpm/µCi).

Forward model of a planar image (:func:`simulate_planar`): activity (Bq per input pixel, or
any non-negative map) → Gaussian PSF of FWHM ``R_s(z)`` converted to input pixels (plus an
optional broad scatter component) → sensitivity → detector binning by an integer factor (sum
of each ``k × k`` block: counts add) → scaling to the requested count level → Poisson
counts. :func:`depth_dependent_response` takes a distance per pixel instead of one ``z``. Blurs use :func:`~medrestore.physics.blur.gaussian_blur` (half-sample symmetric
edges). All randomness comes from the ``torch.Generator`` argument.

Sources of the numbers:

* collimators: the SIMIND Monte Carlo program's collimator database (``collim.col``,
  M. Ljungberg, Lund University), entries ``SE-*`` for the Siemens e.cam, the camera of the
  paper-phantom study this module reproduces; hole "diameter" is the flat-to-flat width of
  the hexagonal holes;
* lead: NIST XCOM total attenuation with coherent scattering (Berger et al., NIST standard
  reference database 8; identical to Hubbell & Seltzer, NISTIR 5632), ρ = 11.35 g/cm³,
  interpolated log–log between tabulated energies;
* isotopes: principal photopeaks, yields and half-lives from the NNDC/ENSDF decay data;
* intrinsic resolution 3.8 mm FWHM at 140.5 keV and the 9.5-mm NaI(Tl) crystal behind a
  1-mm aluminium cover: typical values of that camera class (as in SIMIND's e.cam model).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np
import torch

from medrestore.core.errors import ConfigError, InputError
from medrestore.physics.blur import FWHM_PER_SIGMA, gaussian_blur

LEAD_DENSITY_G_PER_CM3 = 11.35
_LEAD_K_EDGE_KEV = 88.0045
# (energy keV, mass attenuation μ/ρ cm²/g) below and above the lead K edge (NIST XCOM, with coherent).
_LEAD_BELOW_K_EDGE = ((50.0, 8.041), (60.0, 5.021), (80.0, 2.419), (_LEAD_K_EDGE_KEV, 1.910))
_LEAD_ABOVE_K_EDGE = (
    (_LEAD_K_EDGE_KEV, 7.683), (100.0, 5.549), (150.0, 2.014), (200.0, 0.9985),
    (300.0, 0.4031), (400.0, 0.2323), (500.0, 0.1614),
)  # fmt: skip

REFERENCE_ENERGY_KEV = 140.5
"""Energy at which :attr:`CameraHead.intrinsic_fwhm_mm` is stated (Tc-99m)."""

HEXAGONAL_HOLE_CONSTANT = 0.26
"""Cherry's ``K`` for hexagonal holes in a hexagonal array (0.24 round, 0.28 square holes)."""


@dataclasses.dataclass(frozen=True)
class Collimator:
    """A parallel-hole lead collimator.

    Attributes:
        name: short name (``"LEHR"``...).
        hole_diameter_mm: ``d``, flat-to-flat width of a hexagonal hole.
        hole_length_mm: ``L``, collimator thickness.
        septal_thickness_mm: ``t``.
        maximum_energy_kev: highest photon energy the septa are designed for.
        description: what the name stands for, and the source entry.
        hole_constant: Cherry's shape factor ``K``.
    """

    name: str
    hole_diameter_mm: float
    hole_length_mm: float
    septal_thickness_mm: float
    maximum_energy_kev: float
    description: str
    hole_constant: float = HEXAGONAL_HOLE_CONSTANT


COLLIMATORS: Mapping[str, Collimator] = MappingProxyType(
    {
        c.name: c
        for c in (
            Collimator("LEHR", 1.11, 24.05, 0.16, 160.0, "low-energy high-resolution (e.cam LEHR, SIMIND SE-LEHR)"),
            Collimator("LEGP", 1.45, 24.10, 0.20, 160.0, "low-energy general-purpose (e.cam LEAP, SIMIND SE-LEAP)"),
            Collimator("LEUHR", 1.16, 35.80, 0.13, 160.0, "low-energy ultra-high-resolution (SIMIND SE-LEUR)"),
            Collimator("LEHS", 2.54, 24.05, 0.36, 160.0, "low-energy high-sensitivity (SIMIND SE-LEHS)"),
            Collimator("MEGP", 2.94, 40.64, 1.14, 300.0, "medium-energy general-purpose (SIMIND SE-ME)"),
            Collimator("HEGP", 3.40, 50.80, 2.00, 400.0, "high-energy general-purpose (SIMIND SE-HE)"),
        )
    }
)
COLLIMATOR_ALIASES = MappingProxyType({"LEAP": "LEGP", "LEUR": "LEUHR", "ME": "MEGP", "HE": "HEGP"})
DEFAULT_COLLIMATOR = "LEGP"
"""The collimator of an acquisition when neither the caller nor the image names one."""
INTRINSIC = "INTR"
"""The collimator name of an intrinsic (uncollimated) acquisition (module docstring)."""
INTRINSIC_ALIASES = frozenset({"INTR", "INTRINSIC", "NONE", "NOCOLLIMATOR"})
"""Names that mean no collimator (compared as :func:`collimator_name` compares them), as cameras write them in
``CollimatorGridName``."""


@dataclasses.dataclass(frozen=True)
class Photopeak:
    """One emission imaged in a photopeak window: energy (keV) and yield per decay."""

    energy_kev: float
    abundance: float


@dataclasses.dataclass(frozen=True)
class Isotope:
    """A single-photon emitter.

    The imaging energy (for the intrinsic resolution) is the yield-weighted mean photopeak
    energy; septal penetration uses the highest photopeak (the most penetrating photons set
    ``L_eff``); the sensitivity uses the summed yield. A multi-peak isotope is thus
    approximated by one Gaussian response.
    """

    name: str
    photopeaks: tuple[Photopeak, ...]
    half_life_s: float

    @property
    def imaging_energy_kev(self) -> float:
        return sum(p.energy_kev * p.abundance for p in self.photopeaks) / self.photon_yield

    @property
    def penetration_energy_kev(self) -> float:
        return max(p.energy_kev for p in self.photopeaks)

    @property
    def photon_yield(self) -> float:
        return sum(p.abundance for p in self.photopeaks)

    @property
    def decay_constant(self) -> float:
        """``λ = ln 2 / T½`` per second."""
        return math.log(2.0) / self.half_life_s


_HOUR = 3600.0
ISOTOPES: Mapping[str, Isotope] = MappingProxyType(
    {
        i.name: i
        for i in (
            Isotope("Tc-99m", (Photopeak(140.5, 0.885),), 6.0067 * _HOUR),
            Isotope("I-123", (Photopeak(159.0, 0.833),), 13.2235 * _HOUR),
            # Hg K x-rays 68.9–82.5 keV imaged in one window around 72 keV.
            Isotope("Tl-201", (Photopeak(72.0, 0.88),), 73.01 * _HOUR),
            Isotope("In-111", (Photopeak(171.3, 0.906), Photopeak(245.4, 0.941)), 67.31 * _HOUR),
        )
    }
)


def _key(name: str) -> str:
    return name.replace("-", "").replace("_", "").replace(" ", "").upper()


def collimator_by_name(name: str) -> Collimator:
    """The collimator called ``name`` (case-insensitive; ``LEAP`` = ``LEGP``, ``LEUR`` = ``LEUHR``).

    Raises:
        ConfigError: an unknown name, or one of :data:`INTRINSIC_ALIASES` (no collimator has no holes to model:
            use :func:`collimator_name` and :class:`PlanarAcquisition`).
    """
    key = _key(str(name))
    if key in INTRINSIC_ALIASES:
        raise ConfigError(f"{name!r} is an intrinsic acquisition (no collimator); it has no collimator geometry")
    key = COLLIMATOR_ALIASES.get(key, key)
    if key not in COLLIMATORS:
        raise ConfigError(f"unknown collimator {name!r}; known: {', '.join(COLLIMATORS)} or {INTRINSIC} (none)")
    return COLLIMATORS[key]


def collimator_name(name: str) -> str:
    """The canonical name of a collimator (:func:`collimator_by_name`), or :data:`INTRINSIC` for no collimator."""
    if _key(str(name)) in INTRINSIC_ALIASES:
        return INTRINSIC
    return collimator_by_name(name).name


def isotope_by_name(name: str) -> Isotope:
    """The isotope called ``name`` (``"Tc-99m"``, ``"tc99m"``, ``"I-123"``, ``"Tl-201"``, ``"In-111"``)."""
    table = {_key(isotope): isotope for isotope in ISOTOPES}
    key = _key(str(name))
    if key not in table:
        raise ConfigError(f"unknown isotope {name!r}; known: {', '.join(ISOTOPES)}")
    return ISOTOPES[table[key]]


def lead_attenuation_coefficient(energy_kev: float) -> float:
    """Linear attenuation coefficient ``μ`` of lead in 1/mm at ``energy_kev`` (50–500 keV).

    ``μ = (μ/ρ)·ρ`` with ``μ/ρ`` interpolated log–log in the NIST XCOM table on the correct
    side of the K edge (88.0 keV). Example: 140.5 keV → ``μ/ρ ≈ 2.372 cm²/g``, ``μ ≈ 2.692 /mm``.
    """
    energy = float(energy_kev)
    if not 50.0 <= energy <= 500.0:
        raise ConfigError(f"lead attenuation is tabulated for 50–500 keV, got {energy_kev!r} keV")
    table = _LEAD_BELOW_K_EDGE if energy < _LEAD_K_EDGE_KEV else _LEAD_ABOVE_K_EDGE
    energies = np.log([e for e, _ in table])
    coefficients = np.log([m for _, m in table])
    mass_coefficient = float(np.exp(np.interp(math.log(energy), energies, coefficients)))
    return mass_coefficient * LEAD_DENSITY_G_PER_CM3 / 10.0


def effective_hole_length(collimator: Collimator, energy_kev: float) -> float:
    """``L_eff = L − 2/μ`` (mm): the hole length shortened by septal penetration at ``energy_kev``."""
    length = collimator.hole_length_mm - 2.0 / lead_attenuation_coefficient(energy_kev)
    if length <= 0:
        raise ConfigError(f"{collimator.name}: septa are transparent at {energy_kev} keV (L_eff = {length:.2f} mm)")
    return length


@dataclasses.dataclass(frozen=True)
class CameraHead:
    """The detector behind the collimator.

    Attributes:
        intrinsic_fwhm_mm: intrinsic resolution at :data:`REFERENCE_ENERGY_KEV` (140.5 keV).
        crystal_offset_mm: ``c``, collimator back face to crystal mid-plane (1-mm cover
            plus half of a 9.5-mm crystal, rounded).
        detection_efficiency: ``ε``, fraction of photons reaching the crystal that are
            counted in the photopeak window (≈ 0.9 at 140 keV in 9.5-mm NaI(Tl)).
    """

    intrinsic_fwhm_mm: float = 3.8
    crystal_offset_mm: float = 6.0
    detection_efficiency: float = 0.9

    def __post_init__(self) -> None:
        if not (math.isfinite(self.intrinsic_fwhm_mm) and self.intrinsic_fwhm_mm >= 0):
            raise ConfigError(f"intrinsic_fwhm_mm must be >= 0, got {self.intrinsic_fwhm_mm!r}")
        if not (math.isfinite(self.crystal_offset_mm) and self.crystal_offset_mm >= 0):
            raise ConfigError(f"crystal_offset_mm must be >= 0, got {self.crystal_offset_mm!r}")
        if not 0 < self.detection_efficiency <= 1:
            raise ConfigError(f"detection_efficiency must be in (0, 1], got {self.detection_efficiency!r}")


def geometric_resolution(
    collimator: Collimator, distance_mm: float, energy_kev: float, crystal_offset_mm: float = 6.0
) -> float:
    """``R_g(z) = d · (L_eff + z + c) / L_eff``, FWHM in mm, ``z = distance_mm >= 0``."""
    if not (math.isfinite(distance_mm) and distance_mm >= 0):
        raise ConfigError(f"source distance must be a finite number >= 0 mm, got {distance_mm!r}")
    length = effective_hole_length(collimator, energy_kev)
    return collimator.hole_diameter_mm * (length + distance_mm + crystal_offset_mm) / length


def intrinsic_resolution(energy_kev: float, head: CameraHead = CameraHead()) -> float:
    """``R_i(E) = R_i(140.5 keV) · √(140.5 / E)``, FWHM in mm."""
    if not (math.isfinite(energy_kev) and energy_kev > 0):
        raise ConfigError(f"photon energy must be a finite number > 0 keV, got {energy_kev!r}")
    return head.intrinsic_fwhm_mm * math.sqrt(REFERENCE_ENERGY_KEV / float(energy_kev))


def system_resolution(
    collimator: Collimator, distance_mm: float, isotope: Isotope, head: CameraHead = CameraHead()
) -> float:
    """``R_s(z) = √(R_g(z)² + R_i²)``, FWHM in mm, for ``isotope`` at ``distance_mm`` from the face."""
    geometric = geometric_resolution(collimator, distance_mm, isotope.penetration_energy_kev, head.crystal_offset_mm)
    return math.hypot(geometric, intrinsic_resolution(isotope.imaging_energy_kev, head))


def geometric_efficiency(collimator: Collimator, energy_kev: float) -> float:
    """``g ≈ K² · (d / L_eff)² · d² / (d + t)²``: fraction of emitted photons passing the holes."""
    d, t = collimator.hole_diameter_mm, collimator.septal_thickness_mm
    length = effective_hole_length(collimator, energy_kev)
    return collimator.hole_constant**2 * (d / length) ** 2 * (d / (d + t)) ** 2


def system_sensitivity(collimator: Collimator, isotope: Isotope, head: CameraHead = CameraHead()) -> float:
    """``S = g · Σ yields · ε``: counts per second per becquerel of a source in air."""
    efficiency = geometric_efficiency(collimator, isotope.penetration_energy_kev)
    return efficiency * isotope.photon_yield * head.detection_efficiency


@dataclasses.dataclass(frozen=True)
class PlanarAcquisition:
    """How a planar image is acquired (everything but the count level and the matrix).

    Attributes:
        collimator: a :data:`COLLIMATORS` name, or :data:`INTRINSIC` (``INTR``, ``NONE``): no collimator.
        isotope: an :data:`ISOTOPES` name.
        distance_mm: source-to-collimator-face distance ``z`` (no effect on an intrinsic acquisition's response).
        scatter_fraction: ``SF`` in ``[0, 0.95]``: scattered / all counts in the window.
        scatter_fwhm_mm: width of the broad Gaussian that stands in for the scatter response.
        head: the detector.
    """

    collimator: str = DEFAULT_COLLIMATOR
    isotope: str = "Tc-99m"
    distance_mm: float = 100.0
    scatter_fraction: float = 0.0
    scatter_fwhm_mm: float = 50.0
    head: CameraHead = CameraHead()

    def __post_init__(self) -> None:
        object.__setattr__(self, "collimator", collimator_name(self.collimator))
        object.__setattr__(self, "isotope", isotope_by_name(self.isotope).name)
        if not (math.isfinite(self.distance_mm) and self.distance_mm >= 0):
            raise ConfigError(f"distance_mm must be a finite number >= 0, got {self.distance_mm!r}")
        if not 0 <= self.scatter_fraction <= 0.95:
            raise ConfigError(f"scatter_fraction must be in [0, 0.95], got {self.scatter_fraction!r}")
        if not (math.isfinite(self.scatter_fwhm_mm) and self.scatter_fwhm_mm > 0):
            raise ConfigError(f"scatter_fwhm_mm must be > 0, got {self.scatter_fwhm_mm!r}")
        if not self.intrinsic:
            effective_hole_length(collimator_by_name(self.collimator), isotope_by_name(self.isotope).penetration_energy_kev)

    @property
    def intrinsic(self) -> bool:
        """No collimator (:data:`INTRINSIC`)."""
        return self.collimator == INTRINSIC

    @property
    def resolution_mm(self) -> float:
        """System resolution ``R_s(z)`` (FWHM, mm); ``R_i`` alone for an intrinsic acquisition."""
        isotope = isotope_by_name(self.isotope)
        if self.intrinsic:
            return intrinsic_resolution(isotope.imaging_energy_kev, self.head)
        return system_resolution(collimator_by_name(self.collimator), self.distance_mm, isotope, self.head)

    @property
    def within_energy_rating(self) -> bool:
        """Whether the isotope's highest photopeak is within the collimator's design energy (always, without one)."""
        if self.intrinsic:
            return True
        maximum = collimator_by_name(self.collimator).maximum_energy_kev
        return isotope_by_name(self.isotope).penetration_energy_kev <= maximum

    @property
    def sensitivity(self) -> float:
        """Counts per second per becquerel (:func:`system_sensitivity`; ``½ · Σ yields · ε`` without a collimator)."""
        isotope = isotope_by_name(self.isotope)
        if self.intrinsic:
            return 0.5 * isotope.photon_yield * self.head.detection_efficiency
        return system_sensitivity(collimator_by_name(self.collimator), isotope, self.head)


@dataclasses.dataclass(frozen=True)
class CountLevel:
    """Exactly one of: expected counts at the brightest detector pixel, expected total counts,
    or an acquisition time (s) for an activity map in becquerels per pixel."""

    peak_counts: float | None = None
    total_counts: float | None = None
    acquisition_time_s: float | None = None

    def __post_init__(self) -> None:
        given = [(n, v) for n, v in dataclasses.asdict(self).items() if v is not None]
        if len(given) != 1:
            raise ConfigError("give exactly one of peak_counts, total_counts or acquisition_time_s")
        name, value = given[0]
        if isinstance(value, bool) or not (math.isfinite(float(value)) and float(value) > 0):
            raise ConfigError(f"{name} must be a finite number > 0, got {value!r}")


def _check_activity(activity: torch.Tensor) -> None:
    if not activity.is_floating_point() or activity.ndim < 2:
        raise InputError(None, f"activity must be a floating-point tensor (*batch, H, W), got {activity.dtype}")
    if activity.numel() and (not bool(torch.isfinite(activity).all()) or float(activity.min()) < 0):
        raise InputError(None, "activity must be finite and non-negative")


def _check_pixel_size(pixel_size_mm: float) -> float:
    value = float(pixel_size_mm)
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"pixel size must be a finite number > 0 mm, got {pixel_size_mm!r}")
    return value


def detector_response(activity: torch.Tensor, pixel_size_mm: float, acquisition: PlanarAcquisition) -> torch.Tensor:
    """Expected count rate per input pixel: ``S · [(1 − f)·(a ⊛ h_Rs) + f·(a ⊛ h_scatter)]``.

    ``h_Rs`` is a normalised Gaussian of FWHM ``R_s(z)`` (in pixels: ``R_s / pixel_size_mm``),
    ``h_scatter`` one of FWHM ``scatter_fwhm_mm``, ``f`` the scatter fraction and ``S`` the
    sensitivity: the window's count rate ``S·Σa`` is shared between unscattered photons
    ``(1 − f)`` and scattered ones ``f``, which land far from their origin. (Without an
    attenuating medium, as for paper phantoms, ``f = 0``.)

    Args:
        activity: non-negative float tensor ``(*batch, H, W)`` (Bq per pixel for physical rates).
        pixel_size_mm: square pixel side of ``activity``.
        acquisition: collimator, isotope, distance, scatter.

    Returns:
        Tensor of the same shape and dtype (counts/s per pixel when ``activity`` is in Bq).
    """
    _check_activity(activity)
    pixel = _check_pixel_size(pixel_size_mm)
    primary = gaussian_blur(activity, fwhm=acquisition.resolution_mm / pixel, spatial_ndim=2)
    fraction = acquisition.scatter_fraction
    if fraction > 0:
        scatter = gaussian_blur(activity, fwhm=acquisition.scatter_fwhm_mm / pixel, spatial_ndim=2)
        primary = (1.0 - fraction) * primary + fraction * scatter
    return primary * acquisition.sensitivity


def depth_dependent_response(
    activity: torch.Tensor,
    distance_mm: torch.Tensor,
    pixel_size_mm: float,
    acquisition: PlanarAcquisition,
    levels: int = 8,
) -> torch.Tensor:
    """:func:`detector_response` for activity at a different source distance in every pixel.

    The distance range is sampled at ``levels`` evenly spaced distances ``z_j``; each pixel's
    activity is shared between its two neighbouring levels with linear (hat) weights
    ``w_j(z)``, each level is blurred with its own ``R_s(z_j)``, and the results are summed:
    ``Σ_j (w_j · a) ⊛ h_Rs(z_j)``. Exact where ``z`` is one of the ``z_j`` (in particular for
    a constant map), and the widths vary linearly in between. Scatter follows ``acquisition``.

    Args:
        activity: non-negative ``(*batch, H, W)``.
        distance_mm: source-to-collimator distance per pixel, broadcastable to ``activity``, ``>= 0``.
        pixel_size_mm: square pixel side.
        acquisition: its ``distance_mm`` is ignored (taken from the map).
        levels: number of sampled distances (>= 2).
    """
    _check_activity(activity)
    distance = torch.as_tensor(distance_mm, dtype=activity.dtype, device=activity.device).expand_as(activity)
    if not bool(torch.isfinite(distance).all()) or float(distance.min()) < 0:
        raise InputError(None, "the distance map must be finite and >= 0 mm")
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 2:
        raise ConfigError(f"levels must be an integer >= 2, got {levels!r}")
    nearest, farthest = float(distance.min()), float(distance.max())
    if farthest - nearest < 1e-9:
        return detector_response(activity, pixel_size_mm, dataclasses.replace(acquisition, distance_mm=nearest))
    step = (farthest - nearest) / (levels - 1)
    position = (distance - nearest) / step  # fractional level index in [0, levels − 1]
    result = torch.zeros_like(activity)
    for level in range(levels):
        weight = (1.0 - (position - level).abs()).clamp(min=0.0)
        if float(weight.max()) == 0.0:
            continue
        at_level = dataclasses.replace(acquisition, distance_mm=nearest + level * step)
        result = result + detector_response(activity * weight, pixel_size_mm, at_level)
    return result


def bin_counts(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Detector binning: sum of each ``factor × factor`` block of the last two axes.

    ``(*batch, H, W)`` → ``(*batch, ⌊H/k⌋, ⌊W/k⌋)``; a trailing partial block is dropped.
    Output pixel ``i`` is the block ``k·i … k·i + k − 1`` (centred at ``k·i + (k − 1)/2``, as
    :func:`~medrestore.physics.blur.downsample_affine` assumes).
    """
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
        raise ConfigError(f"binning factor must be an integer >= 1, got {factor!r}")
    height, width = x.shape[-2] // factor, x.shape[-1] // factor
    if height == 0 or width == 0:
        raise InputError(None, f"image of shape {tuple(x.shape[-2:])} is smaller than the binning factor {factor}")
    cropped = x[..., : height * factor, : width * factor]
    blocks = cropped.reshape(*x.shape[:-2], height, factor, width, factor)
    return blocks.sum(dim=(-3, -1))


def decay_integral(half_life_s: float, start_s: float, stop_s: float) -> float:
    """``∫ e^(−λt) dt`` from ``t₁`` to ``t₂`` ``= (e^(−λt₁) − e^(−λt₂)) / λ`` (s): decay-corrected time."""
    decay = math.log(2.0) / half_life_s
    return (math.exp(-decay * start_s) - math.exp(-decay * stop_s)) / decay


def count_scale(rate: torch.Tensor, level: CountLevel, half_life_s: float | None = None) -> float:
    """Multiplier ``c`` turning an expected count-rate image into expected counts ``c · rate``.

    ``peak_counts``: ``c = peak / max(rate)``; ``total_counts``: ``c = total / Σ rate`` (over the
    whole tensor, so frames or batch members keep their relative levels);
    ``acquisition_time_s``: ``c = ∫₀ᵀ e^(−λt) dt`` (``rate`` in counts/s; decay ignored when
    ``half_life_s`` is None).
    """
    if level.acquisition_time_s is not None:
        time = level.acquisition_time_s
        return time if half_life_s is None else decay_integral(half_life_s, 0.0, time)
    reference = float(rate.max()) if level.peak_counts is not None else float(rate.sum())
    if reference <= 0:
        raise InputError(None, "the activity is zero everywhere; there is nothing to count")
    target = level.peak_counts if level.peak_counts is not None else level.total_counts
    return float(target) / reference  # type: ignore[arg-type]


def expected_counts(rate: torch.Tensor, level: CountLevel, half_life_s: float | None = None) -> torch.Tensor:
    """``rate · c`` with ``c`` from :func:`count_scale`."""
    return rate * count_scale(rate, level, half_life_s)


def simulate_planar(
    activity: torch.Tensor,
    pixel_size_mm: float,
    acquisition: PlanarAcquisition,
    level: CountLevel,
    generator: torch.Generator,
    factor: int = 1,
) -> torch.Tensor:
    """A planar acquisition: ``counts ~ Poisson(level(bin_k(detector_response(activity))))``.

    Args:
        activity: non-negative float tensor ``(*batch, H, W)`` on a grid of ``pixel_size_mm``.
        pixel_size_mm: input pixel side (mm); the detector pixel is ``factor ×`` larger.
        acquisition: collimator, isotope, distance, scatter, head.
        level: count level (peak, total, or time for activity in Bq per pixel).
        generator: source of all randomness (on the tensor's device).
        factor: integer binning from the input grid to the detector matrix.

    Returns:
        Integer-valued counts ``(*batch, ⌊H/k⌋, ⌊W/k⌋)`` of the input's dtype.

    Example:
        >>> point = torch.zeros(64, 64, dtype=torch.float64); point[32, 32] = 1.0
        >>> counts = simulate_planar(point, 1.0, PlanarAcquisition("LEHR"), CountLevel(total_counts=1e4),
        ...                          torch.Generator().manual_seed(0), factor=4)
        >>> counts.shape
        torch.Size([16, 16])
    """
    rate = bin_counts(detector_response(activity, pixel_size_mm, acquisition), factor)
    expected = expected_counts(rate, level, isotope_by_name(acquisition.isotope).half_life_s)
    return torch.poisson(expected, generator=generator)


@dataclasses.dataclass(frozen=True)
class TimedAcquisition:
    """The outcome of :func:`acquire_until_peak`: counts, duration and each stop's peak."""

    counts: torch.Tensor
    duration_s: float
    reached: bool
    stops: tuple[tuple[float, float], ...]


def acquire_until_peak(
    rate: torch.Tensor,
    half_life_s: float,
    minimum_peak_counts: float,
    start_s: float,
    step_s: float,
    maximum_s: float,
    generator: torch.Generator,
) -> TimedAcquisition:
    """Acquire for ``start_s``, then extend by ``step_s`` until the maximum pixel holds
    ``>= minimum_peak_counts`` counts or ``maximum_s`` is reached (the paper-phantom protocol:
    start at 10 min, extend until the maximum reaches 25 counts/pixel).

    Each extension adds independent Poisson counts with mean ``rate × ∫ e^(−λt) dt`` over the
    extra interval, exactly as a continued acquisition of a decaying source does.

    Args:
        rate: expected counts per second per detector pixel at ``t = 0`` (``(*batch, H, W)``).
        half_life_s: physical half-life of the isotope.
        minimum_peak_counts: stopping threshold on the *measured* maximum.
        start_s, step_s, maximum_s: first stop, extension step, longest acquisition (s).
        generator: source of all randomness.

    Returns:
        :class:`TimedAcquisition` with ``stops`` = ``((time_s, measured_max), ...)``.
    """
    if not 0 < start_s <= maximum_s or step_s <= 0 or minimum_peak_counts <= 0:
        raise ConfigError(
            f"need 0 < start_s <= maximum_s, step_s > 0 and minimum_peak_counts > 0; got start {start_s}, "
            f"step {step_s}, maximum {maximum_s}, minimum peak {minimum_peak_counts}"
        )
    counts = torch.zeros_like(rate)
    elapsed, stop, stops = 0.0, float(start_s), []
    while True:
        counts = counts + torch.poisson(rate * decay_integral(half_life_s, elapsed, stop), generator=generator)
        elapsed = stop
        peak = float(counts.max())
        stops.append((elapsed, peak))
        if peak >= minimum_peak_counts or elapsed >= maximum_s:
            return TimedAcquisition(counts, elapsed, peak >= minimum_peak_counts, tuple(stops))
        stop = min(elapsed + step_s, float(maximum_s))


def _bin_edges(count: int, pixel_mm: float, centre_offset_mm: float = 0.0) -> np.ndarray:
    """Edges (mm) of ``count`` pixels of ``pixel_mm`` centred on ``centre_offset_mm``."""
    return (np.arange(count + 1, dtype=np.float64) - count / 2.0) * pixel_mm + centre_offset_mm


def overlap_matrix(source_edges: np.ndarray, target_edges: np.ndarray) -> np.ndarray:
    """``W[i, n]`` = fraction of source pixel ``n`` lying in target pixel ``i`` (1-D).

    ``target = W @ source`` moves an extensive quantity (activity, counts) from one grid to
    another exactly (a piecewise-constant model of each source pixel); content outside the
    target grid is lost.
    """
    low = np.maximum(target_edges[:-1, None], source_edges[None, :-1])
    high = np.minimum(target_edges[1:, None], source_edges[None, 1:])
    return np.clip(high - low, 0.0, None) / np.diff(source_edges)[None, :]


def area_resample(
    x: torch.Tensor, source_pixel_mm: float, target_shape: tuple[int, int], target_pixel_mm: float
) -> torch.Tensor:
    """Move an extensive 2-D map ``(*batch, H, W)`` onto a centred grid of another pixel size.

    Both grids are centred on the same point; each source pixel's content is shared among the
    target pixels it overlaps in proportion to area (:func:`overlap_matrix`), so the total is
    kept when the target grid covers the source.
    """
    rows = overlap_matrix(_bin_edges(x.shape[-2], source_pixel_mm), _bin_edges(target_shape[0], target_pixel_mm))
    cols = overlap_matrix(_bin_edges(x.shape[-1], source_pixel_mm), _bin_edges(target_shape[1], target_pixel_mm))
    row_matrix = torch.from_numpy(rows).to(x.dtype).to(x.device)
    col_matrix = torch.from_numpy(cols).to(x.dtype).to(x.device)
    return row_matrix @ x @ col_matrix.T
