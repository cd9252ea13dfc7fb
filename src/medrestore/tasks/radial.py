"""Radial MRI workflow: simulate delayed radial acquisitions, estimate gradient delays, reconstruct.

* :func:`simulate_radial` — a real image → multi-coil 2-D radial k-space (uniform or
  golden-angle, full or half spokes, 2× readout oversampling by default), or a volume →
  stack-of-stars k-space (radial in-plane, Cartesian ``kz``), acquired on a
  trajectory shifted by gradient delays (:class:`~medrestore.physics.mri.trajectory.GradientDelay`),
  with complex Gaussian noise. The file stores the *nominal* trajectory (what a scanner
  records) and the simulated delay in ``metadata["simulation"]``.
* delay estimation (:mod:`medrestore.tasks.radial_delay`) — RING checked by AC-adaptive
  (``auto``), RING or AC-adaptive alone, from the data; unsound or disagreeing estimates fall
  back to the other estimator or to no correction, with a warning.
* :func:`reconstruct_radial` — delay correction (``auto``/``ring``/``ac-adaptive``/``none``),
  Pipe–Menon density compensation, coil maps from the gridded radial centre, then gridding,
  CG-SENSE, L1-wavelet or TV on the density-weighted NUFFT-SENSE operator (the solvers of the
  Cartesian workflow). ``auto`` = checked delay correction + CS-TV (see :data:`RADIAL_AUTO_METHOD`). ``unet`` = gridding (after the delay
  correction) followed by the zoo's radial U-Net (:data:`RADIAL_NETWORK`), which sees the gridded
  magnitude divided by its 99th percentile (:func:`apply_radial_network`) as in training
  (``benchmarks/radial_networks.py``). ``unrolled`` = the zoo's unrolled network
  (:data:`RADIAL_UNROLLED`, :class:`~medrestore.models.unrolled.RadialUnrolledNet`) on the
  corrected trajectory, Pipe–Menon weights and the ESPIRiT maps from the radial centre, every
  stage ending on a NUFFT-SENSE data-consistency step. Stack-of-stars k-space
  ``(coils, partitions, spokes, readout)`` is estimated on its ``kz = 0`` partition and
  reconstructed slice by slice after an inverse FFT along ``kz``.

Noise: ``noise`` is the standard deviation of the complex noise per sample relative to the
largest k-space magnitude (the DC sample of the strongest coil); the default,
:data:`DEFAULT_RADIAL_NOISE`, is the level of a real 16-channel head-coil scan
(``benchmarks/radial-delays.md``).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medrestore.core.errors import InputError, MedrestoreError
from medrestore.core.files import guard_output
from medrestore.core.fft import fftc, ifftc, rss
from medrestore.core.image import Image
from medrestore.core.kspace import KSpace
from medrestore.core.progress import track
from medrestore.core.random import make_generator
from medrestore.data.radial_recon import network_scale, radial_inputs, scaled_radial_sample
from medrestore.io import read_image, write_kspace
from medrestore.io.values import value_changes
from medrestore.physics.mri.delay_estimation import DelayDecision, DelayEstimate
from medrestore.physics.mri.density import pipe_menon_density
from medrestore.physics.mri.kspace_noise import radial_noise_std
from medrestore.physics.mri.nufft import NUFFTOperator
from medrestore.physics.mri.radial import gridding, radial_coil_maps, radial_sense, weighted_samples
from medrestore.physics.mri.simulation import birdcage_coil_maps
from medrestore.physics.mri.sense import SenseOperator
from medrestore.physics.mri.trajectory import (
    GradientDelay, RadialSpec, delayed_trajectory, has_full_spokes, radial_trajectory, stack_of_stars,
)
from medrestore.physics.mri.operators import LinearOperator
from medrestore.solvers.holdout import HoldoutProblem, HoldoutSettings, holdout_reconstruction
from medrestore.solvers.reconstruction import cg_sense, cs_solver
from medrestore.solvers.regularisation import RADIAL_NOISE_WEIGHTS, data_scale, relative_weight
from medrestore.tasks.radial_delay import (
    DELAY_CORRECTIONS, check_kspace_delay, decision_report, delay_axes, delay_from_values, delay_in_input_axes,
    estimate_delay_file, estimate_kspace_delay, is_stack_of_stars, radial_plane,
)
from medrestore.zoo import in_zoo, load_pretrained

__all__ = [
    "DEFAULT_RADIAL_NOISE", "DELAY_CORRECTIONS", "RADIAL_AUTO_METHOD", "RADIAL_METHODS", "RADIAL_NETWORK", "RADIAL_NETWORKS", "RADIAL_UNROLLED",
    "RadialReconOptions", "RadialReconResult", "RadialSimulation", "apply_radial_network",
    "apply_radial_unrolled", "check_kspace_delay", "corrected_trajectory", "delay_axes", "delay_from_values", "delay_in_input_axes",
    "estimate_delay_file",
    "estimate_kspace_delay", "network_scale", "radial_network_available", "radial_relative_weight",
    "radial_report_fields", "reconstruct_radial", "require_radial_network", "simulate_radial",
    "simulate_radial_file", "solve_radial",
]

RADIAL_METHODS = ("auto", "zero-filled", "sense", "cs-wavelet", "cs-tv", "unet", "unrolled")
RADIAL_NETWORK = "unet-radial-brain"
"""Zoo model of the ``unet`` method on radial data (U-Net on the gridded magnitude)."""
RADIAL_UNROLLED = "unrolled-radial-brain"
"""Zoo model of the ``unrolled`` method on radial data (NUFFT data consistency in every stage)."""
RADIAL_NETWORKS = {"unet": RADIAL_NETWORK, "unrolled": RADIAL_UNROLLED}
RADIAL_AUTO_METHOD = "cs-tv"
"""What ``auto`` runs on radial data: CS-TV with the cross-validated λ (:data:`RADIAL_HOLDOUT`). The unrolled network
(``--method unrolled``) is above it on held-out brain slices like its training data (whole head inside the field
of view) but below it on brain images that fill the field of view (``benchmarks/README.md``, radial networks): TV is
the default that holds up on data unlike the training set."""
DEFAULT_RADIAL_ITERATIONS = {"zero-filled": 0, "sense": 15, "cs-wavelet": 60, "cs-tv": 60}
RADIAL_HOLDOUT = HoldoutSettings(factors=(8.0, 4.0, 2.0, 1.0, 0.5, 0.25, 0.125), iterations=20, final_iterations=40,
                                 criterion="image")
"""How radial CS cross-validates its weight: whole spokes held out (10 %), candidates ×8 … ×1/8 of the
noise-referenced weight, 20 iterations each along the warm-started path, 40 on all spokes from the chosen
one. The criterion is the density-weighted error of the held-out samples (``"image"``): radial data
sample the whole disc, so no location stands for unacquired data as in the Cartesian ``"reference"``
criterion."""
DEFAULT_RADIAL_NOISE = 0.005
"""Default complex noise of :func:`simulate_radial`, relative to ``max|y|``: the ratio of the noise
standard deviation to the largest k-space magnitude of the real 16-channel head-coil brain slice
(``mri-raw-pulseq/2024-02-06-164128.dat``), rounded (``benchmarks/radial-delays.md``)."""


@dataclasses.dataclass(frozen=True)
class RadialSimulation:
    """How to simulate a radial acquisition.

    Attributes:
        spokes: number of spokes.
        golden: golden-angle ordering (else uniform).
        half_spokes: centre-out spokes.
        oversampling: readout oversampling.
        delay: gradient delays (samples).
        coils: number of simulated birdcage coils.
        noise: complex noise standard deviation relative to ``max|y|`` (default
            :data:`DEFAULT_RADIAL_NOISE`, a real scan's level; 0 for noise-free data).
        seed: noise seed.
    """

    spokes: int = 64
    golden: bool = True
    half_spokes: bool = False
    oversampling: float = 2.0
    delay: GradientDelay = GradientDelay()
    coils: int = 8
    noise: float = DEFAULT_RADIAL_NOISE
    seed: int = 0

    def __post_init__(self) -> None:
        if self.spokes < 1 or self.coils < 1:
            raise InputError(None, f"--spokes and --coils must be at least 1, got {self.spokes} and {self.coils}")
        if not self.noise >= 0:
            raise InputError(None, f"--noise must be non-negative, got {self.noise}")


def _square(image: torch.Tensor) -> torch.Tensor:
    """Zero-pad a 2-D image to a square of its larger side (centred)."""
    ny, nx = image.shape
    size = max(ny, nx)
    padded = torch.zeros((size, size), dtype=image.dtype)
    top, left = (size - ny) // 2, (size - nx) // 2
    padded[top : top + ny, left : left + nx] = image
    return padded


def _radial_planes(planes: torch.Tensor, options: RadialSimulation) -> tuple[torch.Tensor, torch.Tensor, RadialSpec]:
    """``(samples (coils, planes, spokes, readout), nominal trajectory, spec)`` of square planes ``(P, N, N)``.

    Every plane is acquired with the same spokes, delays and birdcage coils (coil maps constant
    along z); noise is added afterwards by the caller.
    """
    matrix = planes.shape[-1]
    spec = RadialSpec(matrix, options.spokes, options.oversampling, options.golden, options.half_spokes)
    nominal = radial_trajectory(spec)
    actual = delayed_trajectory(nominal, options.delay)
    operator = SenseOperator(birdcage_coil_maps((matrix, matrix), options.coils), NUFFTOperator(actual, (matrix, matrix), 1e-6))
    samples = torch.stack([operator.forward(plane.to(torch.complex64)) for plane in planes], dim=1)
    return samples, nominal, spec


def simulate_radial(image: Image, options: RadialSimulation) -> KSpace:
    """Multi-coil radial k-space of a real 2-D image, or stack-of-stars k-space of a 3-D volume.

    2-D: :class:`KSpace` ``(coils, spokes, readout)`` with the nominal trajectory
    ``(spokes, readout, 2)``, ``image_shape`` the (square) matrix and the image's affine.

    3-D (a volume ``(X, Y, Z)``, slices along its last axis): stack-of-stars — every slice's
    plane is acquired radially (same spokes and delays; coil maps constant along z) and the
    partition axis is Cartesian, ``y[p] = fftc_z(y_slices)[p]`` with ``kz = p − P//2``
    (:func:`~medrestore.physics.mri.trajectory.stack_of_stars`). k-space ``(coils, P, spokes,
    readout)``, trajectory ``(P, spokes, readout, 3)``, ``image_shape`` ``(P, N, N)``; the affine
    is permuted to that ``(z, x, y)`` order. Noise is added to the final k-space.
    """
    source = image.metadata.get("source_path")
    volume = image.spatial_ndim == 3 and image.data.ndim == 3
    if not volume and (image.spatial_ndim != 2 or image.data.ndim != 2):
        raise InputError(source, f"radial simulation needs one 2-D image or one 3-D volume, got shape {tuple(image.data.shape)}")
    data = image.data.to(torch.float32)
    planes = torch.stack([_square(plane) for plane in data.movedim(-1, 0)]) if volume else _square(data)[None]
    samples, nominal, spec = _radial_planes(planes, options)
    if volume:
        samples = fftc(samples.movedim(1, -1), 1).movedim(-1, 1)
    else:
        samples = samples[:, 0]
    if options.noise > 0:
        generator = make_generator(options.seed)
        sigma = options.noise * float(samples.abs().max()) / math.sqrt(2.0)
        noise = torch.complex(torch.randn(samples.shape, generator=generator), torch.randn(samples.shape, generator=generator))
        samples = samples + sigma * noise
    record = {"radial": spec.to_dict(), "simulation": {
        "delay": list(options.delay.as_tuple()), "coils": options.coils, "noise": options.noise, "seed": options.seed}}
    matrix = planes.shape[-1]
    if volume:
        affine = np.asarray(image.affine)[:, [2, 0, 1, 3]]
        record["radial"]["partitions"] = int(planes.shape[0])
        return KSpace(samples, (int(planes.shape[0]), matrix, matrix), None, stack_of_stars(nominal, planes.shape[0]), affine,
                      {**dict(image.metadata), **record})
    return KSpace(samples, (matrix, matrix), None, nominal, image.affine, {**dict(image.metadata), **record})


def simulate_radial_file(
    input_path: str | Path, output_path: str | Path, options: RadialSimulation, nonfinite: str = "refuse"
) -> dict[str, Any]:
    """Read an image, simulate (:func:`simulate_radial`) and write the k-space (``.npz`` or ISMRMRD ``.h5``).

    ``nonfinite`` is the reader's NaN/±Inf policy (``"refuse"`` or ``"zero"``, :mod:`medrestore.io.values`).
    """
    guard_output(output_path, [input_path])
    image = read_image(input_path, nonfinite=nonfinite)
    if image.data.ndim == 3 and image.data.shape[-1] in (3, 4) and image.spatial_ndim == 2:
        image = image.with_data(image.data[..., :3].mean(dim=-1))
    kspace = simulate_radial(image, options)
    write_kspace(kspace, output_path)
    return {"input": str(input_path), "output": str(output_path), "shape": list(kspace.data.shape),
            "image_shape": list(kspace.image_shape), **kspace.metadata["simulation"], "radial": kspace.metadata["radial"],
            **value_changes(image)}


@dataclasses.dataclass(frozen=True)
class RadialReconOptions:
    """How to reconstruct radial k-space.

    Attributes:
        method: one of :data:`RADIAL_METHODS` (``zero-filled`` = gridding + RSS, ``unet`` =
            gridding + the zoo's radial U-Net).
        delay_correction: one of :data:`DELAY_CORRECTIONS` (``auto`` = RING checked by AC-adaptive).
        lam: absolute regularisation weight (``None``: data-scaled default).
        iterations: solver iterations (``None``: the method's default).
        density_iterations: Pipe–Menon iterations.
        delay: a known delay in the input's axes (:func:`delay_in_input_axes`), applied instead
            of ``delay_correction``'s estimate.
    """

    method: str = "auto"
    delay_correction: str = "auto"
    lam: float | None = None
    iterations: int | None = None
    density_iterations: int = 20
    delay: GradientDelay | None = None

    def __post_init__(self) -> None:
        if self.method not in RADIAL_METHODS:
            raise InputError(None, f"method {self.method!r} does not apply to radial data; expected one of {', '.join(RADIAL_METHODS)}")
        if self.delay_correction not in DELAY_CORRECTIONS:
            raise InputError(None, f"unknown delay correction {self.delay_correction!r}; expected one of {', '.join(DELAY_CORRECTIONS)}")


@dataclasses.dataclass(frozen=True)
class RadialReconResult:
    """A radial reconstruction: magnitude image, method, λ, iterations, the delay applied, seconds, the delay decision.

    ``decision`` is ``None`` when no estimation ran (``none``, a given delay, centre-out spokes).
    """

    image: Image
    method: str
    lam: float | None
    iterations: int
    delay: DelayEstimate | None
    seconds: float
    decision: DelayDecision | None = None


def _delay_for(kspace: KSpace, correction: str) -> DelayDecision | None:
    """The delay decision for ``correction`` (:func:`check_kspace_delay`); ``None`` for ``none`` and, under ``auto``, centre-out spokes."""
    _, trajectory = radial_plane(kspace)
    if correction == "none" or (correction == "auto" and not has_full_spokes(trajectory)):
        return None
    return check_kspace_delay(kspace, correction)


def corrected_trajectory(kspace: KSpace, correction: str) -> tuple[torch.Tensor, DelayEstimate | None]:
    """The 2-D trajectory after delay correction (nominal when none is applied) and the estimate applied.

    ``auto`` decides with the checked estimate when the spokes run through the centre and
    leaves centre-out spokes (which neither estimator handles) uncorrected.
    """
    _, trajectory = radial_plane(kspace)
    decision = _delay_for(kspace, correction)
    estimate = None if decision is None else decision.applied
    return (trajectory if estimate is None else delayed_trajectory(trajectory, estimate.delay)), estimate


def solve_radial(
    method: str, data: torch.Tensor, trajectory: torch.Tensor, weights: torch.Tensor, maps: torch.Tensor,
    options: RadialReconOptions,
) -> tuple[torch.Tensor, float | None, int, dict[str, Any] | None]:
    """Complex image of ``method`` (``sense``, ``cs-wavelet``, ``cs-tv``) on the density-weighted NUFFT-SENSE operator.

    Returns ``(image (*grid), λ, iterations, selection)``; the problem is solved on data scaled to
    ``max|Aᴴy| = 1`` (as in :mod:`medrestore.tasks.recon`) and the image scaled back. Without a
    given ``λ``, CS cross-validates it by holding out whole spokes (:data:`RADIAL_HOLDOUT`,
    :mod:`medrestore.solvers.holdout`), starting from the noise-referenced weight
    (:func:`radial_relative_weight`); ``selection`` records that choice (``None`` otherwise).
    The held-out error is that of the density-weighted samples ``√w ⊙ y``, so each held-out
    sample counts by its Voronoi area: an estimate of the error over k-space (Parseval: of the
    image), whatever the radial density.
    """
    operator = radial_sense(maps, trajectory, weights)
    target = weighted_samples(data, weights)
    iterations = options.iterations or DEFAULT_RADIAL_ITERATIONS[method]
    scale = data_scale(operator, target)
    pixels = maps[0].numel()
    if method == "sense":  # Tikhonov weight: given, or from the noise level (radial_relative_weight)
        lam = options.lam if options.lam is not None else radial_relative_weight(method, data, trajectory, weights, scale, pixels)
        image, _ = cg_sense(operator, target / scale, lam, iterations, tolerance=0.0)
        return image * scale, lam, iterations, None
    solve = cs_solver(method, grid_ndim=2)
    if options.lam is not None:
        return solve(operator, target / scale, options.lam / scale, iterations, None) * scale, options.lam, iterations, None
    start = radial_relative_weight(method, data, trajectory, weights, scale, pixels)
    settings = RADIAL_HOLDOUT if options.iterations is None else dataclasses.replace(RADIAL_HOLDOUT, final_iterations=options.iterations)

    def operator_for(sampled: torch.Tensor) -> LinearOperator:
        """The weighted operator on the sampled spokes (held-out spokes get zero weight)."""
        return radial_sense(maps, trajectory, weights * sampled)

    acquired = torch.ones(data.shape[1:], dtype=torch.bool, device=data.device)
    problem = HoldoutProblem(solve, operator_for, operator.forward, target / scale, acquired)
    image, choice = holdout_reconstruction(problem, operator, start, settings)
    selection = {**choice.record(), "lambda": choice.lam * scale, "candidates": [c * scale for c in choice.candidates],
                 "rule_lambda": start * scale, "path_iterations": settings.iterations * len(choice.candidates)}  # fmt: skip
    return image * scale, choice.lam * scale, settings.final_iterations, selection


def radial_relative_weight(
    method: str, data: torch.Tensor, trajectory: torch.Tensor, weights: torch.Tensor, scale: float, pixels: int
) -> float:
    """``λ / max|Aᴴ√w y|`` of radial CS: ``c · σ̂ √mean(w) / scale`` (noise of the outer samples, :func:`radial_noise_std`).

    ``σ̂ √mean(w)`` is the noise level of the weighted data ``√w ⊙ y``; ``c`` =
    :data:`~medrestore.solvers.regularisation.RADIAL_NOISE_WEIGHTS`. Without a noise estimate:
    the scale-relative Cartesian defaults. ``sense``: the Tikhonov weight of CG-SENSE on the
    scaled problem, ``(AᴴA + λI) x = Aᴴ√w y / scale``, ``λ = c · σ̂ √mean(w) / scale · (pixels / 128²)``
    (0 without a noise estimate): the best weight grows with the matrix at a given noise level.
    """
    noise = radial_noise_std(data, trajectory)
    level = None if noise is None else noise * float(weights.to(torch.float64).clamp_min(0.0).mean().sqrt())
    if method == "sense":
        return 0.0 if not level else RADIAL_NOISE_WEIGHTS[method] * level / scale * pixels / 128**2
    return relative_weight(method, scale, level, RADIAL_NOISE_WEIGHTS)


def apply_radial_network(model: nn.Module, image: torch.Tensor) -> torch.Tensor:
    """A gridded magnitude ``(H, W)`` through ``model``: divided by :func:`network_scale`, run, multiplied back."""
    scale = network_scale(image)
    parameter = next(model.parameters())
    with torch.no_grad():
        output = model((image.to(torch.float32) / scale)[None, None].to(parameter.device))
    return output[0, 0].to(torch.float32).cpu() * scale


def apply_radial_unrolled(
    model: nn.Module, data: torch.Tensor, trajectory: torch.Tensor, weights: torch.Tensor, maps: torch.Tensor
) -> torch.Tensor:
    """Complex image ``(H, W)`` of the radial unrolled network on one plane ``data (coils, spokes, readout)``.

    The inputs are built as in training (:func:`medrestore.data.radial_recon.scaled_radial_sample`:
    density-compensated coil-combined gridding and k-space divided by the gridding's 99th
    percentile) and the output is scaled back.
    """
    sample = scaled_radial_sample(data, trajectory, weights, maps)
    parameter = next(model.parameters())
    inputs = [part[None].to(parameter.device) for part in radial_inputs(sample, "physics")]
    with torch.no_grad():
        output = model(*inputs)[0].cpu()
    return torch.complex(output[0], output[1]) * sample.scale


def radial_network_available(method: str) -> bool:
    """Whether the zoo holds the model of radial network method ``method``."""
    return method in RADIAL_NETWORKS and in_zoo(RADIAL_NETWORKS[method])


def require_radial_network(method: str) -> None:
    """A clear error when ``method`` is a radial network whose weights are not in the zoo."""
    if method not in RADIAL_NETWORKS:
        return
    if not radial_network_available(method):
        raise MedrestoreError(
            f"method {method!r} on radial data needs the zoo model {RADIAL_NETWORKS[method]!r}, which is not installed; "
            "use auto, zero-filled, sense, cs-wavelet or cs-tv"
        )


@functools.lru_cache(maxsize=4)
def _radial_network(method: str, device: str) -> nn.Module:
    return load_pretrained(RADIAL_NETWORKS[method], device)[0]


def _reconstruct_plane(
    data: torch.Tensor, trajectory: torch.Tensor, grid: tuple[int, int], method: str, options: RadialReconOptions,
    network: nn.Module | None = None,
) -> tuple[torch.Tensor, float | None, int, dict[str, Any] | None]:
    """One 2-D radial plane ``(coils, spokes, readout)`` on its (corrected) trajectory: ``(image, λ,
    iterations, λ selection)`` (:func:`solve_radial`).

    ``network``: the model of a network method (default: the zoo's).
    """
    weights = pipe_menon_density(trajectory, grid, options.density_iterations)
    if method in RADIAL_NETWORKS:
        network = network if network is not None else _radial_network(method, "cpu")
    if method in ("zero-filled", "unet"):
        image = rss(gridding(data, trajectory, grid, weights), coil_axis=0)
        if method == "unet":
            image = apply_radial_network(network, image.abs())  # type: ignore[arg-type]
        return image, None, 0, None
    maps = radial_coil_maps(data, trajectory, grid, weights)
    if method == "unrolled":
        return apply_radial_unrolled(network, data, trajectory, weights, maps), None, 0, None  # type: ignore[arg-type]
    return solve_radial(method, data, trajectory, weights, maps, options)


def reconstruct_radial(
    kspace: KSpace, options: RadialReconOptions = RadialReconOptions(), network: nn.Module | None = None
) -> RadialReconResult:
    """Reconstruct radial k-space to a magnitude image ``image_shape``.

    ``network`` replaces the zoo model of the ``unet``/``unrolled`` methods (e.g. a checkpoint
    under evaluation).

    2-D radial ``(coils, spokes, readout)``: delay correction, then the method. Stack-of-stars
    ``(coils, partitions, spokes, readout)``: the delay is estimated on the central partition,
    the Cartesian ``kz`` axis is inverse-transformed (centred, orthonormal: partition ``p`` is
    ``kz = p − P//2``) and every slice is reconstructed as a 2-D radial plane.
    """
    data, _ = radial_plane(kspace)
    method = RADIAL_AUTO_METHOD if options.method == "auto" else options.method
    start = time.perf_counter()
    decision = None
    if options.delay is not None:
        estimate: DelayEstimate | None = DelayEstimate(delay_in_input_axes(kspace.metadata, options.delay), "given", 0, 0.0)
    else:
        decision = _delay_for(kspace, options.delay_correction)
        estimate = None if decision is None else decision.applied
    if is_stack_of_stars(kspace):
        nominal = kspace.trajectory[kspace.data.shape[1] // 2, ..., 1:]
        slices = ifftc(kspace.data.movedim(1, -1), 1).movedim(-1, 1)  # (coils, slices, spokes, readout)
    else:
        nominal, slices = kspace.trajectory, kspace.data[:, None]
    trajectory = nominal if estimate is None else delayed_trajectory(nominal, estimate.delay)
    grid = tuple(kspace.image_shape[-2:])
    planes, selections, lam, iterations = [], [], None, 0
    for index in track(range(slices.shape[1]), "radial slices"):
        plane, lam, iterations, selection = _reconstruct_plane(slices[:, index], trajectory, grid, method, options, network)
        planes.append(plane.abs().to(torch.float32).cpu())
        selections.append(selection)
    image = torch.stack(planes) if is_stack_of_stars(kspace) else planes[0]
    seconds = time.perf_counter() - start
    metadata = {**kspace.metadata, "recon_method": method, "recon_lambda": lam, "recon_iterations": iterations,
                "delay_correction": None if estimate is None else {
                    "method": estimate.method, "delay": list(delay_in_input_axes(kspace.metadata, estimate.delay).as_tuple()),
                    "delay_axes": delay_axes(kspace.metadata)}}
    if decision is not None:
        metadata["delay_decision"] = decision.reason
    if any(selections):
        metadata["recon_lambda_selection"] = selections
    result = Image(image, kspace.affine, len(kspace.image_shape), "mri", metadata)
    return RadialReconResult(result, method, lam, iterations, estimate, seconds, decision)


def radial_report_fields(result: RadialReconResult) -> dict[str, Any]:
    """The delay-correction part of a recon report: what was applied and, when estimated, the decision (:func:`decision_report`)."""
    fields: dict[str, Any] = {"delay_correction": "none"}
    if result.delay is not None:
        delay = delay_in_input_axes(result.image.metadata, result.delay.delay)
        fields = {"delay_correction": result.delay.method, "delay": [round(v, 5) for v in delay.as_tuple()],
                  "delay_axes": delay_axes(result.image.metadata)}
    if result.decision is not None:
        fields["delay_decision"] = decision_report(result.image.metadata, result.decision)
    return fields
