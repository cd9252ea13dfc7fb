"""Radial k-space trajectories: 2-D spokes (uniform or golden-angle, full or half), stack-of-stars.

Units and layout follow :class:`~medrestore.core.kspace.KSpace`: a trajectory has shape
``(*samples, ndim)`` in grid units (cycles per field of view, ``[-N/2, N/2)`` for an ``N``
matrix) with its last axis in grid-axis order — ``(ky, kx)`` in 2-D, ``(kz, ky, kx)`` for
stack-of-stars.

A spoke at angle ``φ`` (from the ``kx`` axis towards ``ky``) points along
``n(φ) = (n_y, n_x) = (sin φ, cos φ)``. Its readout has ``oversampling`` samples per grid unit:

* full spokes: ``readout = oversampling · N`` samples at ``t_m = (m − readout/2) / oversampling``,
  so sample ``readout/2`` is the k-space centre (BART's centred ``traj -r -c`` convention);
* half spokes (centre-out): ``readout = oversampling · N / 2`` samples at ``t_m = m / oversampling``.

Angles:

* uniform full spokes ``φ_i = π i / S``; uniform half spokes ``φ_i = 2π i / S``;
* golden-angle full spokes ``φ_i = i · π (√5 − 1)/2`` (111.25°, Winkelmann et al., IEEE TMI
  26(1), 2007); golden-angle half spokes ``φ_i = i · 2π (2 − ϕ)`` (137.51°, ``ϕ`` the golden ratio).

Stack-of-stars repeats the 2-D trajectory on Cartesian partitions ``kz = p − P/2``.
"""

from __future__ import annotations

import dataclasses
import math

import torch

GOLDEN_RATIO = (1.0 + math.sqrt(5.0)) / 2.0
GOLDEN_ANGLE_FULL = math.pi / GOLDEN_RATIO  # 111.246°: spokes through the centre
GOLDEN_ANGLE_HALF = 2.0 * math.pi * (2.0 - GOLDEN_RATIO)  # 137.508°: centre-out spokes


@dataclasses.dataclass(frozen=True)
class RadialSpec:
    """A 2-D radial acquisition.

    Attributes:
        matrix: image matrix ``N`` (square ``N × N``).
        spokes: number of spokes ``S``.
        oversampling: readout samples per grid unit (2 = the usual 2× readout oversampling).
        golden: golden-angle ordering instead of uniform.
        half_spokes: centre-out spokes instead of spokes through the centre.
    """

    matrix: int
    spokes: int
    oversampling: float = 2.0
    golden: bool = False
    half_spokes: bool = False

    def __post_init__(self) -> None:
        if self.matrix < 2 or self.spokes < 1:
            raise ValueError(f"a radial acquisition needs a matrix ≥ 2 and ≥ 1 spoke, got {self.matrix} and {self.spokes}")
        if not self.oversampling >= 1.0:
            raise ValueError(f"readout oversampling must be ≥ 1, got {self.oversampling}")

    @property
    def readout(self) -> int:
        """Samples per spoke."""
        full = int(round(self.oversampling * self.matrix))
        return full // 2 if self.half_spokes else full

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def spoke_angles(spokes: int, golden: bool = False, half_spokes: bool = False) -> torch.Tensor:
    """Spoke angles ``φ_i`` (radians, float64 ``(spokes,)``) — see the module notes."""
    index = torch.arange(spokes, dtype=torch.float64)
    if golden:
        step = GOLDEN_ANGLE_HALF if half_spokes else GOLDEN_ANGLE_FULL
        return torch.remainder(index * step, 2.0 * math.pi)
    return index * ((2.0 if half_spokes else 1.0) * math.pi / spokes)


def readout_positions(spec: RadialSpec) -> torch.Tensor:
    """Positions ``t_m`` of the readout samples along a spoke, grid units, float64 ``(readout,)``."""
    samples = torch.arange(spec.readout, dtype=torch.float64)
    if spec.half_spokes:
        return samples / spec.oversampling
    return (samples - spec.readout // 2) / spec.oversampling


def spoke_directions(angles: torch.Tensor) -> torch.Tensor:
    """Unit directions ``n(φ) = (sin φ, cos φ)`` in grid-axis order ``(ky, kx)``: ``(*angles.shape, 2)``."""
    return torch.stack([torch.sin(angles), torch.cos(angles)], dim=-1)


def radial_trajectory(spec: RadialSpec, angles: torch.Tensor | None = None) -> torch.Tensor:
    """The nominal 2-D radial trajectory ``k_{i,m} = t_m n(φ_i)``: float32 ``(spokes, readout, 2)``.

    Args:
        spec: the acquisition.
        angles: explicit spoke angles (radians); default :func:`spoke_angles` of ``spec``.
    """
    angles = spoke_angles(spec.spokes, spec.golden, spec.half_spokes) if angles is None else angles.to(torch.float64)
    positions = readout_positions(spec)
    trajectory = positions[None, :, None] * spoke_directions(angles)[:, None, :]
    return trajectory.to(torch.float32)


def stack_of_stars(trajectory: torch.Tensor, partitions: int) -> torch.Tensor:
    """Stack a 2-D trajectory ``(spokes, readout, 2)`` on ``partitions`` Cartesian ``kz`` planes.

    Returns float32 ``(partitions, spokes, readout, 3)`` with ``kz = p − partitions // 2``
    (grid units), last axis ``(kz, ky, kx)``.
    """
    if trajectory.ndim != 3 or trajectory.shape[-1] != 2:
        raise ValueError(f"stack-of-stars needs a 2-D trajectory (spokes, readout, 2), got {tuple(trajectory.shape)}")
    kz = (torch.arange(partitions, dtype=torch.float32) - partitions // 2)[:, None, None, None]
    planes = trajectory.to(torch.float32)[None].expand(partitions, *trajectory.shape)
    return torch.cat([kz.expand(partitions, *trajectory.shape[:2], 1), planes], dim=-1)


@dataclasses.dataclass(frozen=True)
class SpokeGeometry:
    """Each spoke's direction and sample positions, recovered from a nominal 2-D radial trajectory.

    Attributes:
        angles: float64 ``(spokes,)`` — ``φ_i = atan2(n_y, n_x)``.
        directions: float64 ``(spokes, 2)`` unit vectors ``(n_y, n_x)``.
        positions: float64 ``(spokes, readout)`` — ``t = k · n`` (grid units).
        sample_spacing: readout sample spacing ``Δ`` (grid units; ``1/oversampling``).
    """

    angles: torch.Tensor
    directions: torch.Tensor
    positions: torch.Tensor
    sample_spacing: float


def spoke_geometry(trajectory: torch.Tensor) -> SpokeGeometry:
    """Directions and readout positions of the spokes of ``trajectory`` ``(spokes, readout, 2)``.

    The direction of each spoke is that of its farthest sample from the centre relative to its
    nearest (robust for full and centre-out spokes). Raises ``ValueError`` for a trajectory whose
    spokes are not straight lines through (or from) the centre.
    """
    if trajectory.ndim != 3 or trajectory.shape[-1] != 2 or trajectory.shape[1] < 2:
        raise ValueError(f"expected a 2-D radial trajectory (spokes, readout ≥ 2, 2), got {tuple(trajectory.shape)}")
    points = trajectory.to(torch.float64)
    extent = points[:, -1] - points[:, 0]
    directions = extent / torch.linalg.vector_norm(extent, dim=-1, keepdim=True).clamp_min(1e-12)
    positions = torch.einsum("srd,sd->sr", points, directions)
    residual = points - positions[..., None] * directions[:, None, :]
    if float(residual.abs().max()) > 1e-3:
        raise ValueError("the trajectory's spokes do not pass through the k-space centre (not a nominal radial trajectory)")
    spacing = float(torch.diff(positions, dim=1).mean())
    if not spacing > 0:
        raise ValueError("readout samples do not advance along the spokes")
    angles = torch.atan2(directions[:, 0], directions[:, 1])
    return SpokeGeometry(angles, directions, positions, spacing)


def has_full_spokes(trajectory: torch.Tensor) -> bool:
    """Whether a 2-D radial trajectory ``(spokes, readout, 2)`` has spokes through the centre (not centre-out)."""
    try:
        geometry = spoke_geometry(trajectory)
    except ValueError:
        return False
    return bool((geometry.positions[:, 0] / geometry.sample_spacing).max() <= -1.0)


@dataclasses.dataclass(frozen=True)
class GradientDelay:
    """Gradient delays in readout samples: the symmetric matrix ``S = [[x, xy], [xy, y]]``.

    Model (Moussavi et al., MRM 71(1), 2014; Rosenzweig, Holme & Uecker, MRM 81(3), 2019): delays
    shift every sample of a spoke with direction ``n`` (physical axes ``(n_x, n_y)``) by the same
    vector ``Δ · S n`` (``Δ`` the sample spacing), so the actual trajectory is
    ``k_actual = k_nominal + Δ · S n``. Along the spoke this is ``Δ (x cos²φ + y sin²φ + xy sin 2φ)``.
    Per-axis delays are ``xy = 0``.
    """

    x: float = 0.0
    y: float = 0.0
    xy: float = 0.0

    def as_tuple(self) -> tuple[float, float, float]:
        return (self.x, self.y, self.xy)

    def shifts(self, directions: torch.Tensor) -> torch.Tensor:
        """``S n`` for directions ``(..., 2)`` in ``(n_y, n_x)`` order; returned in the same order."""
        n_y, n_x = directions[..., 0], directions[..., 1]
        shift_x = self.x * n_x + self.xy * n_y
        shift_y = self.xy * n_x + self.y * n_y
        return torch.stack([shift_y, shift_x], dim=-1)

    def error(self, other: GradientDelay) -> float:
        """RMS difference over the three entries ``(x, y, xy)``, samples."""
        return math.sqrt(sum((a - b) ** 2 for a, b in zip(self.as_tuple(), other.as_tuple())) / 3.0)


def delayed_trajectory(trajectory: torch.Tensor, delay: GradientDelay) -> torch.Tensor:
    """The actual trajectory of a nominal 2-D radial trajectory ``(spokes, readout, 2)`` under ``delay``.

    ``k_actual = k_nominal + Δ · S n`` per spoke (see :class:`GradientDelay`). Correction is the
    same function applied to the nominal trajectory with the estimated delay. float32.
    """
    geometry = spoke_geometry(trajectory)
    shift = geometry.sample_spacing * delay.shifts(geometry.directions)
    return (trajectory.to(torch.float64) + shift[:, None, :]).to(torch.float32)


def delayed_stack_of_stars(trajectory: torch.Tensor, delay: GradientDelay) -> torch.Tensor:
    """:func:`delayed_trajectory` on every partition of a stack-of-stars trajectory ``(P, S, R, 3)`` (kz unchanged)."""
    planes = torch.stack([delayed_trajectory(plane[..., 1:], delay) for plane in trajectory])
    return torch.cat([trajectory[..., :1].to(torch.float32), planes], dim=-1)
