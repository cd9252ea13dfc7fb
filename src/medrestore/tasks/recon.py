"""MRI reconstruction workflow: undersample k-space, estimate coil maps, reconstruct, score.

Methods (``RECON_METHODS``):

* ``zero-filled`` — root-sum-of-squares of the inverse FFT of the zero-filled k-space (fastMRI's baseline);
* ``sense`` — CG-SENSE, 10 iterations from zero (early stopping regularises; ``--lam`` adds Tikhonov);
* ``cs-wavelet`` — L1-wavelet (db4, zero extension, maximal levels) by FISTA, 100 iterations,
  with random shifts of the image at every thresholding (cycle spinning, as BART's ``pics``);
* ``cs-tv`` — isotropic total variation by FISTA with an FGP prox, 100 iterations;
* ``auto`` — the best available for the data: fully sampled → ``zero-filled``; undersampled
  Cartesian → ``cs-wavelet`` (the trained networks score below CS on the measured and
  independent data, so ``auto`` never picks one; the report's ``method`` says what ran);
  radial (non-Cartesian) → gradient-delay correction (RING checked by AC-adaptive), then
  ``cs-tv`` on the NUFFT operator (:mod:`medrestore.tasks.radial`: ``zero-filled`` is gridding
  there, ``unet`` and ``unrolled`` the zoo's radial networks).

The CS weight of Cartesian data is chosen from the data by k-space hold-out cross-validation
(:data:`HOLDOUT`, :mod:`medrestore.solvers.holdout`) around a noise-referenced starting
value (:mod:`medrestore.solvers.regularisation`): no rule fitted to one kind of data has to
transfer to another. The report records the candidates, their held-out errors and the choice
(``lambda_selection``). ``lam`` overrides it with an absolute value (in the units of the
k-space). CS problems are
solved on k-space divided by ``max|Aᴴy|`` and the image multiplied back — the same minimiser,
without raw scanner units (~1e-6) pushing intermediate values into slow denormal floating
point. Coil maps (:mod:`medrestore.tasks.coil_maps`) come from ESPIRiT on the fully sampled
centre (adaptive kernel width, BART's eigenvalue crop 0.8, so the background outside the object
is reconstructed as zero; one or two map sets), from a file, or from a body-coil scan of the
same slice; many coils can first be compressed to a few virtual coils. 3-D Cartesian k-space
is transformed along its readout and reconstructed one readout position (a 2-D problem with
2-D maps) at a time (:mod:`medrestore.tasks.recon_slices`).

Network methods (``unet``, ``vgg-unet``, ``unrolled``) run the zoo models trained on simulated
multi-coil brain data (:mod:`medrestore.tasks.recon_networks`), with the same coil maps; a
method whose weights are not in the zoo refuses to run.

Scoring against a reference (``score_reconstruction``): the magnitude image is first scaled by
the least-squares intensity factor ``a = <x, y> / <x, x>`` (``x`` reconstruction, ``y``
reference) — reconstructions and references from different pipelines differ by a global gain
— then fastMRI's metrics (NMSE, PSNR with ``max(y)``, SSIM 7×7) are computed.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from medrestore.core.device import select_device
from medrestore.core.errors import InputError, MedrestoreError
from medrestore.core.files import guard_output, write_record
from medrestore.core.fft import ifftc, rss
from medrestore.core.image import Image
from medrestore.core.kspace import KSpace
from medrestore.core.progress import track
from medrestore.io import read_fastmri_reference, read_image, read_kspace, write_image, write_kspace
from medrestore.metrics import evaluate
from medrestore.physics.mri.coil_compression import COMPRESSION_KINDS, CoilCompression
from medrestore.physics.mri.espirit import RECON_ESPIRIT, EspiritOptions
from medrestore.physics.mri.kspace_noise import kspace_noise_std
from medrestore.physics.mri.masks import MASK_KINDS, MaskSpec, mask_acceleration, sample_mask
from medrestore.physics.mri.operators import LinearOperator
from medrestore.physics.mri.sense import cartesian_sense, split_intensity
from medrestore.physics.mri.trajectory import GradientDelay
from medrestore.solvers.holdout import HoldoutProblem, HoldoutSettings, holdout_reconstruction
from medrestore.solvers.reconstruction import WaveletOptions, cg_sense, cs_solver
from medrestore.solvers.regularisation import data_scale, relative_weight
from medrestore.tasks.radial import (
    DELAY_CORRECTIONS, RadialReconOptions, radial_report_fields, reconstruct_radial, require_radial_network,
)
from medrestore.tasks.coil_maps import plan_coil_maps, slice_coil_maps
from medrestore.tasks.recon_networks import network_available, network_reconstruction
from medrestore.tasks.recon_slices import assemble, slice_problems

__all__ = [
    "COMPRESSION_KINDS", "MASK_KINDS", "RECON_METHODS", "MaskSpec", "ReconOptions", "ReconResult", "intensity_fit", "reconstruct",
    "coil_compression_option", "reconstruct_any", "reconstruct_file", "score_reconstruction", "set_threads", "undersample", "undersample_file",
]

CLASSICAL_METHODS = ("zero-filled", "sense", "cs-wavelet", "cs-tv")
NETWORK_METHODS = ("unet", "vgg-unet", "unrolled")
RECON_METHODS = ("auto", *CLASSICAL_METHODS, *NETWORK_METHODS)
DEFAULT_ITERATIONS = {"zero-filled": 0, "sense": 10, "cs-wavelet": 100, "cs-tv": 100}
RECON_WAVELET = WaveletOptions(random_shifts=True)
"""``cs-wavelet``'s transform: db4, zero extension, maximal levels, random shifts (cycle spinning)."""
HOLDOUT = HoldoutSettings(factors=(8.0, 4.0, 2.0, 1.0, 0.5, 0.25, 0.125), iterations=25, final_iterations=50, criterion="reference")
"""The CS weight: k-space hold-out cross-validation over 1/8–8× the noise-referenced rule, in ×2 steps
(:mod:`medrestore.solvers.holdout`); ``--lam`` sets it instead, ``--iterations`` the last solve's length."""
CLASSICAL_ESPIRIT = dataclasses.replace(RECON_ESPIRIT, crop=0.8, min_rows_per_column=0.5)
"""ESPIRiT settings of ``sense`` and the CS methods: BART's eigenvalue crop (``ecalib -c 0.8``), so the
background outside the object is reconstructed as zero, with the kernel width fitted to the
calibration region so that the crop keeps the whole object (and no crop for centres too small to
tell); the networks keep ``RECON_ESPIRIT``, the whole-field-of-view maps they were trained with.
``benchmarks/mri-coil-maps.md`` measures both."""


@dataclasses.dataclass(frozen=True)
class ReconOptions:
    """How to reconstruct.

    Attributes:
        method: one of :data:`RECON_METHODS`.
        coil_maps: ``"espirit"`` or a path to maps ``(coils, *image)`` or ``(sets, coils, *image)`` (.npy/.npz/.cfl).
        lam: absolute regularisation weight; ``None`` = the data-scaled default.
        iterations: solver iterations; ``None`` = the method's default.
        device: ``cpu``, ``cuda``, ``auto``...
        espirit: ESPIRiT parameters of ``sense`` and the CS methods (``maps``: map sets, also read
            from a maps file; 2 reconstructs one image per set and returns their root-sum-of-squares).
        delay_correction: radial data only — gradient-delay estimator applied before
            reconstruction (``auto`` = RING checked by AC-adaptive, ``ring``, ``ac-adaptive``, ``none``).
        delay: radial data only — a known delay in the input's axes (BART input: ``bart traj
            -q``'s), applied instead of ``delay_correction``'s estimate.
        average: average repeated acquisitions (twix/ISMRMRD average counter, BART ``AVG``)
            instead of reconstructing each average.
        coil_compression: compress the coils to virtual coils before the maps and the solve
            (``None``: keep every coil); not for zero-filled reconstruction.
    """

    method: str = "auto"
    coil_maps: str = "espirit"
    lam: float | None = None
    iterations: int | None = None
    device: str = "cpu"
    espirit: EspiritOptions = CLASSICAL_ESPIRIT
    delay_correction: str = "auto"
    delay: GradientDelay | None = None
    average: bool = False
    coil_compression: CoilCompression | None = None

    def __post_init__(self) -> None:
        if self.delay_correction not in DELAY_CORRECTIONS:
            raise InputError(None, f"unknown delay correction {self.delay_correction!r}; expected one of {', '.join(DELAY_CORRECTIONS)}")
        if self.method not in RECON_METHODS:
            raise InputError(None, f"unknown reconstruction method {self.method!r}; expected one of {', '.join(RECON_METHODS)}")
        if self.lam is not None and not self.lam >= 0:
            raise InputError(None, f"--lam must be non-negative, got {self.lam}")
        if self.iterations is not None and self.iterations < 1:
            raise InputError(None, f"--iterations must be at least 1, got {self.iterations}")
        if not 0 <= self.espirit.crop < 1:
            raise InputError(None, f"the ESPIRiT crop must lie in [0, 1), got {self.espirit.crop}")
        if self.espirit.maps > 1 and self.method in NETWORK_METHODS:
            raise InputError(None, f"{self.method} takes one set of coil maps; several map sets work with sense and the CS methods")


@dataclasses.dataclass(frozen=True)
class ReconResult:
    """A reconstruction: the magnitude image (k-space geometry) and what produced it."""

    image: Image
    method: str
    lam: float | None
    iterations: int
    seconds: float


def coil_compression_option(virtual_coils: int | None, energy: float | None, kind: str = "auto") -> CoilCompression | None:
    """``recon``'s compression from ``--virtual-coils N`` or ``--coil-energy F`` (``None`` when neither is given)."""
    if virtual_coils is not None and energy is not None:
        raise InputError(None, "give --virtual-coils or --coil-energy, not both")
    if virtual_coils is None and energy is None:
        return None
    try:
        return CoilCompression(kind, virtual_coils, 0.99 if energy is None else energy)  # type: ignore[arg-type]
    except ValueError as error:
        raise InputError(None, str(error)) from None


def undersample(kspace: KSpace, spec: MaskSpec) -> KSpace:
    """Retrospective undersampling: zero the samples outside a new mask; the spec is recorded in metadata.

    Line masks run along the data's ``metadata["phase_encode_axis"]`` (``spec.phase_encode_axis``
    when the metadata has none). An existing mask is combined (logical and).
    """
    if not kspace.is_cartesian or len(kspace.image_shape) != 2:
        raise InputError(kspace.metadata.get("source_path"), "undersampling needs 2-D Cartesian k-space")
    axis = int(kspace.metadata.get("phase_encode_axis", spec.phase_encode_axis))
    spec = dataclasses.replace(spec, phase_encode_axis=axis)
    try:
        mask = sample_mask(spec, kspace.samples_shape)
    except ValueError as error:
        raise InputError(kspace.metadata.get("source_path"), str(error)) from None
    if kspace.mask is not None:
        mask = mask & torch.broadcast_to(kspace.mask, kspace.samples_shape)
    data = kspace.data * mask.to(kspace.data.device)
    record = {"kind": spec.kind, "acceleration": spec.acceleration, "center_fraction": spec.center_fraction,
              "seed": spec.seed, "phase_encode_axis": axis, "acceleration_reached": mask_acceleration(mask, kspace.samples_shape)}
    return kspace.with_data(data, mask=mask, metadata={**kspace.metadata, "undersampling": record})


def set_threads(threads: int) -> None:
    """Number of CPU threads torch uses in this process (on a machine shared with other jobs, 1 avoids oversubscription)."""
    torch.set_num_threads(max(1, int(threads)))


def resolve_method(kspace: KSpace, method: str) -> str:
    """``auto`` → the best classical method for the data; networks → a clear error without zoo weights."""
    if method in NETWORK_METHODS and not network_available(method):
        raise MedrestoreError(
            f"method {method!r} is not available until trained weights ship with the model zoo; "
            f"use one of: {', '.join(('auto', *CLASSICAL_METHODS))}"
        )
    if method != "auto":
        return method
    return "zero-filled" if kspace.mask is None else "cs-wavelet"


def auto_decision(kspace: KSpace) -> str:
    """Why ``auto`` ran what it ran (recorded in the report)."""
    if not kspace.is_cartesian:
        return ("radial k-space: gradient-delay correction, then TV on the NUFFT-SENSE operator with a weight "
                "cross-validated on held-out spokes; the radial networks are not offered, as they lose to TV on images "
                "unlike their training data (benchmarks/README.md, radial networks)")
    if kspace.mask is None:
        return "fully sampled: zero-filled RSS"
    return ("undersampled Cartesian: L1-wavelet CS with a cross-validated weight; no shipped network is offered, "
            "as none scores above CS on the independent sources (benchmarks/recon-sources.md)")


def _espirit_for(method: str, options: ReconOptions) -> EspiritOptions:
    """The networks were trained with ``RECON_ESPIRIT`` maps (whole field of view); the other methods use ``options.espirit``."""
    return RECON_ESPIRIT if method in NETWORK_METHODS else options.espirit


class SliceSolution(NamedTuple):
    """One slice's image (complex, or magnitude for zero-filled and map sets), the λ used, the
    iterations of the last solve, and how a cross-validated λ was chosen (``None`` otherwise)."""

    image: torch.Tensor
    lam: float | None
    iterations: int
    selection: dict[str, Any] | None = None


def _reconstruct_slice(
    mask: torch.Tensor, data: torch.Tensor, maps: torch.Tensor | None, method: str, options: ReconOptions
) -> SliceSolution:
    """One slice by ``method``.

    With several map sets (``maps`` of shape ``(sets, coils, *grid)``) one image per set is
    reconstructed, each regularised alone, and the result is their root-sum-of-squares.
    """
    if method == "zero-filled":
        return SliceSolution(rss(ifftc(data, 2), coil_axis=0), None, 0)
    assert maps is not None
    if maps.ndim == data.ndim + 1:
        solution = _solve_slice(data, maps, mask, method, options)
        return solution._replace(image=rss(solution.image, coil_axis=0))
    # Maps with an intensity profile (body-coil referenced) are used by their unit-norm directions:
    # the images of ESPIRiT's convention, and ESPIRiT's conditioning (AᴴA ≈ I).
    unit, _ = split_intensity(maps)
    if method in NETWORK_METHODS:
        return SliceSolution(network_reconstruction(method, data, unit.to(data.device), mask.to(data.device)), None, 0)
    return _solve_slice(data, unit, mask, method, options)


def _solve_slice(data: torch.Tensor, maps: torch.Tensor, mask: torch.Tensor, method: str, options: ReconOptions) -> SliceSolution:
    """SENSE or CS on one slice: the complex image ``(*grid)`` (``(sets, *grid)`` for map sets).

    The CS weight is cross-validated (:data:`HOLDOUT`) unless ``options.lam`` sets it."""
    maps, mask, map_sets = maps.to(data.device), mask.to(data.device), maps.ndim == data.ndim + 1

    def operator_for(sampled: torch.Tensor) -> LinearOperator:
        """The SENSE operator of these maps for a sampling mask (the acquired one, the training split, the full grid)."""
        return cartesian_sense(maps, sampled, map_sets)

    operator = operator_for(mask)
    grid_ndim = data.ndim - 1
    iterations = options.iterations or DEFAULT_ITERATIONS[method]
    scale = data_scale(operator, data)
    if method == "sense":
        lam = options.lam or 0.0
        image, _ = cg_sense(operator, data / scale, lam, iterations, tolerance=0.0)
        return SliceSolution(image * scale, lam, iterations)
    # Solve on data normalised to max|Aᴴy| = 1 (the problem is 1-homogeneous in (y, λ)): raw
    # scanner units (~1e-6) would otherwise drive intermediate values into slow denormal floats.
    solve = cs_solver(method, grid_ndim, RECON_WAVELET)
    if options.lam is not None:
        return SliceSolution(solve(operator, data / scale, options.lam / scale, iterations, None) * scale, options.lam, iterations)
    start = relative_weight(method, scale, kspace_noise_std(data, mask))
    full = operator_for(torch.ones(data.shape[-grid_ndim:], dtype=torch.bool, device=data.device))
    settings = HOLDOUT if options.iterations is None else dataclasses.replace(HOLDOUT, final_iterations=options.iterations)
    problem = HoldoutProblem(solve, operator_for, full.forward, data / scale, mask)
    image, choice = holdout_reconstruction(problem, operator, start, settings)
    selection = {**choice.record(), "lambda": choice.lam * scale, "candidates": [c * scale for c in choice.candidates],
                 "rule_lambda": start * scale, "path_iterations": settings.iterations * len(choice.candidates)}  # fmt: skip
    return SliceSolution(image * scale, choice.lam * scale, settings.final_iterations, selection)


def reconstruct(kspace: KSpace, options: ReconOptions = ReconOptions()) -> ReconResult:
    """Reconstruct a magnitude image with the k-space's geometry (every batch slice in turn).

    2-D k-space ``(*batch, coils, ky, kx)`` gives ``(ny, nx)`` images; 3-D k-space ``(coils, kz, ky, kx)``
    (fully sampled along the readout ``kx``) a volume ``(nz, ny, nx)`` reconstructed per readout position.

    Returns:
        :class:`ReconResult`; ``image.data`` float32 ``image_shape`` (or ``(slices, *image_shape)``),
        centre-cropped to ``metadata["recon_shape"]`` when the file defines one (fastMRI).
    """
    if not kspace.is_cartesian:
        raise InputError(kspace.metadata.get("source_path"), "non-Cartesian k-space: use medrestore.tasks.radial.reconstruct_radial")
    volume = len(kspace.image_shape) == 3
    batch_shape = tuple(kspace.data.shape[: kspace.coil_axis])
    if volume and batch_shape:
        raise InputError(kspace.metadata.get("source_path"), "3-D k-space is reconstructed one volume at a time (no batch axes)")
    method = resolve_method(kspace, options.method)
    device = select_device(options.device)
    start = time.perf_counter()
    plan = None if method == "zero-filled" else plan_coil_maps(options.coil_maps, kspace, _espirit_for(method, options))
    compression = None if method == "zero-filled" else options.coil_compression
    images, lam, iterations, coils = [], None, 0, kspace.n_coils
    selections: list[dict[str, Any]] = []
    for batch_index in track(list(np.ndindex(*batch_shape)) if batch_shape else [()], "slices"):
        pieces = slice_problems(kspace, batch_index, None if plan is None else plan.body, compression)
        planes, coils = [], int(pieces[0].kspace.shape[0])
        for piece in track(pieces, "readout positions") if volume else pieces:
            maps = None if plan is None else slice_coil_maps(plan, piece, kspace.metadata.get("source_path"))
            solution = _reconstruct_slice(piece.mask, piece.kspace.to(device), maps, method, options)
            lam, iterations = solution.lam, solution.iterations
            if solution.selection is not None:
                selections.append(solution.selection)
            planes.append(solution.image.abs().to(torch.float32).cpu())
        images.append(assemble(planes, volume))
    magnitude = torch.stack(images).reshape(*batch_shape, *kspace.image_shape)
    seconds = time.perf_counter() - start
    magnitude = _crop_to_recon_shape(magnitude, kspace.metadata.get("recon_shape"))
    metadata = {**kspace.metadata, "recon_method": method, "recon_lambda": lam, "recon_iterations": iterations,
                "recon_coils": coils, "recon_lambda_selection": selections or None}
    stack = _stack_layout(magnitude, list(kspace.metadata.get("batch_axes") or []), len(batch_shape))
    image = Image(stack, kspace.affine, 3 if batch_shape or volume else 2, "mri", metadata)
    return ReconResult(image, method, lam, iterations, seconds)


def _stack_layout(magnitude: torch.Tensor, batch_axes: list[str], batch_ndim: int) -> torch.Tensor:
    """Images ``(*batch, ny, nx)`` in :class:`Image`'s ``(*spatial, T)`` layout.

    One batch axis stays a stack ``(slices, ny, nx)``. With more (named by ``batch_axes``, e.g.
    repetitions × slices) the slice axis — else the innermost — becomes the stack and the others
    are flattened, in C order, into a trailing axis: ``(slices, ny, nx, repetitions·…)``.
    """
    if batch_ndim < 2:
        return magnitude
    if len(batch_axes) == batch_ndim and "slice" in batch_axes:
        magnitude = magnitude.movedim(batch_axes.index("slice"), batch_ndim - 1)
    flat = magnitude.reshape(-1, *magnitude.shape[batch_ndim - 1 :])
    return flat.movedim(0, -1).contiguous()


def _crop_to_recon_shape(image: torch.Tensor, recon_shape: Any) -> torch.Tensor:
    """Centre crop of the last two axes to ``recon_shape`` (no-op when absent or larger)."""
    if not recon_shape:
        return image
    height, width = (min(int(n), size) for n, size in zip(recon_shape, image.shape[-2:]))
    top, left = (image.shape[-2] - height) // 2, (image.shape[-1] - width) // 2
    return image[..., top : top + height, left : left + width]


def intensity_fit(prediction: torch.Tensor, reference: torch.Tensor) -> tuple[torch.Tensor, float]:
    """``(a·x, a)`` with the least-squares gain ``a = <x, y> / <x, x>``."""
    x, y = prediction.to(torch.float64), reference.to(torch.float64)
    denominator = float((x * x).sum())
    scale = float((x * y).sum()) / denominator if denominator > 0 else 1.0
    return (x * scale).to(torch.float32), scale


def score_reconstruction(image: torch.Tensor, reference: torch.Tensor) -> dict[str, float]:
    """fastMRI metrics (``nmse``, ``psnr``, ``ssim``) after the least-squares intensity fit, plus ``intensity_scale``."""
    if tuple(image.shape) != tuple(reference.shape):
        raise InputError(None, f"reconstruction of shape {tuple(image.shape)} and reference of shape {tuple(reference.shape)} differ")
    fitted, scale = intensity_fit(image, reference)
    return {**evaluate(fitted, reference, "fastmri"), "intensity_scale": scale}


def read_reference(path: str | Path) -> torch.Tensor:
    """A reference image: any image file, or a fastMRI ``.h5`` (its ``reconstruction_rss``)."""
    path = Path(path)
    if path.suffix.lower() in (".h5", ".hdf5"):
        return read_fastmri_reference(path).data
    return read_image(path).data


def _output_image(image: Image, path: Path) -> tuple[Image, str | None]:
    """PNG holds integers: the magnitude is scaled to 0–65535 (uint16); other formats keep float32."""
    if path.suffix.lower() != ".png":
        return image, None
    peak = float(image.data.max()) or 1.0
    return image.with_data(image.data / peak * 65535.0), "uint16"


def undersample_file(input_path: str | Path, output_path: str | Path, spec: MaskSpec) -> dict[str, Any]:
    """Read raw k-space, undersample it (see :func:`undersample`) and write it; returns the record."""
    guard_output(output_path, [input_path])
    kspace = undersample(read_kspace(input_path), spec)
    write_kspace(kspace, output_path)
    return {"input": str(input_path), "output": str(output_path), **kspace.metadata["undersampling"]}


def score_against_file(image: torch.Tensor, reference_path: str | Path) -> dict[str, float]:
    """:func:`score_reconstruction` of ``image`` against the reference file ``reference_path`` (errors name that file)."""
    reference = read_reference(reference_path)
    try:
        return score_reconstruction(image, reference)
    except InputError as error:
        raise InputError(reference_path, error.problem) from None


def reconstruct_any(kspace: KSpace, options: ReconOptions) -> tuple[ReconResult | Any, dict[str, Any]]:
    """Cartesian (:func:`reconstruct`) or radial (:func:`~medrestore.tasks.radial.reconstruct_radial`) k-space
    as ``medrestore recon`` runs it: the result and the record ``recon`` writes (method, λ, iterations,
    seconds, the delay and ``auto``'s decisions, the λ selection)."""
    extra: dict[str, Any] = {}
    if kspace.is_cartesian:
        result: ReconResult | Any = reconstruct(kspace, options)
    else:
        require_radial_network(options.method)
        radial = RadialReconOptions(options.method, options.delay_correction, options.lam, options.iterations,
                                    delay=options.delay)
        result = reconstruct_radial(kspace, radial)
        extra = radial_report_fields(result)
    record: dict[str, Any] = {
        "method": result.method, "lambda": result.lam, "iterations": result.iterations, "seconds": round(result.seconds, 3), **extra,
    }
    if options.method == "auto":
        record["auto_decision"] = auto_decision(kspace)
    if kspace.is_cartesian:
        record["coils"] = result.image.metadata.get("recon_coils")  # virtual coils after compression
    selections = result.image.metadata.get("recon_lambda_selection")
    if selections:
        record["lambda_selection"] = selections[0] if len(selections) == 1 else selections
    return result, record


def reconstruct_file(
    input_path: str | Path, output_path: str | Path, options: ReconOptions, reference_path: str | Path | None = None,
    trajectory_path: str | Path | None = None,
) -> dict[str, Any]:
    """Read k-space (BART k-space with its ``trajectory_path``), reconstruct, write the magnitude image and its record
    (``OUT.json``, :func:`~medrestore.core.files.sidecar_path`); with a reference, add fastMRI metrics."""
    maps_path = None if options.coil_maps == "espirit" else options.coil_maps
    guard_output(output_path, [input_path, reference_path, maps_path, trajectory_path], sidecar=True)
    kspace = read_kspace(input_path, trajectory_path, options.average)
    result, record = reconstruct_any(kspace, options)
    output_path = Path(output_path)
    image, dtype = _output_image(result.image, output_path)
    complete = kspace.is_cartesian and kspace.mask is None  # fully sampled: a plain reconstruction, nothing restored
    write_image(image.with_metadata(derivation="Derived" if complete else "Restored"), output_path, dtype)
    report: dict[str, Any] = {"input": str(input_path), "output": str(output_path), **record}
    if reference_path is not None:
        report["metrics"] = score_against_file(result.image.data, reference_path)
        report["reference"] = str(reference_path)
    write_record(output_path, report)
    return report
