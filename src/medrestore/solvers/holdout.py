"""The regularisation weight chosen by k-space hold-out cross-validation.

A weight rule fitted to one kind of data (a noise level read from the k-space periphery, a
fraction of the data's scale) does not transfer: sharp-edged objects leave signal in the
periphery, real scanners filter it, and the best weight moves with the acceleration, the
coils and the object. Cross-validation asks the data instead (Stone 1974; for MRI
reconstruction e.g. Ying, Xu & Liang, EMBS 2004; the self-supervised split of SSDU, Yaman et
al., MRM 84(6), 2020):

1. hold out a random ``fraction`` of the acquired samples ``H`` (the rest ``Ω∖H`` is the
   training data);
2. reconstruct from ``Ω∖H`` for each candidate ``λ_j = f_j λ₀`` (``f_j`` descending, each solve
   warm-started from the previous one: a continuation path, so each needs few iterations);
3. predict the held-out samples, ``ŷ_H = P_H F S x_λ``, and score the density-weighted error

   ``e(λ) = Σ_{k∈H} w_k Σ_c |ŷ_{c,k} − y_{c,k}|²,  w_k = 1 / p(k)``,

   where ``p(k)`` is the local sampling density (the sampled fraction of a box around ``k``).
   Variable-density masks hold out mostly central samples; weighting by ``1/p`` makes ``e`` an
   estimate of the error over the whole k-space grid, i.e. (Parseval) of the image error, up
   to the constant noise energy of the held-out samples (criterion ``"image"``).
   Criterion ``"reference"`` estimates instead the error against a reconstruction of the fully
   sampled data, noise included, as a scanner's reference is: held-out samples stand for the
   locations that were not acquired, ``w_k = (1 − p(k)) / (f p(k))``, and the acquired
   locations add the training residual ``‖P_{Ω∖H}(F S x − y)‖² / (1 − f)``, where such a
   reference carries the same noise as the data;
4. take the minimiser, refined by a parabola through its neighbours in ``log λ`` (the path stops
   once the error has risen at ``patience`` candidates in a row past its minimum);
5. solve on all acquired samples at that ``λ``, continuing from the training solution of the
   nearest candidate (:func:`holdout_reconstruction`) — the image the validation scored, refined
   by the held-out samples, rather than a new solve from zero that a different number of
   iterations would regularise differently.

The solver and the operator are passed in, so the rule serves any regulariser (wavelet, TV)
and any Cartesian sampling.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch

from medrestore.physics.mri.operators import LinearOperator
from medrestore.solvers.reconstruction import WarmSolver

Solver = WarmSolver
"""``solve(operator, kspace, λ, iterations, initial) → image`` (e.g. :func:`~medrestore.solvers.reconstruction.cs_solver`)."""
OperatorFor = Callable[[torch.Tensor], LinearOperator]
"""``operator_for(mask) → A`` for a sampling mask ``(*grid)``."""
Predictor = Callable[[torch.Tensor], torch.Tensor]
"""``predict(image) → (coils, *grid)``: the coil k-space of an image on the whole grid (``F S x``)."""


@dataclasses.dataclass(frozen=True)
class HoldoutSettings:
    """How the weight is cross-validated.

    Attributes:
        fraction: share of the acquired samples held out.
        factors: candidate weights relative to the starting weight, visited in this order
            (descending: from strong to weak regularisation).
        iterations: solver iterations per candidate (warm-started along the path).
        density_radius: half-width of the box in which the sampling density is measured.
        seed: seed of the random hold-out split.
        criterion: ``"image"`` (error of the image) or ``"reference"`` (error against a fully
            sampled reconstruction, noise included; module docstring).
        final_iterations: iterations of the last solve on all samples (from the chosen candidate).
        patience: candidates visited past the best one before the path stops (at least 1, so
            the minimum has a neighbour on each side for the refinement).
    """

    fraction: float = 0.1
    factors: tuple[float, ...] = (16.0, 8.0, 4.0, 2.0, 1.0, 0.5, 0.25, 0.125, 0.0625)
    iterations: int = 25
    density_radius: int = 4
    seed: int = 0
    criterion: str = "image"
    final_iterations: int = 50
    patience: int = 2

    def __post_init__(self) -> None:
        if self.criterion not in ("image", "reference"):
            raise ValueError(f"hold-out criterion must be 'image' or 'reference', got {self.criterion!r}")
        if not 0.0 < self.fraction < 0.5:
            raise ValueError(f"hold-out fraction must lie in (0, 0.5), got {self.fraction}")
        if len(self.factors) < 3 or list(self.factors) != sorted(self.factors, reverse=True):
            raise ValueError("hold-out factors must be at least three, in descending order")


@dataclasses.dataclass(frozen=True)
class HoldoutChoice:
    """The chosen weight, the candidates' weights and their held-out errors, and the last solution."""

    lam: float
    candidates: tuple[float, ...]
    errors: tuple[float, ...]
    solution: torch.Tensor

    def record(self) -> dict[str, object]:
        return {"rule": "k-space hold-out", "lambda": self.lam, "candidates": list(self.candidates), "errors": list(self.errors)}


def sampling_density(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Fraction of acquired samples in the ``(2r+1)``-wide box around each location (zero padding outside)."""
    grid = mask.to(torch.float32)
    width = 2 * radius + 1
    kernel = torch.ones((1, 1) + (width,) * grid.ndim, dtype=torch.float32)
    convolve = torch.nn.functional.conv2d if grid.ndim == 2 else torch.nn.functional.conv3d
    counts = convolve(grid[None, None], kernel, padding=radius)[0, 0]
    inside = convolve(torch.ones_like(grid)[None, None], kernel, padding=radius)[0, 0]
    return counts / inside


def split_holdout(mask: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(training mask, held-out mask)``: a random ``fraction`` of the acquired locations held out.

    When every acquired line along the last (readout) axis is complete — phase-encode line
    masks — whole lines are held out, as the missing data are whole lines: points of an acquired
    line would be predicted from their neighbours on the same line, an easier task than the one
    the reconstruction faces.
    """
    lines = mask.ndim >= 2 and bool((mask == mask[..., :1]).all())
    pattern = mask[..., 0] if lines else mask
    acquired = torch.nonzero(pattern.reshape(-1)).squeeze(1)
    generator = torch.Generator().manual_seed(seed)
    count = max(1, int(round(fraction * acquired.numel())))
    chosen = acquired[torch.randperm(acquired.numel(), generator=generator)[:count]]
    held = torch.zeros(pattern.numel(), dtype=torch.bool)
    held[chosen] = True
    held = held.reshape(pattern.shape)
    if lines:
        held = torch.broadcast_to(held[..., None], mask.shape).clone()
    return mask & ~held, held


def _refine(candidates: list[float], errors: list[float], best: int) -> float:
    """The minimiser of a parabola through the best candidate and its neighbours, in ``log λ``."""
    if best in (0, len(candidates) - 1):
        return candidates[best]
    x = [math.log(candidates[i]) for i in (best - 1, best, best + 1)]
    y = [errors[i] for i in (best - 1, best, best + 1)]
    denominator = (x[0] - x[1]) * (x[0] - x[2]) * (x[1] - x[2])
    a = (x[2] * (y[1] - y[0]) + x[1] * (y[0] - y[2]) + x[0] * (y[2] - y[1])) / denominator
    b = (x[2] ** 2 * (y[0] - y[1]) + x[1] ** 2 * (y[2] - y[0]) + x[0] ** 2 * (y[1] - y[2])) / denominator
    if a <= 0:
        return candidates[best]
    vertex = min(max(-b / (2 * a), min(x[0], x[2])), max(x[0], x[2]))
    return math.exp(vertex)


@dataclasses.dataclass(frozen=True)
class HoldoutProblem:
    """A reconstruction problem as the validation sees it.

    Attributes:
        solve: the reconstruction, e.g. L1-wavelet FISTA.
        operator_for: the forward operator for a sampling mask.
        predict: the coil k-space of an image on the whole grid.
        kspace: acquired data ``(coils, *grid)``, zero where not acquired.
        mask: acquired locations, bool, broadcastable to ``grid``.
    """

    solve: Solver
    operator_for: OperatorFor
    predict: Predictor
    kspace: torch.Tensor
    mask: torch.Tensor


def holdout_weight(problem: HoldoutProblem, start: float, settings: HoldoutSettings = HoldoutSettings()) -> HoldoutChoice:
    """Cross-validate ``λ`` around ``start`` (see the module docstring).

    Args:
        problem: the solver, operators and data.
        start: the starting weight ``λ₀`` (e.g. a noise-referenced rule's).
        settings: the split, the candidates and the iterations.

    Returns:
        :class:`HoldoutChoice`; ``solution`` is the reconstruction from the training samples at
        the best candidate, a warm start for the final solve on all samples.
    """
    solve, predict, kspace = problem.solve, problem.predict, problem.kspace
    full_mask = torch.broadcast_to(problem.mask.to(torch.bool).cpu(), tuple(kspace.shape[1:]))
    training, held = split_holdout(full_mask, settings.fraction, settings.seed)
    density = sampling_density(full_mask, settings.density_radius).clamp_min(1e-3)[held]
    if settings.criterion == "reference":
        weights = ((1.0 - density) / (density * settings.fraction)).to(kspace.device)
    else:
        weights = (1.0 / density).to(kspace.device)
    training, held = training.to(kspace.device), held.to(kspace.device)
    held_data = kspace[:, held]
    training_operator = problem.operator_for(training)
    training_data = kspace * training
    candidates, errors, solutions = [], [], []
    image = None
    for factor in settings.factors:
        lam = factor * start
        image = solve(training_operator, training_data, lam, settings.iterations, image)
        coil_kspace = predict(image)
        error = float((weights * (coil_kspace[:, held] - held_data).abs().square().sum(dim=0)).sum())
        if settings.criterion == "reference":
            error += float((coil_kspace[:, training] - kspace[:, training]).abs().square().sum()) / (1.0 - settings.fraction)
        errors.append(error)
        candidates.append(lam)
        solutions.append(image)
        if len(errors) - 1 - min(range(len(errors)), key=errors.__getitem__) >= settings.patience:
            break
    best = min(range(len(errors)), key=errors.__getitem__)
    return HoldoutChoice(_refine(candidates, errors, best), tuple(candidates), tuple(errors), solutions[best])


def holdout_reconstruction(
    problem: HoldoutProblem, operator: LinearOperator, start: float, settings: HoldoutSettings = HoldoutSettings()
) -> tuple[torch.Tensor, HoldoutChoice]:
    """The reconstruction at the cross-validated weight: :func:`holdout_weight`, then
    ``settings.final_iterations`` on all samples (``operator``) from the chosen candidate's image."""
    choice = holdout_weight(problem, start, settings)
    return problem.solve(operator, problem.kspace, choice.lam, settings.final_iterations, choice.solution), choice
