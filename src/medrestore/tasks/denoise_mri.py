"""MRI denoising of 2-D, 3-D and 4-D magnitude images (``medrestore denoise --modality mri``).

Methods (``method``):

* ``nlm`` — the fast Rician-aware non-local means (:mod:`medrestore.models.fast_nlm`) with
  ``h = σ``, 3×3(×3) patches and a 5×5×5 search cube (3-D; 11×11 in 2-D).
* ``nlm-wiener`` — network-free: ``nlm``, then the block-matching collaborative Wiener filter of the noisy volume with
  it as the pilot (:func:`~medrestore.models.guided_wiener.guided_wiener_denoise` with
  :data:`~medrestore.models.guided_wiener.NLM_WIENER_SETTINGS`). 3-D only; opt-in (it was not measured on
  thick-slice or coarse volumes such as fMRI).
* ``pri-nlm`` — the same average with weights from an oracle-DCT pre-filtered copy (Manjón et al.
  2012; :func:`~medrestore.models.fast_nlm.prefiltered_non_local_means`), ``h = 0.7σ``, 7×7×7
  search. Opt-in; ``auto`` never picks it (it loses to ``nlm`` on piecewise-constant images).
* ``unet`` / ``gan`` — the shipped 2-D U-Net conditioned on σ (``mri-unet2d-colin27``) / the same network
  fine-tuned against a PatchGAN critic (``mri-gan-colin27``, pix2pix with least squares: Isola et al. 2017, Mao et
  al. 2017), applied to every slice along the last spatial axis (axial slices of an RAS volume).
* ``srcnn`` — the seed's SRCNN (Dong et al. 2014; 9-1-5 layers, 64/32 features, same size in and out) re-purposed
  for denoising, blind to σ, slice by slice as ``unet`` (``mri-srcnn-colin27``). Opt-in: ``auto`` never picks it, as
  it does not reach its classical counterpart ``nlm`` (``benchmarks/mri-denoise-default.md``).
* ``unet3d`` — the shipped 3-D residual U-Net conditioned on σ (``mri-resunet3d-colin27``): the
  whole volume in one pass up to :data:`WHOLE_VOLUME_VOXELS`, blended :data:`WINDOW_3D` windows
  beyond.
* ``unet3d-nlm`` — the networks' structure, the data's values:
  :func:`~medrestore.models.guided_wiener.guided_wiener_denoise` with
  :data:`~medrestore.models.guided_wiener.DEFAULT_SETTINGS`, guided by :func:`guide` (the mean output of the 3-D
  networks of its ``guide_models``; ``--model`` puts one network in their place): NLM weighted by the guide, mixed
  with plain ``nlm``, then the collaborative Wiener filter of the noisy volume with that as its pilot, blended per
  voxel by the pilot's gradient, inside the tissue's bounding box.
* ``auto`` — :data:`AUTO_METHOD` (``unet3d-nlm``) for 3-D volumes (and the volumes of a 4-D series)
  with at least :data:`AUTO_MIN_SLICES` voxels per side and near-isotropic voxels of structural
  size (largest / smallest spacing ≤ :data:`AUTO_MAX_ANISOTROPY`, largest ≤ :data:`AUTO_MAX_SPACING_MM`,
  as the 1-mm volumes the networks were trained on); ``nlm`` for 2-D images, thick-slice stacks, coarse
  volumes such as 3-mm fMRI, or when the networks' weights are not installed.
* ``mppca`` / ``patch2self`` — 4-D series only: denoising along the volume axis
  (:mod:`medrestore.models.series_denoise`, dipy's MP-PCA of Veraart et al. 2016 and Patch2Self of Fadnavis
  et al. 2020), which the per-volume methods cannot use. ``auto`` never picks them.

Measured scores and times of every method: ``benchmarks/mri-denoise-default.md`` and ``benchmarks/README.md``;
``unet`` against ``gan``: ``benchmarks/mri-gan.md``.

Networks see the image divided by its robust maximum (:func:`medrestore.data.mri.intensity_scale`),
as in training; a σ-conditioned network (2 input channels: ``unet``, ``gan``, ``unet3d``) also gets ``σ``
divided by the same scale as a constant channel, a blind one (``srcnn``) nothing more. ``σ``
(``sigma``: a number in image units or ``None`` for "estimate") is estimated per volume from the
background or, when there is none, with the wavelet estimator
(:func:`~medrestore.physics.noise_estimation.estimate_sigma`); the value is reported for every method. In a series
of at least three volumes an estimated σ is at most the series' temporal bound (:func:`series_sigma_bound`, reported
as ``sigma_temporal``): thermal noise cannot exceed what the voxels' time courses vary.

4-D input ``(x, y, z, t)``: with the per-volume methods every volume is denoised on its own (no temporal
filtering), so a voxel's time course is never mixed across time points; ``mppca`` and ``patch2self`` use the
whole series. The temporal SNR ``tSNR = mean_t / std_t`` (median over the brain mask of the temporal mean) is
reported before and after, and its map (:func:`~medrestore.metrics.repeated.temporal_snr_map`, before and after
as two frames) is written as NIfTI to :func:`tsnr_map_path` of the output.

Volumes with one side shorter than :data:`~medrestore.physics.noise_estimation.MIN_SIDE` voxels (a stack of 3
slices, e.g. a thin fMRI run) are denoised slice by slice in 2-D, along that side, with one σ for the stack (estimated:
the median of its slices' estimates).

The output keeps the input's geometry (affine, NIfTI header fields, DICOM identifiers) and its
dtype (integers are rounded and clipped) and is written atomically.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from medrestore.core.progress import track
from medrestore.core.cache import cached_in_run
from medrestore.core.device import select_device
from medrestore.core.errors import InputError, MedrestoreError
from medrestore.core.files import guard_output
from medrestore.core.image import Image
from medrestore.data.mri import intensity_scale, with_sigma_map
from medrestore.inference import Predictor, names_model_file, self_ensemble
from medrestore.io import cast_to_dtype, read_image, write_image
from medrestore.io.values import clip_negative, output_dtype
from medrestore.metrics.repeated import temporal_snr_map
from medrestore.data.normalisation import NoNormalisation
from medrestore.models.fast_nlm import fast_non_local_means, prefiltered_non_local_means
from medrestore.models.guided_wiener import DEFAULT_SETTINGS, NLM_WIENER_SETTINGS, GuidedWienerSettings, guided_wiener_denoise
from medrestore.models.series_denoise import SERIES_METHODS, mppca_series, patch2self_series
from medrestore.physics.noise_estimation import (
    MIN_SIDE, TEMPORAL_MIN_VOLUMES, estimate_sigma, foreground_mask, slice_axis, temporal_sigma,
)
from medrestore.zoo import load_pretrained

METHODS = ("auto", "nlm", "nlm-wiener", "pri-nlm", "unet", "unet3d", "unet3d-nlm", "gan", "srcnn", *SERIES_METHODS)
ZOO_MODELS: dict[str, str] = {
    "unet": "mri-unet2d-colin27",
    "unet3d": "mri-resunet3d-colin27",
    "unet3d-nlm": DEFAULT_SETTINGS.guide_models[0],
    "gan": "mri-gan-colin27",
    "srcnn": "mri-srcnn-colin27",
}
"""Method → shipped zoo model (``unet3d-nlm``: the first of its ``guide_models``)."""
AUTO_METHOD = "unet3d-nlm"
"""What ``auto`` runs on near-isotropic 3-D volumes; ``nlm`` elsewhere."""
AUTO_MIN_SLICES = 16
AUTO_MAX_ANISOTROPY = 1.5
AUTO_MAX_SPACING_MM = 1.5
CLASSICAL_METHODS = ("nlm", "nlm-wiener", "pri-nlm", *SERIES_METHODS)
NLM_SETTINGS = {2: (1, 5), 3: (1, 2)}
"""Spatial dimensions → (patch radius, search radius) of ``nlm``."""
NLM_H_FACTOR = 1.0
FLIP_AVERAGE_3D: tuple[tuple[int, ...], ...] = ((), (0,))
"""Flips a 3-D network (``unet3d``) sees each volume with (self-ensemble, as EDSR+: Lim et al., CVPRW 2017), outputs
flipped back and averaged. The network learnt all flips in training."""
GUIDE_FLIPS: tuple[tuple[int, ...], ...] = ((), (0,), (1,), (0, 1))
"""The views a guide network of ``unet3d-nlm`` may see, in this order (:func:`guide_settings`)."""
WINDOW_3D = (160, 160, 160)
WHOLE_VOLUME_VOXELS = 256**3
"""3-D volumes up to this many voxels go through a 3-D network in one pass (no seams, no overlap
work); larger ones in :data:`WINDOW_3D` windows."""


@dataclasses.dataclass(frozen=True)
class MRIDenoiseResult:
    """What :func:`denoise_mri_file` did.

    Attributes:
        output: the written file.
        method: the method run (``auto`` resolved).
        model: zoo name (or checkpoint path) of the network, ``fast-nlm``, or ``NETWORK + fast-nlm`` (``unet3d-nlm``).
        sigmas: σ per volume (given or estimated), image units.
        volumes: volumes (time points) denoised.
        seconds_per_volume: mean wall time per volume.
        tsnr_before, tsnr_after: median temporal SNR in the brain (4-D input only).
        decision: why ``auto`` ran ``method`` (:func:`auto_choice`; ``None`` for a named method).
        sigma_temporal: the series' temporal σ bound (:func:`series_sigma_bound`) when σ was estimated for a series of
            at least three volumes, else ``None``; each volume's σ is at most this.
        noise_free_volumes: volumes whose σ is no noise (:func:`noise_free`), returned unchanged.
        output_dtype: the dtype written: the input's own, or float32 where that would lose the restored values
            (:func:`~medrestore.io.values.output_dtype`), said in ``output_dtype_note``.
    """

    output: Path
    method: str
    model: str
    sigmas: tuple[float, ...]
    volumes: int
    seconds_per_volume: float
    tsnr_before: float | None = None
    tsnr_after: float | None = None
    decision: str | None = None
    sigma_temporal: float | None = None
    noise_free_volumes: int = 0
    output_dtype: str = "float32"
    output_dtype_note: str | None = None

    @property
    def tsnr_gain(self) -> float | None:
        """``tsnr_after / tsnr_before`` (4-D input only)."""
        if self.tsnr_before is None or self.tsnr_after is None or not self.tsnr_before > 0 or not math.isfinite(self.tsnr_after):
            return None
        return self.tsnr_after / self.tsnr_before


def parse_sigma(text: str | float | None) -> float | None:
    """``"auto"``/``None`` → ``None`` (estimate); a number ``>= 0`` → itself.

    Raises:
        InputError: anything else.
    """
    if text is None or (isinstance(text, str) and text.strip().lower() == "auto"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise InputError(None, f"--sigma must be 'auto' or a number, got {text!r}") from None
    if not np.isfinite(value) or value < 0:
        raise InputError(None, f"--sigma must be a finite number >= 0, got {text!r}")
    return value


def auto_choice(shape: tuple[int, ...] = (), spacing: tuple[float, ...] = ()) -> tuple[str, str]:
    """What ``auto`` runs on a volume of spatial ``shape`` and voxel ``spacing`` (mm), and why:
    :data:`AUTO_METHOD` for a near-isotropic 3-D volume of structural voxel size, as the guide
    networks learnt; else the network-free ``nlm`` (also when the networks are not installed)."""
    spacing = tuple(float(s) for s in spacing if s > 0)
    if AUTO_METHOD in CLASSICAL_METHODS:
        return AUTO_METHOD, f"{AUTO_METHOD}: the default uses no network"
    if len(shape) != 3 or min(shape) < AUTO_MIN_SLICES:
        return "nlm", (f"nlm: a {len(shape)}-D image of shape {tuple(shape)}, not a 3-D volume of at least {AUTO_MIN_SLICES} "
                       f"voxels a side as {AUTO_METHOD}'s networks learnt")
    if spacing and (max(spacing) > AUTO_MAX_ANISOTROPY * min(spacing) or max(spacing) > AUTO_MAX_SPACING_MM):
        sizes = " x ".join(f"{value:.3g}" for value in spacing)
        return "nlm", (f"nlm: voxels of {sizes} mm, outside the near-isotropic voxels of at most {AUTO_MAX_SPACING_MM} mm "
                       f"(anisotropy {AUTO_MAX_ANISOTROPY}) that {AUTO_METHOD}'s networks learnt")
    try:
        for name in DEFAULT_SETTINGS.guide_models if AUTO_METHOD == "unet3d-nlm" else (ZOO_MODELS[AUTO_METHOD],):
            load_pretrained(name)
    except MedrestoreError as error:
        return "nlm", f"nlm: {AUTO_METHOD}'s networks are not installed ({error})"
    return AUTO_METHOD, f"{AUTO_METHOD}: a near-isotropic 3-D volume of structural voxel size, as its networks learnt"


def resolve_method(method: str, shape: tuple[int, ...] = (), spacing: tuple[float, ...] = ()) -> str:
    """``auto`` → :func:`auto_choice`'s method for a volume of spatial ``shape`` and voxel ``spacing`` (mm); others checked."""
    if method not in METHODS:
        raise MedrestoreError(f"unknown MRI denoising method {method!r}; choose one of {', '.join(METHODS)}")
    return method if method != "auto" else auto_choice(shape, spacing)[0]


@cached_in_run
def load_mri_network(method: str, device: torch.device, model: str | Path | None = None) -> Predictor:
    """The :class:`Predictor` of a network method: ``model`` (a zoo name or a checkpoint ``.pt`` written by
    ``medrestore train``) or, when ``None``, the method's zoo network (:data:`ZOO_MODELS`), weights verified.

    A checkpoint must have been trained with ``normalisation: none``: MRI networks take the image divided by
    its robust maximum (:func:`~medrestore.data.mri.intensity_scale`), as the ``mri-denoise`` layout trains them.

    Raises:
        MedrestoreError: unknown zoo name, or a zoo model made for another task or modality.
        InputError: an unreadable checkpoint, or one trained with another normalisation.
    """
    name = ZOO_MODELS[method] if model is None else str(model)
    if model is not None and names_model_file(name):
        loaded = Predictor.from_checkpoint(name, device)
        if not isinstance(loaded.normalisation, NoNormalisation):
            raise InputError(name, "was trained with a normalisation; MRI networks need `normalisation: none` (data.layout: mri-denoise)")
        return network_predictor(loaded.model, device)
    network, card = load_pretrained(name, device)
    if card.task != "denoise" or card.modality != "mri":
        raise MedrestoreError(f"zoo model {name!r} is a {card.modality} {card.task} model, not an MRI denoiser")
    return network_predictor(network, device)


def network_predictor(network: torch.nn.Module, device: torch.device) -> Predictor:
    """How ``denoise`` runs an MRI network: whole images (volumes: see :func:`network_denoise`), 3-D
    models channels-last (oneDNN's 3-D convolutions run ~2× faster so on a CPU)."""
    if getattr(network, "spatial_ndim", 2) == 3:
        network = network.to(memory_format=torch.channels_last_3d)
    return Predictor(network, NoNormalisation(), window=None, overlap=0.25, device=device, batch_size=1)


def sigma_conditioned(model: torch.nn.Module) -> bool:
    """Whether ``model`` takes a σ channel besides the image (trained with ``data.mri_denoise.sigma_map``)."""
    return int(getattr(getattr(model, "config", None), "in_channels", 1)) == 2


def cpu_bfloat16() -> bool:
    """Whether this CPU runs oneDNN's bfloat16 convolutions natively (AVX-512 BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def guide_settings(
    device: torch.device, networks: int = 1, settings: GuidedWienerSettings = DEFAULT_SETTINGS
) -> tuple[tuple[tuple[int, ...], ...], bool]:
    """The flips each of ``networks`` guide networks of ``unet3d-nlm`` sees, and whether they run in bfloat16: on a
    CPU with native bfloat16 (oneDNN) ``settings.guide_views`` views per guide network of ``settings`` in bfloat16,
    else half as many (at least one) in float32, shared out among the ``networks`` that run (one network given with
    ``--model`` gets the views of all): the first ones of :data:`GUIDE_FLIPS`."""
    fast = device.type == "cpu" and cpu_bfloat16()
    total = settings.guide_views * max(1, len(settings.guide_models))
    views = total // max(1, networks) if fast else total // 2 // max(1, networks)
    return GUIDE_FLIPS[: max(1, views)], fast


@cached_in_run
def load_guides(device: torch.device, model: str | Path | None = None) -> tuple[Predictor, ...]:
    """The guide networks of ``unet3d-nlm``: the ``guide_models`` of
    :data:`~medrestore.models.guided_wiener.DEFAULT_SETTINGS`, or ``model`` alone (:func:`load_mri_network`)."""
    if model is not None:
        return (load_mri_network("unet3d-nlm", device, model),)
    return tuple(load_mri_network("unet3d-nlm", device, name) for name in DEFAULT_SETTINGS.guide_models)


def guide(volume: torch.Tensor, predictors: Predictor | tuple[Predictor, ...], sigma: float) -> torch.Tensor:
    """The guide ``ũ`` of ``unet3d-nlm`` on ``volume`` ``(*spatial)``: the mean of :func:`guide_outputs`."""
    return torch.stack(guide_outputs(volume, predictors, sigma)).mean(dim=0)


def guide_outputs(volume: torch.Tensor, predictors: Predictor | tuple[Predictor, ...], sigma: float) -> list[torch.Tensor]:
    """Each of the ``predictors``' outputs on ``volume`` ``(*spatial)``, on its views (:func:`guide_settings`), as
    :func:`guide` averages them."""
    networks = predictors if isinstance(predictors, tuple) else (predictors,)
    flips, bfloat16 = guide_settings(networks[0].device, len(networks))
    return [network_denoise(volume, network, sigma=sigma, flips=flips, bfloat16=bfloat16) for network in networks]


def network_denoise(
    volume: torch.Tensor,
    predictor: Predictor,
    batch: int = 16,
    sigma: float | None = None,
    flips: tuple[tuple[int, ...], ...] = FLIP_AVERAGE_3D,
    bfloat16: bool = False,
) -> torch.Tensor:
    """A network on ``volume`` ``(*spatial)``: scaled by its robust maximum, 2-D models slice by slice.

    A 2-D model on a 3-D volume runs on the slices along the last axis, ``batch`` at a time;
    a 3-D model needs a 3-D volume and returns the mean of its outputs on the ``flips``
    (default :data:`FLIP_AVERAGE_3D`), in bfloat16 autocast on the CPU when ``bfloat16``. A σ-conditioned model (2 input channels, trained with
    ``sigma_map: true``) also gets ``σ / scale`` as a constant channel (``sigma`` ``None``:
    estimated from ``volume``). The output is ``>= 0`` (a magnitude), in image units.
    """
    scale = intensity_scale(volume)
    scaled = volume.to(torch.float32) / scale
    conditioned = sigma_conditioned(predictor.model)
    level = (estimate_sigma(volume) if sigma is None else sigma) / scale if conditioned else 0.0

    def channels(images: torch.Tensor) -> torch.Tensor:  # (N, 1, *spatial) → the model's input channels
        return with_sigma_map(images, level, channel_axis=1) if conditioned else images

    if predictor.spatial_ndim == 3 and predictor.window is None and scaled.numel() > WHOLE_VOLUME_VOXELS:
        predictor = Predictor(predictor.model, predictor.normalisation, window=WINDOW_3D, overlap=0.25, device=predictor.device, batch_size=1)
    if predictor.spatial_ndim == scaled.ndim:
        flips = flips if scaled.ndim == 3 else ((),)

        def run(view: torch.Tensor) -> torch.Tensor:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16):  # CPU ops only
                return predictor.predict(channels(view[None, None]))[0, 0] if conditioned else predictor.predict(view)

        output = self_ensemble(run, scaled, [(0, axes) for axes in flips])  # the network on flipped copies, flipped back
    elif predictor.spatial_ndim == 2 and scaled.ndim == 3:
        slices = scaled.movedim(-1, 0).unsqueeze(1)
        output = torch.cat([predictor.predict(channels(slices[i : i + batch]))[:, 0] for i in range(0, slices.shape[0], batch)]).movedim(0, -1)
    else:
        raise InputError(None, f"a {predictor.spatial_ndim}-D network cannot denoise a {scaled.ndim}-D image; use nlm or unet")
    return output.clamp_min(0.0) * scale


NO_NOISE_FRACTION = 1e-6
"""σ at most this fraction of a volume's range is no noise (a synthetic or already smoothed image: estimates of
1e-13 to 1e-33 on such files): the volume is returned unchanged, where ``h ∝ σ`` would make NLM's weights 0/0."""


def noise_free(volume: torch.Tensor, sigma: float) -> bool:
    """Whether ``sigma`` is no more than :data:`NO_NOISE_FRACTION` of ``volume``'s range (or not a positive number)."""
    return not sigma > NO_NOISE_FRACTION * float(volume.max() - volume.min())


def denoise_volume(
    volume: torch.Tensor, method: str, sigma: float | None, predictor: Predictor | tuple[Predictor, ...] | None, device: torch.device
) -> tuple[torch.Tensor, float]:
    """Denoise one image or volume ``(*spatial)`` (2-D or 3-D, float32); returns it and σ used/estimated. A volume
    without measurable noise (:func:`noise_free`) is returned as it is.

    ``predictor``: the network of a network method; for ``unet3d-nlm`` one or several guide networks
    (:func:`load_guides`, :func:`guide`)."""
    used_sigma = estimate_sigma(volume) if sigma is None else sigma
    if noise_free(volume, used_sigma):
        return volume.to(torch.float32), used_sigma
    if method == "nlm":
        output = _nlm(volume, used_sigma, device)
    elif method == "pri-nlm":
        output = prefiltered_non_local_means(volume.to(device), used_sigma).cpu()
    elif method in ("nlm-wiener", "unet3d-nlm"):
        if volume.ndim != 3:
            hint = "nlm" if method == "nlm-wiener" else "nlm or unet"
            raise InputError(None, f"{method} needs a 3-D volume, got {volume.ndim}-D; use {hint}")
        if method == "nlm-wiener":
            output = guided_wiener_denoise(volume, used_sigma, None, NLM_WIENER_SETTINGS, device)
        else:
            assert predictor is not None
            networks = predictor
            output = guided_wiener_denoise(volume, used_sigma, lambda part: guide(part, networks, used_sigma), DEFAULT_SETTINGS, device)
    else:
        assert isinstance(predictor, Predictor)
        output = network_denoise(volume, predictor, sigma=used_sigma)
    return output.to(torch.float32), used_sigma


def load_predictor(method: str, device: torch.device, model: str | Path | None = None) -> Predictor | tuple[Predictor, ...] | None:
    """The network(s) a resolved ``method`` runs: the guides of ``unet3d-nlm`` (:func:`load_guides`), the network of
    another network method (:func:`load_mri_network`), ``None`` for the classical and series methods."""
    if method == "unet3d-nlm":
        return load_guides(device, model)
    if method in CLASSICAL_METHODS:
        return None
    return load_mri_network(method, device, model)


def denoise_image(
    volume: torch.Tensor, method: str, sigma: float | None, predictor: Predictor | tuple[Predictor, ...] | None, device: torch.device
) -> tuple[torch.Tensor, float]:
    """:func:`denoise_volume`, or for a 3-D ``volume`` with one side shorter than
    :data:`~medrestore.physics.noise_estimation.MIN_SIDE` (a stack of a few slices,
    :func:`~medrestore.physics.noise_estimation.slice_axis`) :func:`denoise_volume` on each 2-D slice along that side,
    with one σ for the stack (estimated: the median of its slices' estimates)."""
    axis = slice_axis(tuple(volume.shape))
    if axis is None:
        return denoise_volume(volume, method, sigma, predictor, device)
    used_sigma = estimate_sigma(volume) if sigma is None else sigma
    slices = [denoise_volume(plane, method, used_sigma, predictor, device)[0] for plane in volume.unbind(axis)]
    return torch.stack(slices, dim=axis), used_sigma


SERIES_MASK_SNR = 2.0
""":func:`series_mask`: the smoothed mean of a series above ``2σ`` (the Rician background of one volume sits near
``1.25σ``, and averaging and smoothing narrow its spread), so that dark tissue (CSF) stays in."""


def series_mask(volumes: torch.Tensor, sigma: float | None = None) -> np.ndarray:
    """The object in a series ``(T, *spatial)``, boolean ``(*spatial)``: :func:`foreground_mask` of the mean over ``T``
    at :data:`SERIES_MASK_SNR` (``sigma`` ``None``: estimated on the first volume), dilated back by the two voxels it
    erodes (an opening: isolated background voxels go) and with its holes filled (ventricles)."""
    level = estimate_sigma(volumes[0]) if sigma is None else sigma
    mask = foreground_mask(volumes.mean(dim=0), level, snr=SERIES_MASK_SNR)
    return np.asarray(ndimage.binary_fill_holes(ndimage.binary_dilation(mask, iterations=2)))


def series_sigma_bound(volumes: torch.Tensor) -> float | None:
    """The temporal σ bound (:func:`~medrestore.physics.noise_estimation.temporal_sigma`) of a series ``(T, *spatial)``
    inside :func:`series_mask`, or ``None`` for fewer than
    :data:`~medrestore.physics.noise_estimation.TEMPORAL_MIN_VOLUMES` volumes or an empty mask. Per-volume denoising of
    a series takes each volume's estimated σ at most this: a spatial estimate above what the time courses vary reads
    structure as noise (small, coarse slices without background) and would smooth the anatomy away."""
    if volumes.shape[0] < TEMPORAL_MIN_VOLUMES:
        return None
    mask = series_mask(volumes)
    return temporal_sigma(volumes, mask) if mask.any() else None


def bounded_sigma(volume: torch.Tensor, sigma: float | None, bound: float | None) -> float:
    """The σ of one ``volume`` of a series: ``sigma`` when given, else its estimate, capped at the series' ``bound``
    (:func:`series_sigma_bound`) when there is one."""
    if sigma is not None:
        return sigma
    estimate = estimate_sigma(volume)
    return estimate if bound is None else min(estimate, bound)


def denoise_series(volumes: torch.Tensor, method: str, path: Path) -> torch.Tensor:
    """A series method (:data:`~medrestore.models.series_denoise.SERIES_METHODS`) on ``volumes`` ``(T, x, y, z)``;
    returns the same shape, float32. MP-PCA fits its patches inside :func:`series_mask` only. Refuses 2-D series and
    single volumes, naming ``path``."""
    if volumes.ndim != 4 or volumes.shape[0] < 3:
        raise InputError(path, f"--method {method} denoises a 4-D series of 3-D volumes (at least 3); got {volumes.shape[0]} "
                               f"volume(s) of {volumes.ndim - 1}-D; use nlm")
    series = volumes.movedim(0, -1).numpy()
    try:
        denoised = mppca_series(series, mask=series_mask(volumes))[0] if method == "mppca" else patch2self_series(series)
    except ValueError as error:  # dipy's own checks (e.g. a patch larger than the volume)
        raise InputError(path, f"--method {method}: {error}") from None
    return torch.from_numpy(denoised).movedim(-1, 0).contiguous()


def _nlm(volume: torch.Tensor, sigma: float, device: torch.device) -> torch.Tensor:
    """``nlm`` (:data:`NLM_SETTINGS`, ``h =`` :data:`NLM_H_FACTOR` ``σ``) on ``volume``, returned on the CPU."""
    patch, search = NLM_SETTINGS[volume.ndim]
    return fast_non_local_means(volume.to(device), sigma, patch, search, NLM_H_FACTOR).cpu()


def temporal_snr(series: torch.Tensor, mask: np.ndarray) -> float:
    """Median over ``mask`` of ``mean_t / std_t`` of a ``(*spatial, T)`` series (``T >= 2``, ddof = 1;
    :func:`~medrestore.metrics.repeated.temporal_snr_map`); voxels with a constant time course are left out."""
    ratio = temporal_snr_map(series)
    valid = mask & (ratio > 0)
    if not valid.any():
        return float("inf")
    return float(np.median(ratio[valid]))


def tsnr_map_path(output: str | Path) -> Path:
    """Where the temporal SNR map of a 4-D output is written: ``OUT.tsnr.nii.gz``."""
    return Path(f"{output}.tsnr.nii.gz")


def image_volumes(image: Image, path: Path) -> tuple[torch.Tensor, tuple[int, ...]]:
    """``(T, *spatial)`` float32 with singleton spatial axes removed, and the shape to restore."""
    data = image.data.to(torch.float32)
    if image.n_frames > 1 or data.ndim == image.spatial_ndim + 1:
        series = data.movedim(-1, 0)
    else:
        series = data.unsqueeze(0)
    shape = tuple(series.shape)
    squeezed = series.reshape((shape[0], *[n for n in shape[1:] if n > 1]))
    sides = sorted(squeezed.shape[1:])
    if squeezed.ndim not in (3, 4) or sides[-2] < MIN_SIDE:
        raise InputError(path, f"has shape {tuple(data.shape)}; MRI denoising needs a 2-D image or a 3-D/4-D volume with sides >= {MIN_SIDE} "
                         f"(or a stack of 2-D slices of that size)")
    if not bool(torch.isfinite(squeezed).all()):
        raise InputError(path, "contains NaN or infinite values")
    if float(squeezed.min()) < 0:
        raise InputError(path, "holds negative values; MRI denoising expects magnitude images")
    return squeezed, shape


def _write_tsnr(image: Image, volumes: torch.Tensor, denoised: torch.Tensor, shape: tuple[int, ...], sigma: float, path: Path) -> tuple[float, float]:
    """Median tSNR in the brain before and after (``volumes``/``denoised`` ``(T, *squeezed)``); writes both maps as the
    two frames of a float32 NIfTI at ``path`` on the input's grid (``shape``: ``(T, *spatial)``)."""
    mask = foreground_mask(volumes.mean(dim=0), sigma, snr=DEFAULT_SETTINGS.tissue_snr)
    before, after = temporal_snr(volumes.movedim(0, -1), mask), temporal_snr(denoised.movedim(0, -1), mask)
    before, after = (value if math.isfinite(value) else math.nan for value in (before, after))  # no variation in time
    maps = [temporal_snr_map(series.movedim(0, -1)).reshape(shape[1:]) for series in (volumes, denoised)]
    spatial = np.stack(maps, axis=-1)
    if image.spatial_ndim == 2:  # a 2-D series: one slice of a volume
        spatial = spatial[:, :, None, :]
    write_image(Image(torch.from_numpy(spatial), image.affine, 3, image.modality), path, dtype="float32")
    return before, after


def _label(method: str, model: str | Path | None) -> str:
    """What ``method`` ran, for the report: ``fast-nlm``…, the network's name, or ``NETWORKS + fast-nlm``."""
    classical = {"nlm": "fast-nlm", "pri-nlm": "pri-nlm", "nlm-wiener": "fast-nlm + collaborative-wiener", "mppca": "dipy mppca",
                 "patch2self": "dipy patch2self"}
    if method in classical:
        return classical[method]
    if method == "unet3d-nlm":
        return f"{model if model is not None else ' + '.join(DEFAULT_SETTINGS.guide_models)} + fast-nlm"
    return str(model) if model is not None else ZOO_MODELS[method]


def _squeezed_spacing(image: Image) -> tuple[float, ...]:
    """Voxel sizes of the spatial axes longer than 1 (those :func:`image_volumes` keeps)."""
    return tuple(s for s, n in zip(image.spacing, image.spatial_shape, strict=True) if n > 1)


def denoise_mri_file(
    input_path: str | Path,
    output_path: str | Path,
    method: str = "auto",
    sigma: float | None = None,
    device: str = "auto",
    model: str | Path | None = None,
    nonfinite: str = "refuse",
) -> MRIDenoiseResult:
    """Denoise the MRI file ``input_path`` into ``output_path`` (see the module docstring).

    The Rician model describes magnitudes: negative voxels (e.g. from resampling) are clipped
    to 0 first, with a one-line warning giving their count and minimum.

    Args:
        input_path: NIfTI, DICOM (file or series folder), or any format :func:`read_image` reads.
        output_path: destination; its extension picks the format.
        method: one of :data:`METHODS`.
        sigma: noise σ in image units; ``None`` estimates it per volume.
        device: ``auto``, ``cpu``, ``cuda``…
        model: the network of a network method (``unet``, ``unet3d``, ``unet3d-nlm``, ``gan``) in place of
            its zoo default: a zoo name or a checkpoint of ``medrestore train`` (:func:`load_mri_network`).
        nonfinite: NaN/±Inf policy of the reader: ``"refuse"`` or ``"zero"`` (:mod:`medrestore.io.values`).

    Raises:
        InputError: unreadable, non-finite or too small input (the message names it).
        MedrestoreError: unknown method, missing weights, or a ``model`` with a method that uses none.
    """
    input_path, output_path = Path(input_path), Path(output_path)
    guard_output(output_path, [input_path, model], extra=[tsnr_map_path(output_path)])
    image = read_image(input_path, nonfinite=nonfinite)
    image = clip_negative(image, input_path, "MRI denoising (Rician magnitude model)")
    volumes, shape = image_volumes(image, input_path)
    resolved, decision = resolve_method(method), None
    if method == "auto":
        resolved, decision = auto_choice(tuple(volumes.shape[1:]), _squeezed_spacing(image))
    if model is not None and resolved in CLASSICAL_METHODS:
        chosen = f"--method auto picks {resolved} for this image" if method == "auto" else f"--method {resolved} uses no network"
        raise MedrestoreError(f"{chosen}; --model needs a network method: unet, unet3d, unet3d-nlm, gan or srcnn")
    target = select_device(device)
    predictor = load_predictor(resolved, target, model)
    started = time.perf_counter()
    bound = series_sigma_bound(volumes) if sigma is None else None
    if resolved in SERIES_METHODS:  # σ reported (and the tSNR mask's level) as for the per-volume methods
        denoised = denoise_series(volumes, resolved, input_path)
        sigmas = [bounded_sigma(volume, sigma, bound) for volume in volumes]
    else:
        outputs, sigmas = [], []
        for volume in track(volumes, "volumes"):
            output, used = denoise_image(volume, resolved, bounded_sigma(volume, sigma, bound), predictor, target)
            outputs.append(output)
            sigmas.append(used)
        denoised = torch.stack(outputs)
    seconds = (time.perf_counter() - started) / denoised.shape[0]
    tsnr_before = tsnr_after = None
    if denoised.shape[0] > 1:
        tsnr_before, tsnr_after = _write_tsnr(image, volumes, denoised, shape, float(np.median(sigmas)), tsnr_map_path(output_path))
    restored = denoised.reshape(shape)
    restored = restored.movedim(0, -1) if image.data.ndim == image.spatial_ndim + 1 or image.n_frames > 1 else restored[0]
    dtype, dtype_note = output_dtype(image, restored.numpy())
    values = cast_to_dtype(restored.numpy().astype(np.float64), dtype)
    restored_image = image.with_data(torch.from_numpy(values.astype(np.float32))).with_metadata(derivation="Restored")
    written = write_image(restored_image, output_path, dtype=dtype)
    label = _label(resolved, model)
    unchanged = 0 if resolved in SERIES_METHODS else sum(noise_free(volume, used) for volume, used in zip(volumes, sigmas))
    return MRIDenoiseResult(Path(written), resolved, label, tuple(sigmas), int(denoised.shape[0]), seconds, tsnr_before, tsnr_after,
                            decision, bound, unchanged, dtype, dtype_note)
