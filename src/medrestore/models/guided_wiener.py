"""Guided non-local means, then a collaborative Wiener filter: the 3-D MRI denoising default as one method.

For a noisy magnitude volume ``y`` ``(D, H, W)`` with Rician noise σ and an optional guide ``ũ`` (a first estimate
of the clean volume, in ``medrestore denoise`` the mean output of 3-D networks), inside the bounding box of the
tissue (:func:`tissue_box`; outside it, the empty background, the output is plain NLM):

1. plain NLM ``x̂_nlm`` (Rician-aware, 3³ patches; :func:`~medrestore.models.fast_nlm.fast_non_local_means`) and,
   when a guide is used, NLM with voxel-wise weights from the guide
   (:func:`~medrestore.models.fast_nlm.guided_non_local_means`)::

       x̂_ũ(i) = √max(Σ_δ w(i, δ) y(i + δ)² / Σ_δ w(i, δ) − 2σ², 0),   w(i, δ) = exp(−(ũ(i) − ũ(i + δ))² / h²)

   mixed into the pilot ``x̂₁ = (1 − a)·x̂_ũ + a·x̂_nlm`` (``a = 1``: no guide, ``x̂₁ = x̂_nlm``);
2. the block-matching collaborative Wiener filter of ``y`` with ``x̂₁`` as its pilot
   (:func:`~medrestore.solvers.collaborative_wiener.collaborative_wiener`, BM4D's second step), blended per voxel::

       x̂ = (1 − b)·x̂₁ + b·W(x̂₁),   b(i) = b_flat + (b_edge − b_flat)·clip((|∇x̂₁(i)|/σ − g₀) / (g₁ − g₀), 0, 1)

   (:func:`wiener_share_map`): where the pilot is flat the Wiener estimate is better; at sharp edges its blocks
   blur what the voxel-wise guided average keeps.

Every output value is a weighted average or a shrunk transform of measured voxels, so where a guide's prior does
not fit the image the result stays a classical estimate. All settings are one frozen
:class:`GuidedWienerSettings`; :data:`DEFAULT_SETTINGS` is the guided default, :data:`NLM_WIENER_SETTINGS` the
network-free variant (``a = 1``, ``b = 1``). Measured results and how each setting was chosen:
``benchmarks/mri-denoise-default.md`` and ``benchmarks/README.md``.

References:
    Manjón JV, Coupé P, Buades A, Collins DL, Robles M. New methods for MRI denoising based on sparseness and
        self-similarity. Medical Image Analysis 16:18–27, 2012 (pre-filtered, voxel-wise weighted NLM).
    Dabov K, Foi A, Katkovnik V, Egiazarian K. Image denoising by sparse 3-D transform-domain collaborative
        filtering. IEEE TIP 16(8), 2007; Maggioni M, Katkovnik V, Egiazarian K, Foi A. Nonlocal transform-domain
        filter for volumetric data denoising and reconstruction. IEEE TIP 22(1), 2013 (the Wiener stage).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

import torch

from medrestore.core.errors import InputError
from medrestore.core.regions import bounding_box
from medrestore.models.fast_nlm import fast_non_local_means, guided_non_local_means
from medrestore.physics.noise_estimation import foreground_mask
from medrestore.solvers.collaborative_wiener import collaborative_wiener


@dataclasses.dataclass(frozen=True)
class GuidedWienerSettings:
    """Every setting of :func:`guided_wiener_denoise` (module docstring for the equations).

    Attributes:
        guide_models: zoo names of the networks whose mean output is the guide ``ũ`` (read by ``medrestore denoise``;
            empty: no guide, which needs ``nlm_share = 1``).
        guide_views: flipped views (self-ensemble) each guide network sees where the CPU runs bfloat16 natively;
            half as many (at least one) in float32 elsewhere.
        guided_h_factor: ``h = guided_h_factor · σ`` of the guided NLM.
        guided_search_radius: its search cube is ``(2r + 1)³``.
        nlm_share: ``a``, the share of plain NLM in the pilot ``x̂₁``.
        nlm_patch_radius, nlm_search_radius, nlm_h_factor: plain NLM's patch and search half-widths and ``h / σ``.
        wiener_block, wiener_step, wiener_group: the Wiener stage's block side ``B``, reference grid step and
            blocks per group ``K``.
        wiener_adaptive_above: ``τ`` of its adaptive group transform (``None``: Haar for every group).
        wiener_kaiser_beta: ``β`` of its Kaiser aggregation window (0: flat).
        share_flat, share_edge: ``b`` where the pilot is flat / at sharp edges.
        share_ramp: ``(g₀, g₁)``, the gradient ``|∇x̂₁|/σ`` where ``b`` leaves ``share_flat`` and reaches ``share_edge``.
        tissue_snr, tissue_margin: the tissue box (:func:`tissue_box`).
    """

    guide_models: tuple[str, ...] = ("mri-resunet3d-colin27", "mri-resunet3d-brains")
    guide_views: int = 1
    guided_h_factor: float = 0.7
    guided_search_radius: int = 3
    nlm_share: float = 0.4
    nlm_patch_radius: int = 1
    nlm_search_radius: int = 2
    nlm_h_factor: float = 1.0
    wiener_block: int = 4
    wiener_step: int = 3
    wiener_group: int = 16
    wiener_adaptive_above: float | None = 0.2
    wiener_kaiser_beta: float = 2.0
    share_flat: float = 1.0
    share_edge: float = 0.3
    share_ramp: tuple[float, float] = (1.0, 6.0)
    tissue_snr: float = 3.0
    tissue_margin: int = 10

    def __post_init__(self) -> None:
        if not 0.0 <= self.nlm_share <= 1.0:
            raise ValueError(f"nlm_share must lie in [0, 1], got {self.nlm_share}")
        if self.nlm_share < 1.0 and not self.guide_models:
            raise ValueError("a guide share (nlm_share < 1) needs guide_models")
        if self.guide_views < 1 or not self.share_ramp[0] < self.share_ramp[1]:
            raise ValueError(f"guide_views must be >= 1 and share_ramp increasing, got {self.guide_views}, {self.share_ramp}")

    @property
    def uses_guide(self) -> bool:
        """Whether the pilot needs a guide (``nlm_share < 1``)."""
        return self.nlm_share < 1.0

    def wiener_options(self) -> dict[str, int | float | None]:
        """The keyword arguments of :func:`~medrestore.solvers.collaborative_wiener.collaborative_wiener`."""
        return {"block": self.wiener_block, "step": self.wiener_step, "group": self.wiener_group,
                "adaptive_above": self.wiener_adaptive_above, "kaiser_beta": self.wiener_kaiser_beta}


DEFAULT_SETTINGS = GuidedWienerSettings()
"""``medrestore denoise``'s default for near-isotropic 3-D MRI volumes (``--method unet3d-nlm``)."""
NLM_WIENER_SETTINGS = GuidedWienerSettings(
    guide_models=(), nlm_share=1.0, wiener_block=3, wiener_step=2, wiener_adaptive_above=None, wiener_kaiser_beta=0.0,
    share_edge=1.0,
)
"""The network-free variant (``--method nlm-wiener``): plain NLM as the pilot, 3³ blocks every 2 voxels, Haar across
every group, the Wiener estimate alone (``b = 1``)."""


class GuidedStages(NamedTuple):
    """The estimates of :func:`guided_stages`, each ``(D, H, W)`` float32 on the CPU: the guided NLM ``x̂_ũ`` (the
    pilot itself when no guide is used), the pilot ``x̂₁``, the Wiener estimate ``W(x̂₁)``, the share ``b`` (a
    per-voxel map) and the output ``x̂``."""

    guided: torch.Tensor
    first: torch.Tensor
    wiener: torch.Tensor
    share: torch.Tensor
    final: torch.Tensor


def guided_stages(
    part: torch.Tensor, nlm: torch.Tensor, guide: torch.Tensor | None, sigma: float, settings: GuidedWienerSettings = DEFAULT_SETTINGS
) -> GuidedStages:
    """The two stages on the noisy ``part`` ``(D, H, W)`` (on the working device), given its plain NLM ``nlm`` and the
    ``guide`` (same shape; ``None`` when ``settings.nlm_share == 1``); returned on the CPU.

    Raises:
        InputError: a guide share without a guide, or shapes that differ.
    """
    if settings.uses_guide and guide is None:
        raise InputError(None, f"guided Wiener: nlm_share {settings.nlm_share} < 1 needs a guide")
    if tuple(nlm.shape) != tuple(part.shape) or (guide is not None and tuple(guide.shape) != tuple(part.shape)):
        raise InputError(None, f"guided Wiener: the volume {tuple(part.shape)}, its NLM and its guide differ in shape")
    device = part.device
    nlm = nlm.detach().to(torch.float32).cpu()
    if settings.uses_guide:
        assert guide is not None
        guided = guided_non_local_means(part, guide.to(device), sigma, settings.guided_search_radius, settings.guided_h_factor).cpu()
        first = (1.0 - settings.nlm_share) * guided + settings.nlm_share * nlm
    else:
        guided = first = nlm
    wiener = collaborative_wiener(part, first.to(device), sigma, **settings.wiener_options()).cpu()  # type: ignore[arg-type]
    share = wiener_share_map(first, sigma, settings)
    return GuidedStages(guided, first, wiener, share, (1.0 - share) * first + share * wiener)


def wiener_share_map(first: torch.Tensor, sigma: float, settings: GuidedWienerSettings = DEFAULT_SETTINGS) -> torch.Tensor:
    """The per-voxel Wiener share ``b(i)`` from the pilot ``x̂₁`` ``(D, H, W)``:
    ``b = b_flat + (b_edge − b_flat)·clip((g − g₀) / (g₁ − g₀), 0, 1)`` with ``g = |∇x̂₁| / σ`` (central differences in
    voxel units, one-sided at the borders, as :func:`torch.gradient`) and the settings' shares and ramp.
    Same shape, float32; ``sigma = 0`` gives ``b_edge`` wherever the gradient is not 0."""
    gradient = torch.stack(torch.gradient(first.to(torch.float32))).square().sum(0).sqrt()
    low, high = settings.share_ramp
    position = ((gradient / max(float(sigma), 1e-30) - low) / (high - low)).clamp(0.0, 1.0)
    return settings.share_flat + (settings.share_edge - settings.share_flat) * position


def tissue_box(volume: torch.Tensor, sigma: float, settings: GuidedWienerSettings = DEFAULT_SETTINGS) -> tuple[slice, ...]:
    """The bounding box of the tissue in ``volume`` ``(*spatial)`` with ``settings.tissue_margin`` voxels around it.

    Tissue: :func:`~medrestore.physics.noise_estimation.foreground_mask` at ``snr = settings.tissue_snr`` (smoothed
    magnitude above ``snr·σ``, where the Rician background sits near ``1.25σ``; eroded twice, so isolated noise
    voxels do not count). The margin is at least the guided search, so border voxels see their whole cube.
    The whole volume when there is no tissue or no σ.
    """
    whole = tuple(slice(0, n) for n in volume.shape)
    if sigma <= 0:
        return whole
    box = bounding_box(foreground_mask(volume, sigma, snr=settings.tissue_snr), settings.tissue_margin)
    return whole if box is None else box


def plain_nlm(volume: torch.Tensor, sigma: float, settings: GuidedWienerSettings = DEFAULT_SETTINGS) -> torch.Tensor:
    """Plain NLM of ``volume`` with the settings' patch, search and ``h``, on its device."""
    return fast_non_local_means(volume, sigma, settings.nlm_patch_radius, settings.nlm_search_radius, settings.nlm_h_factor)


def guided_wiener_denoise(
    volume: torch.Tensor,
    sigma: float,
    guide: Callable[[torch.Tensor], torch.Tensor] | None,
    settings: GuidedWienerSettings = DEFAULT_SETTINGS,
    device: torch.device | None = None,
) -> torch.Tensor:
    """Denoise the magnitude ``volume`` ``(D, H, W)`` with noise σ (module docstring).

    Args:
        volume: the noisy volume, real, on the CPU.
        sigma: the noise standard deviation in image units.
        guide: maps the noisy tissue box ``(d, h, w)`` to the guide ``ũ`` of the same shape (called only when
            ``settings.nlm_share < 1``).
        settings: every setting of the method.
        device: where the filters run (default: the CPU).

    Returns:
        The estimate ``(D, H, W)``, float32, on the CPU.

    Raises:
        InputError: not a real 3-D volume, or a guide share without a guide.

    Example:
        >>> noisy = torch.rand(24, 24, 24)
        >>> guided_wiener_denoise(noisy, 0.1, None, NLM_WIENER_SETTINGS).shape
        torch.Size([24, 24, 24])
    """
    if volume.ndim != 3 or volume.is_complex() or not volume.is_floating_point():
        raise InputError(None, f"guided Wiener needs a real 3-D float volume, got {tuple(volume.shape)} {volume.dtype}")
    if settings.uses_guide and guide is None:
        raise InputError(None, f"guided Wiener: nlm_share {settings.nlm_share} < 1 needs a guide")
    device = torch.device("cpu") if device is None else device
    volume = volume.to(torch.float32)
    output = plain_nlm(volume.to(device), sigma, settings).cpu()
    box = tissue_box(volume, sigma, settings)  # the later stages skip the empty background
    part = volume[box]
    guide_volume = guide(part) if settings.uses_guide and guide is not None else None
    output[box] = guided_stages(part.to(device), output[box], guide_volume, sigma, settings).final
    return output
