"""Super-resolution of planar nuclear-medicine images, in counts.

``superres_file(IN, OUT, request)`` (default: ``modality="nm", scale=4, method="dct-mlem"``) reads a scintigram
(any format :func:`medrestore.io.read_image` reads: DICOM NM planar or multi-frame, NIfTI,
TIFF, PNG, NumPy), puts every frame on a grid ``scale`` times finer and writes it atomically
with ``OUT.json`` recording how. Conventions:

* **Counts in, counts out.** The input's values are counts per coarse pixel. Every method's
  output is clipped at 0 and rescaled so that each frame keeps the input frame's total counts
  exactly (:func:`keep_total_counts`). A coarse image made by ``medrestore degrade --kind
  gamma-camera`` with its default count level (the input's own total) therefore comes back on
  the count scale of the image it was made from.
* **The system response** (:class:`SystemResponse`): the Gaussian FWHM ``R_s(z)`` of the
  collimator, distance and isotope, in fine pixels. Taken from the ``IN.json`` record of
  ``medrestore degrade --kind gamma-camera`` when there is one, else from the given (default:
  LEGP at 10 cm, Tc-99m; with ``collimator_from_image``, as the command runs, the collimator an NM DICOM
  names in ``CollimatorGridName``, ``INTR`` for an intrinsic acquisition) acquisition and pixel size: the input's
  spacing / ``k``, or 1 mm when the file stores no spacing (as ``degrade`` assumes for such
  images). A *measured* system FWHM in mm (``fwhm_mm``, ``--fwhm``: e.g. the camera's NEMA NU 1
  line-source FWHM at the acquisition's distance, :func:`medrestore.metrics.nema.line_source_widths`)
  replaces the collimator model's, whatever the record says.
* **Methods** (:data:`METHODS`):

  - ``bicubic`` — Keys' cubic convolution of the count density ``x / k²``;
  - ``dct-mlem`` (default, :data:`DEFAULT_METHOD`) — the coarse counts denoised first, then deblurred and enlarged by ML-EM
    (:func:`~medrestore.solvers.dct_denoise.denoise_counts`: Anscombe's transform makes the Poisson noise ≈ Gaussian of σ = 1,
    sliding-window 6 × 6 DCT hard thresholding at 2.7σ removes it, the exact unbiased inverse
    returns to counts; then 40 ML-EM iterations, more where the system response is wider than 9 fine pixels
    (:func:`~medrestore.models.count_restoration.response_iterations`: ``40 · (FWHM / 9)²``, e.g. 112 on 0.59-mm
    pixels; an explicit ``iterations`` is used as given), and a 1-pixel post-filter: the named method
    :data:`~medrestore.models.count_restoration.DCT_MLEM`). Denoising where the
    noise is still white and its level known lets ML-EM run longer without amplifying it. The noise
    level after the transform is also measured on each frame
    (:func:`~medrestore.solvers.dct_denoise.count_noise_sigma`, patch PCA; a camera's corrections make
    real counts super-Poisson) and recorded in ``OUT.json`` (``count_noise``); thresholding at it instead
    of 1 (``CountSuperResolution.estimate_noise``) was not taken, see ``benchmarks/nm-real.md``;
  - ``mlem`` — ML-EM on the raw counts with the system response and ``k × k`` binning
    (:func:`~medrestore.solvers.mlem.mlem_super_resolution`, 20 iterations), then a Gaussian
    post-filter of FWHM 2 fine pixels (the usual post-filtered EM of nuclear medicine;
    :data:`~medrestore.models.count_restoration.MLEM`; the default until ``dct-mlem``, see ``benchmarks/README.md``);
  - ``dct-mlem-ensemble`` — the mean of the two refinements below (:data:`MODEL_ENSEMBLES`), each
    run on its input and on the input turned by 180° (a self-ensemble, :data:`NETWORK_VIEWS`): four network
    passes; the best of every method on the simulated test sets of ``benchmarks/nm_superres.py``, not on
    real camera images (``benchmarks/nm-real.md``);
  - ``dct-mlem-resunet`` — the ``dct-mlem`` reconstruction (40 iterations, no post-filter) refined by a
    residual U-Net (3 levels of 32/64/128 maps, 1.04 M parameters) trained on simulated paper-phantom
    acquisitions (zoo ``nm-dct-mlem-resunet-x4``), with two views;
  - ``dct-mlem-vdsr`` — the same reconstruction refined by a smaller residual network (VDSR, 12 layers × 48
    maps, 0.21 M parameters; zoo ``nm-dct-mlem-vdsr-x4``), with two views;
  - ``mlem-vdsr`` — the 10-iteration ML-EM reconstruction refined by a residual network
    trained on simulated acquisitions (zoo ``nm-mlem-vdsr-x4``);
  - ``srcnn``, ``srresnet``, ``vdsr`` — networks that see only the coarse density (blind to the
    system response; zoo ``nm-srcnn-x4``, ``nm-srresnet-x4``, ``nm-vdsr-x4``).

  ``model`` replaces a network method's zoo model by another zoo name or a training
  checkpoint (``.pt``); ``ensemble`` sets the number of views a network is averaged over (1, 2, 4, 8).
* **The refinement guard** (:func:`guard_refinement`): a refining method (``dct-mlem-*``, ``mlem-vdsr``)
  runs its networks only on inputs inside what they learnt (:data:`REFINEMENT_DOMAIN`: fine pixel size,
  count level, matrix, ×4); elsewhere ``superres_file`` returns its classical stage and ``OUT.json``
  says so (``refinement_guard``: whether the networks ran, why not, the fallback).
* **Geometry.** The in-plane axes get ``k`` times more pixels; the affine's in-plane columns
  are divided by ``k`` and the origin moves to the first fine pixel's centre
  (:func:`~medrestore.physics.blur.upsample_affine`), so every pixel keeps its world position.
  Frames: a 2-D image with a trailing frame axis keeps it; a 3-D image (an NM multi-frame
  file: energy windows, views or time frames) is a stack of planar frames along its stack axis
  (:func:`~medrestore.core.image.planar_stack_axis`: first as DICOM stores it, last as dcm2niix converts it).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

import medrestore
from medrestore.core.cache import cached_in_run
from medrestore.core.errors import ConfigError, InputError
from medrestore.core.files import guard_output, load_torch_file, sha256_file, sidecar_path, write_record
from medrestore.core.image import Image, from_planar_frames, planar_frames, planar_stack_axis
from medrestore.data.normalisation import normalisation_from_record
from medrestore.inference import (
    DIHEDRAL,
    HALF_TURN,
    IDENTITY,
    QUARTER_TURNS,
    AveragedPredictor,
    Predictor,
    View,
    self_ensemble,
)
from medrestore.io import read_image, write_image
from medrestore.io.values import clip_negative, value_changes
from medrestore.models.count_restoration import (
    CLASSICAL_COUNT_METHODS, DCT_MLEM, MLEM, CountRestoration, keep_total_counts, response_iterations,
)  # fmt: skip
from medrestore.physics.blur import upsample, upsample_affine
from medrestore.physics.degradations import recorded_collimator
from medrestore.physics.gamma_camera import PlanarAcquisition
from medrestore.solvers.dct_denoise import count_noise_sigma
from medrestore.tasks.degrade import input_digest
from medrestore.zoo import load_pretrained

__all__ = [
    "DEFAULT_METHOD", "DEFAULT_MLEM_ITERATIONS", "DEFAULT_ZOO_MODELS", "METHODS", "MLEM_POST_FILTER_FWHM", "MODALITIES",
    "ENSEMBLE_SIZES", "MODEL_ENSEMBLES", "NETWORK_VIEWS", "CountSuperResolution", "PlanarAcquisition",
    "REFINEMENT_DOMAIN", "RefinementDomain", "SuperResolutionRequest", "SystemResponse", "guard_refinement", "keep_total_counts",
    "load_super_resolution", "superres_file", "superres_image", "system_response",
]  # fmt: skip

MODALITIES = ("nm",)
METHODS = (
    "bicubic", "dct-mlem", "dct-mlem-ensemble", "dct-mlem-resunet", "dct-mlem-vdsr", "mlem", "mlem-vdsr", "srcnn", "srresnet",
    "vdsr",
)  # fmt: skip
DEFAULT_METHOD = "dct-mlem"
"""Chosen by worst case over the real camera images and the simulated sets of ``benchmarks/nm_real.py``
(see ``benchmarks/nm-real.md``): the refinement networks, trained on simulated paper phantoms, gain on the
simulated sets and on a real flood but lose to their own classical stage on real line-source and four-bar
acquisitions that lie inside their training ranges, so no guard on those ranges can keep them from it."""
DEFAULT_ZOO_MODELS = {
    "dct-mlem-resunet": "nm-dct-mlem-resunet-x4", "dct-mlem-vdsr": "nm-dct-mlem-vdsr-x4", "mlem-vdsr": "nm-mlem-vdsr-x4",
    "srresnet": "nm-srresnet-x4", "srcnn": "nm-srcnn-x4", "vdsr": "nm-vdsr-x4",
}  # fmt: skip
"""The shipped zoo model of each network method (all for ×4; a model ensemble uses its members')."""
MODEL_ENSEMBLES = {"dct-mlem-ensemble": ("dct-mlem-resunet", "dct-mlem-vdsr")}
"""Methods that average the outputs of several refining methods' networks (each checked as its method's):
the U-Net and the VDSR err differently, so their mean is above either on the validation sets of
``benchmarks/nm_mlem_grid.py`` (scores in ``benchmarks/history.md``)."""
DEFAULT_MLEM_ITERATIONS = {
    "dct-mlem": DCT_MLEM.iterations, "dct-mlem-ensemble": DCT_MLEM.iterations, "dct-mlem-resunet": DCT_MLEM.iterations,
    "dct-mlem-vdsr": DCT_MLEM.iterations, "mlem": MLEM.iterations, "mlem-vdsr": 10,
}  # fmt: skip
"""ML-EM iterations of ``dct-mlem`` and ``mlem``, and of the inputs the refining networks were trained on."""
REFINED_INPUTS = {
    "dct-mlem-ensemble": "dct-mlem", "dct-mlem-resunet": "dct-mlem", "dct-mlem-vdsr": "dct-mlem", "mlem-vdsr": "mlem",
}  # fmt: skip
"""The reconstruction each refining method feeds its network (``data.nm.input`` of its training)."""
REFINER_ARCHITECTURES = {"dct-mlem-resunet": "resunet", "dct-mlem-vdsr": "vdsr", "mlem-vdsr": "vdsr"}
"""The network architecture of each refining method's zoo models (the other network methods: the method's name)."""
NETWORK_VIEWS: dict[str, tuple[View, ...]] = {
    "dct-mlem-ensemble": HALF_TURN, "dct-mlem-resunet": HALF_TURN, "dct-mlem-vdsr": HALF_TURN,
}  # fmt: skip
"""Self-ensemble of a network method by default (:mod:`medrestore.inference.ensemble`; the others: one view):
the refinement network(s) on the input and on the input turned by 180°, turned back and averaged. Chosen on the
validation phantoms and bone scans of ``benchmarks/nm_mlem_grid.py`` against one, four and eight views, within
the 1-s budget (scores in ``benchmarks/history.md``)."""
NETWORK_TILE = (1024, 1024)
"""Largest image (fine pixels) a zoo network runs on in one pass; larger ones are cut into tiles of this size
overlapping by a quarter and blended one at a time (:class:`~medrestore.inference.Predictor` with ``clip_window``), so memory
stays bounded on whole-body images. The tiles' overlap (256 pixels) is wider than the networks' receptive fields."""
VIEWS_OF_SIZE: dict[int, tuple[View, ...]] = {1: IDENTITY, 2: HALF_TURN, 4: QUARTER_TURNS, 8: DIHEDRAL}
"""The views of ``--ensemble N``."""
ENSEMBLE_SIZES = tuple(VIEWS_OF_SIZE)
MLEM_POST_FILTER_FWHM = {name: method.post_filter_fwhm for name, method in CLASSICAL_COUNT_METHODS.items()}
"""Gaussian post-filter of the ML-EM estimate, FWHM in fine pixels (chosen with ``benchmarks/nm_mlem_grid.py``
on validation phantoms and bone scans)."""
UNKNOWN_SPACING_PIXEL_MM = 1.0


@dataclasses.dataclass(frozen=True)
class RefinementDomain:
    """The inputs the refinement networks learnt from, as ``superres`` can measure them on a coarse image.

    The simulation of ``configs/nm-dct-mlem-vdsr.yaml`` and ``configs/nm-dct-mlem-resunet.yaml``: fine
    pixels of ``pixel_size_mm`` (drawn in 0.6–5 mm), a brightest original pixel of ``peak_counts``
    expected counts (10–1000), training patches of 48 (VDSR) and 64 (U-Net) fine pixels, so at least 12
    coarse pixels a side at ×4, and one camera: LEGP at 80–120 mm for Tc-99m, a system response of
    ``resolution_mm`` (7.8–10.0 mm; an intrinsic acquisition's 3.8 mm or LEHR's 7.2 mm at 10 cm is another blur than
    they learnt to undo); the same ranges in ``configs/nm-mlem-vdsr.yaml``. The count
    level of a coarse image ``y (F, h, w)`` is its robust peak per fine pixel,
    ``q_{99.5 %}(y) / k²`` (the 99.5th percentile, so that a few hot pixels do not decide).
    """

    pixel_size_mm: tuple[float, float] = (0.6, 5.0)
    peak_counts: tuple[float, float] = (10.0, 1000.0)
    min_coarse_side: int = 12
    peak_quantile: float = 0.995
    resolution_mm: tuple[float, float] = (
        PlanarAcquisition("LEGP", "Tc-99m", 80.0).resolution_mm, PlanarAcquisition("LEGP", "Tc-99m", 120.0).resolution_mm,
    )  # fmt: skip

    def count_level(self, frames: torch.Tensor, scale: int) -> float:
        """``q(y) / k²`` of coarse counts ``frames (F, h, w)`` (class docstring)."""
        return float(np.quantile(frames.detach().cpu().numpy(), self.peak_quantile)) / scale**2  # any size (torch's: < 2²⁴)

    def outside(self, frames: torch.Tensor, scale: int, pixel_size_mm: float, resolution_mm: float | None = None) -> list[str]:
        """Why coarse counts ``frames (F, h, w)`` at fine ``pixel_size_mm``, acquired with a system response of
        ``resolution_mm`` FWHM (``None``: not checked), lie outside the domain (empty: inside)."""
        reasons = []
        low, high = self.resolution_mm
        if resolution_mm is not None and not low * (1 - 1e-6) <= resolution_mm <= high * (1 + 1e-6):
            reasons.append(f"system response {resolution_mm:.3g} mm outside the {low:.3g}-{high:.3g} mm learnt (LEGP at 80-120 mm)")
        low, high = self.pixel_size_mm
        if not low <= pixel_size_mm <= high:
            reasons.append(f"fine pixel size {pixel_size_mm:.3g} mm outside the {low:g}-{high:g} mm learnt")
        level, (least, most) = self.count_level(frames, scale), self.peak_counts
        if not least <= level <= most:
            reasons.append(f"count level {level:.4g} counts per fine pixel outside the {least:g}-{most:g} learnt")
        if min(frames.shape[-2:]) < self.min_coarse_side:
            reasons.append(f"matrix {tuple(frames.shape[-2:])} smaller than the {self.min_coarse_side}-pixel side learnt")
        return reasons

    def record(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


REFINEMENT_DOMAIN = RefinementDomain()
"""The domain of the shipped refinement networks (``dct-mlem-*`` and ``mlem-vdsr``, all trained for ×4)."""


@dataclasses.dataclass(frozen=True)
class SystemResponse:
    """The camera behind a coarse image: acquisition and *fine* pixel size, and where they came from.

    ``measured_fwhm_mm``: a measured system FWHM (mm) that replaces the acquisition's modelled ``R_s(z)``.
    """

    acquisition: PlanarAcquisition
    pixel_size_mm: float
    source: str
    measured_fwhm_mm: float | None = None
    collimator_source: str | None = None
    """Where the collimator came from when the image's file was asked (:func:`~medrestore.physics.degradations.recorded_collimator`)."""

    @property
    def resolution_mm(self) -> float:
        """The system FWHM in mm: the measured one when given, else the collimator model's ``R_s(z)``."""
        return self.acquisition.resolution_mm if self.measured_fwhm_mm is None else self.measured_fwhm_mm

    @property
    def fwhm_pixels(self) -> float:
        """``R_s(z) / Δ``: the system response FWHM in fine pixels."""
        return self.resolution_mm / self.pixel_size_mm

    def record(self) -> dict[str, Any]:
        acquisition = self.acquisition
        return {
            "collimator": acquisition.collimator, "isotope": acquisition.isotope, "distance_mm": acquisition.distance_mm,
            "pixel_size_mm": self.pixel_size_mm, "resolution_mm": self.resolution_mm,
            "resolution_source": "collimator model" if self.measured_fwhm_mm is None else "measured (given FWHM)",
            "fwhm_pixels": self.fwhm_pixels, "source": self.source,
            **({"collimator_source": self.collimator_source} if self.collimator_source else {}),
        }  # fmt: skip


@dataclasses.dataclass(frozen=True, eq=False)
class CountSuperResolution:
    """A method mapping one planar frame of counts ``(h, w)`` to ``(k·h, k·w)`` counts.

    Attributes:
        method: one of :data:`METHODS`.
        scale: ``k``.
        predictor: the network with its normalisation, or several averaged (``None`` for ``bicubic`` and ``mlem``).
        model_name: zoo name or checkpoint path of the network (of each network, joined by ``+``).
        model_sha256: SHA-256 of the weights or checkpoint file (of each, joined by ``+``).
        iterations: ML-EM iterations (the methods with ``mlem`` in their name).
        post_filter_fwhm: Gaussian post-filter of the ML-EM estimate (fine pixels, 0: none).
        views: the network's self-ensemble (:func:`~medrestore.inference.ensemble.self_ensemble`; one view: none).
        estimate_noise: the ``dct-mlem`` methods threshold at the noise level measured on each frame
            (:func:`~medrestore.solvers.dct_denoise.count_noise_sigma`, never below Poisson's σ = 1) instead of
            Poisson's σ = 1 (the default, chosen by worst case in ``benchmarks/nm-real.md``; the measured level
            is recorded either way).
        default_iterations: :attr:`iterations` is the method's default, not a caller's: ``dct-mlem`` then runs
            :func:`~medrestore.models.count_restoration.response_iterations` of it (the refining methods keep the
            count their networks' inputs were made with).
    """

    method: str
    scale: int
    predictor: Predictor | AveragedPredictor | None = None
    model_name: str | None = None
    model_sha256: str | None = None
    iterations: int = 10
    post_filter_fwhm: float = 0.0
    views: tuple[View, ...] = IDENTITY
    estimate_noise: bool = False
    default_iterations: bool = False

    def _apply_network(self, image: torch.Tensor) -> torch.Tensor:
        """The network(s) on ``image``, averaged over :attr:`views`."""
        assert self.predictor is not None
        return self_ensemble(self.predictor.predict, image, self.views)

    @property
    def needs_response(self) -> bool:
        return "mlem" in self.method

    @property
    def denoises(self) -> bool:
        """Whether the counts are DCT-denoised before ML-EM (the ``dct-mlem`` methods)."""
        return self.method.startswith("dct-mlem")

    def mlem_iterations(self, fwhm_pixels: float) -> int:
        """The ML-EM iterations run for a system response of ``fwhm_pixels`` fine pixels."""
        if self.method == "dct-mlem" and self.default_iterations:
            return response_iterations(self.iterations, fwhm_pixels)
        return self.iterations

    def noise_sigma(self, counts: torch.Tensor, fwhm_pixels: float | None) -> dict[str, float | None] | None:
        """The noise level the DCT step of a ``dct-mlem`` method uses on coarse ``counts (h, w)`` with a system response
        of ``fwhm_pixels`` fine pixels: ``{"sigma": used, "estimate": measured or None}`` (``None`` for the other
        methods; :func:`~medrestore.solvers.dct_denoise.count_noise_sigma`)."""
        if not self.denoises:
            return None
        used, estimate = count_noise_sigma(counts, None if fwhm_pixels is None else fwhm_pixels / self.scale)
        return {"sigma": used if self.estimate_noise else 1.0, "estimate": estimate}

    def density(self, counts: torch.Tensor, fwhm_pixels: float | None = None) -> torch.Tensor:
        """The fine-grid estimate before the total is restored, ``(k·h, k·w)`` (counts per fine pixel)."""
        if self.needs_response:
            if fwhm_pixels is None:
                raise ConfigError(f"method {self.method} needs the system response (fwhm_pixels)")
            noise = self.noise_sigma(counts, fwhm_pixels)
            stage = CountRestoration(self.denoises, self.mlem_iterations(fwhm_pixels), self.post_filter_fwhm)
            fine = stage.density(counts, fwhm_pixels, self.scale, 1.0 if noise is None else float(noise["sigma"]))  # type: ignore[arg-type]
            return fine if self.predictor is None else self._apply_network(fine.to(torch.float32))
        coarse = counts.to(torch.float32) / self.scale**2
        if self.predictor is None:
            return upsample(coarse, self.scale, "bicubic", spatial_ndim=2)
        return self._apply_network(coarse)

    def __call__(self, counts: torch.Tensor, fwhm_pixels: float | None = None) -> torch.Tensor:
        """Fine-grid counts ``(k·h, k·w)`` float64 with the total of ``counts`` (a 2-D tensor)."""
        if counts.ndim != 2:
            raise InputError(None, f"a planar frame is 2-D, got shape {tuple(counts.shape)}")
        return keep_total_counts(self.density(counts, fwhm_pixels), float(counts.sum(dtype=torch.float64)))


def _check_scale(scale: int) -> int:
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 2:
        raise ConfigError(f"scale must be an integer >= 2, got {scale!r}")
    return scale


def _checkpoint_input(path: Path) -> str:
    """``data.nm.input`` of the training configuration stored in a checkpoint (``coarse`` when absent)."""
    payload = load_torch_file(path)
    config = yaml.safe_load(str(payload.get("config") or "") or "{}") if isinstance(payload, dict) else {}
    return str(((config.get("data") or {}).get("nm") or {}).get("input", "coarse"))


def _check_refined_input(method: str, trained_input: str, what: str) -> None:
    """Refuse a refining network trained on another reconstruction than ``method`` makes."""
    if trained_input != REFINED_INPUTS[method]:
        raise ConfigError(f"{what} was trained on {trained_input} inputs; method {method} makes {REFINED_INPUTS[method]} ones")


def _channels_last(predictor: Predictor) -> Predictor:
    """``predictor`` with its 2-D network's weights channels-last: oneDNN's convolutions run about 1.5× faster
    so on a CPU (the outputs differ by float rounding only)."""
    predictor.model.to(memory_format=torch.channels_last)
    return predictor


def _network(method: str, model: str | None, scale: int, device: str) -> tuple[Predictor, str, str]:
    """The predictor of a zoo model or training checkpoint (channels-last), its name and the file's SHA-256.

    A zoo card recording the training ``scale`` refuses any other (a network refining ×4 ML-EM
    reconstructions has not seen ×2 ones).
    """
    name = model or DEFAULT_ZOO_MODELS[method]
    path = Path(name)
    if path.suffix == ".pt" and path.is_file():
        if method in REFINED_INPUTS:
            _check_refined_input(method, _checkpoint_input(path), f"checkpoint {path}")
        return _channels_last(Predictor.from_checkpoint(path, device=device)), str(path), sha256_file(path)
    network, card = load_pretrained(name, device=device)
    architecture = REFINER_ARCHITECTURES.get(method, method)
    if card.architecture != architecture:
        raise ConfigError(f"zoo model {name!r} is a {card.architecture}; method {method} needs a {architecture}")
    if method in REFINED_INPUTS and card.training.get("input") is not None:  # cards before 2026-11-22 do not record it
        _check_refined_input(method, str(card.training["input"]), f"zoo model {name!r}")
    trained = card.training.get("scale")
    if trained is not None and int(trained) != scale:  # type: ignore[call-overload]
        raise ConfigError(f"zoo model {name!r} was trained for ×{trained}, not ×{scale}; use --scale {trained}")
    normalisation = normalisation_from_record(card.normalisation)
    predictor = Predictor(network, normalisation, window=NETWORK_TILE, device=device, batch_size=1, clip_window=True)
    return _channels_last(predictor), name, card.sha256


@cached_in_run
def load_super_resolution(
    method: str = DEFAULT_METHOD, scale: int = 4, model: str | None = None, device: str = "cpu",
    iterations: int | None = None, ensemble: int | None = None,
) -> CountSuperResolution:  # fmt: skip
    """The method ``method`` at ``scale``; networks from the zoo (``model``: zoo name or ``.pt`` checkpoint; for a
    model ensemble, :data:`MODEL_ENSEMBLES`, one per member joined by ``+``).

    ``iterations`` (ML-EM methods) defaults to :data:`DEFAULT_MLEM_ITERATIONS` of the method (``dct-mlem``: scaled
    with the system response, :meth:`CountSuperResolution.mlem_iterations`);
    ``ensemble`` (network methods: 1, 2, 4 or 8 views, :data:`ENSEMBLE_SIZES`) to :data:`NETWORK_VIEWS`.

    Raises:
        ConfigError: unknown method, bad scale or iterations, a model of another architecture or scale.
        MedrestoreError: unknown zoo name, missing or tampered weights.
    """
    if method not in METHODS:
        raise ConfigError(f"unknown super-resolution method {method!r}; choose one of {', '.join(METHODS)}")
    scale = _check_scale(scale)
    default_iterations = iterations is None
    iterations = DEFAULT_MLEM_ITERATIONS.get(method, 0) if iterations is None else iterations
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
        raise ConfigError(f"iterations must be an integer >= 0, got {iterations!r}")
    if ensemble is not None and ensemble not in ENSEMBLE_SIZES:
        raise ConfigError(f"a self-ensemble has {', '.join(map(str, ENSEMBLE_SIZES))} views, not {ensemble!r}")
    if method in ("bicubic", "dct-mlem", "mlem"):
        if model is not None or ensemble not in (None, 1):
            option = "--model" if model is not None else "--ensemble"
            raise ConfigError(f"{option} applies to the network methods, not {method}")
        post_filter = MLEM_POST_FILTER_FWHM.get(method, 0.0)
        return CountSuperResolution(
            method, scale, iterations=iterations, post_filter_fwhm=post_filter, default_iterations=default_iterations
        )  # fmt: skip
    members = MODEL_ENSEMBLES.get(method, (method,))
    names: list[str | None] = [None] * len(members) if model is None else list(model.split("+"))
    if len(names) != len(members):
        raise ConfigError(f"method {method} averages {len(members)} networks ({' + '.join(members)}); give as many models joined by '+'")
    loaded = [_network(member, name, scale, device) for member, name in zip(members, names)]
    expected = 1 if method in REFINED_INPUTS else scale
    for predictor, name, _ in loaded:
        factor = int(getattr(predictor.model, "scale_factor", 1))
        if factor != expected:
            raise ConfigError(f"model {name!r} enlarges ×{factor}; method {method} at ×{scale} needs ×{expected}")
    views = NETWORK_VIEWS.get(method, IDENTITY) if ensemble is None else VIEWS_OF_SIZE[ensemble]
    combined = loaded[0][0] if len(loaded) == 1 else AveragedPredictor([predictor for predictor, _, _ in loaded])
    name, digest = "+".join(name for _, name, _ in loaded), "+".join(digest for _, _, digest in loaded)
    return CountSuperResolution(method, scale, combined, name, digest, iterations, views=views, default_iterations=default_iterations)


def _degrade_record(input_path: Path) -> dict[str, Any] | None:
    """The gamma-camera record of ``medrestore degrade`` beside ``input_path`` (``IN.json``), if any."""
    path = sidecar_path(input_path)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8")).get("degradation")
    except (OSError, ValueError, AttributeError):
        return None
    return record if isinstance(record, dict) and record.get("kind") == "gamma-camera" else None


def _spacing_is_stored(image: Image) -> bool:
    """Whether the file gave a physical pixel size (not a reader's 1-mm default)."""
    if image.metadata.get("format") == "npy":
        return False
    return not str(image.metadata.get("spacing_source", "")).startswith("default")


def system_response(
    image: Image, scale: int, input_path: Path | None = None, acquisition: PlanarAcquisition = PlanarAcquisition(),
    pixel_size_mm: float | None = None, fwhm_mm: float | None = None, collimator_from_image: bool = False,
) -> SystemResponse:  # fmt: skip
    """The system response behind ``image`` (module docstring): recorded, given, or from its spacing; with
    ``fwhm_mm`` (a measured system FWHM in mm) in place of the collimator model's. ``collimator_from_image``: without a
    ``degrade`` record, ``acquisition``'s collimator is replaced by the one the image's file names (an NM DICOM's
    ``CollimatorGridName``, :func:`~medrestore.physics.degradations.recorded_collimator`) when it names one.

    Raises:
        ConfigError: ``fwhm_mm`` not a finite number > 0; a recorded scale other than ``scale``.
    """
    response = _modelled_response(image, scale, input_path, acquisition, pixel_size_mm, collimator_from_image)
    if fwhm_mm is None:
        return response
    if isinstance(fwhm_mm, bool) or not isinstance(fwhm_mm, (int, float)) or not (math.isfinite(fwhm_mm) and fwhm_mm > 0):
        raise ConfigError(f"the measured system FWHM must be a finite number of mm > 0, got {fwhm_mm!r}")
    return dataclasses.replace(response, measured_fwhm_mm=float(fwhm_mm))


def _modelled_response(
    image: Image, scale: int, input_path: Path | None, acquisition: PlanarAcquisition, pixel_size_mm: float | None,
    collimator_from_image: bool = False,
) -> SystemResponse:  # fmt: skip
    """:func:`system_response` from the record, the given pixel size or the image's spacing (no measured FWHM)."""
    record = None if input_path is None else _degrade_record(input_path)
    if record is not None and pixel_size_mm is None:
        if int(record.get("scale", scale)) != scale:
            recorded_scale = record["scale"]
            raise ConfigError(f"{sidecar_path(input_path)} records a ×{recorded_scale} acquisition; use --scale {recorded_scale}")  # type: ignore[arg-type]
        recorded = PlanarAcquisition(record["collimator"], record["isotope"], float(record["distance_mm"]),
                                     float(record.get("scatter_fraction", 0.0)))  # fmt: skip
        source = f"degrade record {sidecar_path(input_path)}"  # type: ignore[arg-type]
        return SystemResponse(recorded, float(record["pixel_size_mm"]), source)
    note = None
    if record is None and collimator_from_image:
        named, note = recorded_collimator(image)
        acquisition = acquisition if named is None else dataclasses.replace(acquisition, collimator=named)
    if pixel_size_mm is not None:
        pixel, source = float(pixel_size_mm), "given pixel size"
    elif not _spacing_is_stored(image):
        pixel, source = UNKNOWN_SPACING_PIXEL_MM, "no stored spacing: 1-mm fine pixels assumed"
    else:
        rows, columns = (image.spacing[axis] for axis in planar_frames(image)[1])  # the frames' own pixels
        pixel, source = float(np.sqrt(rows * columns)) / scale, "input spacing / scale"
    return SystemResponse(acquisition, pixel, source, collimator_source=note)


def _frames_first(image: Image) -> tuple[torch.Tensor, tuple[int, int]]:
    """Frames ``(F, h, w)`` float64 and the in-plane axes of ``image.data`` (:func:`~medrestore.core.image.planar_frames`)."""
    frames, axes = planar_frames(image)
    return frames.to(torch.float64), axes


def guard_refinement(
    method: CountSuperResolution, image: Image, response: SystemResponse, domain: RefinementDomain = REFINEMENT_DOMAIN
) -> tuple[CountSuperResolution, dict[str, Any] | None]:  # fmt: skip
    """The method to run on ``image``: a refining method where its input lies in ``domain``, else its classical stage.

    A refinement network applied outside what it learnt (another pixel size, count level or matrix,
    :class:`RefinementDomain`) can make the image worse than the reconstruction it refines; there the
    reconstruction itself (``dct-mlem``, or ``mlem`` for ``mlem-vdsr``, with its own post-filter) is returned.
    A checkpoint given with ``--model`` is guarded by the same domain. Other methods pass unchanged.

    Returns:
        ``(method, record)``: ``record`` (``None`` for methods without a refinement network) holds
        ``networks_applied``, ``reasons``, ``fallback``, the measured ``pixel_size_mm`` and
        ``count_level`` and the ``domain``.
    """
    if method.method not in REFINED_INPUTS or method.predictor is None:
        return method, None
    frames, _ = _frames_first(image)
    reasons = domain.outside(frames, method.scale, response.pixel_size_mm, response.resolution_mm)
    if method.scale != 4:
        reasons.append(f"scale ×{method.scale}: the networks learnt ×4")
    fallback = REFINED_INPUTS[method.method]
    record = {
        "networks_applied": not reasons, "reasons": reasons, "fallback": fallback if reasons else None,
        "pixel_size_mm": response.pixel_size_mm, "count_level": domain.count_level(frames, method.scale),
        "domain": domain.record(),
    }  # fmt: skip
    if not reasons:
        return method, record
    return load_super_resolution(fallback, method.scale, iterations=None if method.default_iterations else method.iterations), record


def superres_image(image: Image, method: CountSuperResolution, response: SystemResponse | None = None) -> Image:
    """Every planar frame of ``image`` restored on the fine grid, in counts (module docstring).

    ``response`` defaults to :func:`system_response` of the image (default camera, its spacing).
    ``method`` runs as given: :func:`superres_file` first passes it through :func:`guard_refinement`.

    Raises:
        InputError: negative or non-finite values (counts are never negative), or an
            unsupported shape.
    """
    frames, axes = _frames_first(image)
    if not bool(torch.isfinite(frames).all()) or float(frames.min()) < 0:
        raise InputError(None, "super-resolution in counts needs finite, non-negative values (a scintigram)")
    fwhm = None
    if method.needs_response:
        fwhm = (response or system_response(image, method.scale)).fwhm_pixels
    restored = torch.stack([method(frame, fwhm) for frame in frames]).to(torch.float32)
    data = from_planar_frames(image, restored)
    affine = upsample_affine(image.affine, method.scale, image.spatial_ndim, axes)
    return Image(data, affine, image.spatial_ndim, "nm", {**image.metadata, "units": "counts"})


def _frame_layout(image: Image) -> dict[str, Any]:
    """How the image was read as planar frames: their number, the stack axis (``None``: a 2-D image) and the in-plane axes."""
    frames, axes = planar_frames(image)
    stack = planar_stack_axis(image) if image.spatial_ndim == 3 else None
    return {"frames": int(frames.shape[0]), "stack_axis": stack, "in_plane_axes": list(axes)}


def _frame_noise(image: Image, method: CountSuperResolution, response: SystemResponse) -> list[dict[str, float | None]] | None:
    """Per frame, the noise level of the DCT step (:meth:`CountSuperResolution.noise_sigma`; ``None``: no DCT step)."""
    if not method.denoises:
        return None
    frames, _ = _frames_first(image)
    return [method.noise_sigma(frame, response.fwhm_pixels) for frame in frames]  # type: ignore[misc]


def _frame_totals(image: Image) -> list[float]:
    frames, _ = _frames_first(image)
    return [float(frame.sum()) for frame in frames]


@dataclasses.dataclass(frozen=True)
class SuperResolutionRequest:
    """What ``medrestore superres`` asks for (everything but the files)."""

    modality: str = "nm"
    scale: int = 4
    method: str = DEFAULT_METHOD
    model: str | None = None
    device: str = "cpu"
    iterations: int | None = None
    ensemble: int | None = None
    acquisition: PlanarAcquisition = PlanarAcquisition()
    collimator_from_image: bool = False
    """Without a ``degrade`` record, take the collimator the input's file names over ``acquisition``'s (:func:`system_response`)."""
    pixel_size_mm: float | None = None
    fwhm_mm: float | None = None
    """A measured system FWHM (mm) in place of the collimator model's (module docstring)."""
    nonfinite: str = "refuse"
    """NaN/±Inf policy of the reader: ``"refuse"`` or ``"zero"`` (:mod:`medrestore.io.values`)."""


def superres_file(
    input_path: str | Path, output_path: str | Path, request: SuperResolutionRequest = SuperResolutionRequest()
) -> dict[str, Any]:
    """Read ``input_path``, restore it ``scale`` times finer, write ``output_path`` and ``OUT.json``.

    Returns:
        The sidecar record: method, model and its SHA-256, scale, system response, input and
        output paths, shapes and per-frame total counts, seconds, version; ``count_noise`` (``dct-mlem*``
        methods: per frame the measured noise level after Anscombe's transform and the one used); ``clipped_negative``
        when negative input values (a signed file's background) were set to 0 first, and
        ``nonfinite_replaced`` when NaN/±Inf were replaced on read.

    Raises:
        ConfigError: unknown modality or method, bad scale, a model that does not fit.
        InputError: unreadable input, bad values, or an output that would overwrite the input.
    """
    if request.modality not in MODALITIES:
        raise ConfigError(f"super-resolution supports the modalities {', '.join(MODALITIES)}, not {request.modality!r}")
    input_path, output_path = Path(input_path), Path(output_path)
    guard_output(output_path, [input_path, request.model], sidecar=True)
    method = load_super_resolution(
        request.method, request.scale, request.model, request.device, request.iterations, request.ensemble
    )  # fmt: skip
    image = clip_negative(read_image(input_path, nonfinite=request.nonfinite), input_path, "super-resolution in counts")
    response = system_response(
        image, request.scale, input_path, request.acquisition, request.pixel_size_mm, request.fwhm_mm, request.collimator_from_image
    )  # fmt: skip
    started = time.perf_counter()
    try:
        method, guard = guard_refinement(method, image, response)
        restored = superres_image(image, method, response)
    except InputError as error:
        raise InputError(input_path, error.problem) from error
    seconds = time.perf_counter() - started
    written = write_image(restored.with_metadata(derivation="Restored"), output_path)
    record = {
        "method": method.method, "requested_method": request.method, "refinement_guard": guard,
        "model": method.model_name, "model_sha256": method.model_sha256,
        "scale": method.scale, "modality": request.modality,
        "iterations": method.mlem_iterations(response.fwhm_pixels) if method.needs_response else None,
        "ensemble_views": len(method.views) if method.predictor is not None else None,
        "system_response": response.record() if method.needs_response else None,
        "input": str(input_path), "input_sha256": input_digest(input_path), "input_shape": list(image.shape),
        "output": str(written), "output_shape": list(restored.shape),
        "planar_frames": _frame_layout(image),
        "frame_total_counts": _frame_totals(image), "output_frame_total_counts": _frame_totals(restored),
        "count_noise": _frame_noise(image, method, response),
        "seconds": round(seconds, 4), **value_changes(image), "medrestore_version": medrestore.__version__,
    }  # fmt: skip
    write_record(written, record)
    return record
