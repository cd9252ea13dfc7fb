"""Unrolled CS + deep learning: ISTA-Net⁺ stages with SENSE data consistency.

Each of ``K`` stages takes one learned proximal step — a learned sparsifying transform, soft
thresholding with a learned threshold, the learned inverse transform, with a residual
connection — then one gradient step on the data term ``½‖A x − y‖²`` through the SENSE
operator ``A = M F S`` (:func:`medrestore.physics.mri.sense.cartesian_sense`)::

    c_k     = 𝓕_k(D_k x_{k−1})                                         (learned transform)
    r_k     = x_{k−1} + G_k 𝓕̃_k( soft(c_k, θ_k) ),  soft(c, θ) = sign(c) max(|c| − θ, 0)
    x_k     = r_k − η_k (Aᴴ A r_k − Aᴴ y)                               (data consistency)

(ISTA-Net⁺ orders the two half-steps the other way; ending every stage — and so the network —
on a data-consistency step keeps the output close to the measured samples, as in MoDL/VarNet.)

``D_k``: 3×3 conv (2 → F); ``𝓕_k``, ``𝓕̃_k``: conv–ReLU–conv (F → F); ``G_k``: 3×3 conv
(F → 2); ``η_k = softplus(a_k)`` and the per-channel thresholds ``θ_k = softplus(b_k)`` are
learned. Weights are **per stage** by default (ISTA-Net⁺); ``shared_weights: true`` ties the
transforms of all stages (step sizes and thresholds stay per stage). Complex images are
``complex64`` in the data-consistency step and become 2 channels (real, imaginary) only at the
convolutions. ``x₀ = Aᴴ y`` (the coil-combined zero-filled image), or with
``initial_cg_iterations: n > 0`` the CG-SENSE estimate after ``n`` conjugate-gradient iterations
on ``AᴴA x = Aᴴy`` from zero (:func:`medrestore.solvers.reconstruction.cg_sense`; the MoDL
initialisation — parallel imaging first, so the stages only remove what SENSE leaves).

:class:`RadialUnrolledNet` is the same network with the density-weighted radial NUFFT-SENSE
operator ``A = √w ⊙ F_nu S`` (:func:`medrestore.physics.mri.radial.radial_sense`) in every
data-consistency step, for radial k-space (trajectory and Pipe–Menon weights as physics inputs).

Called with the image alone (``model(image)``) the operator is the identity on a fully sampled
single-coil grid (``AᴴA = I``, ``Aᴴy = image``), so each data step pulls towards the input: the
network is then a learned denoiser of ``image`` (this keeps every catalogue model callable as
``model(image)``).

References:
    Zhang J, Ghanem B. ISTA-Net: Interpretable optimization-inspired deep network for image
    compressive sensing. CVPR 2018.
    Hammernik K et al. Learning a variational network for reconstruction of accelerated MRI
    data. MRM 79:3055–3071, 2018.
    Sriram A et al. End-to-end variational networks for accelerated MRI reconstruction. MICCAI 2020.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from medrestore.core.complex import channels_to_complex, complex_to_channels
from medrestore.core.errors import InputError
from medrestore.models.blocks import ImageToImageModel, check_input, require
from medrestore.physics.mri.operators import LinearOperator
from medrestore.physics.mri.radial import radial_sense, weighted_samples
from medrestore.physics.mri.sense import cartesian_sense
from medrestore.solvers.reconstruction import cg_sense

__all__ = [
    "DataConsistencyStep", "IstaStage", "RadialUnrolledNet", "UnrolledConfig", "UnrolledNet", "radial_operators", "sense_operators",
    "soft_threshold",
]


def _inverse_softplus(value: float) -> float:
    return float(torch.log(torch.expm1(torch.tensor(value, dtype=torch.float64))))


def soft_threshold(z: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    """``sign(z) · max(|z| − θ, 0)`` (real ``z``; ``θ`` broadcast against it)."""
    return torch.sign(z) * F.relu(z.abs() - threshold)


@dataclasses.dataclass(frozen=True)
class UnrolledConfig:
    """Options of :class:`UnrolledNet`.

    Attributes:
        spatial_ndim: 2 (slices).
        in_channels, out_channels: 2 (complex images as real/imaginary channels).
        stages: number of unrolled iterations ``K``.
        features: channels ``F`` of the learned transform.
        shared_weights: one transform for all stages (else one per stage).
        initial_step: initial ``η_k`` (1 is the ``1/‖A‖²`` step for maps with ``Σ|S|² = 1``; the default
            0.5 keeps every stage's transform in play when ``A = I``, where ``η = 1`` would
            project straight back onto the input).
        initial_threshold: initial ``θ_k``.
        initial_cg_iterations: CG-SENSE iterations for ``x₀`` (0: ``x₀ = Aᴴy``); needs k-space.
    """

    spatial_ndim: Literal[2] = 2
    in_channels: int = 2
    out_channels: int = 2
    stages: int = 6
    features: int = 16
    shared_weights: bool = False
    initial_step: float = 0.5
    initial_threshold: float = 0.01
    initial_cg_iterations: int = 0

    def __post_init__(self) -> None:
        require(self.spatial_ndim == 2, "unrolled", f"spatial_ndim must be 2, got {self.spatial_ndim}")
        require(self.in_channels == 2 and self.out_channels == 2, "unrolled", "in_channels and out_channels must be 2 (complex)")
        require(self.stages >= 1 and self.features >= 1, "unrolled", "stages and features must be at least 1")
        require(self.initial_step > 0 and self.initial_threshold > 0, "unrolled", "initial_step and initial_threshold must be > 0")
        require(self.initial_cg_iterations >= 0, "unrolled", f"initial_cg_iterations must be >= 0, got {self.initial_cg_iterations}")


class DataConsistencyStep(nn.Module):
    """``x − η (AᴴA x − Aᴴy)`` with a learned step ``η = softplus(a)``; ``A`` is given, never built here.

    With ``x`` the true image and noiseless data (``y = A x``) the step returns ``x`` unchanged;
    for ``η ≤ 2/‖A‖²`` it never increases ``‖A x − y‖``.
    """

    def __init__(self, initial_step: float = 1.0) -> None:
        super().__init__()
        self.raw_step = nn.Parameter(torch.tensor(_inverse_softplus(initial_step), dtype=torch.float32))

    @property
    def step(self) -> torch.Tensor:
        return F.softplus(self.raw_step)

    def forward(self, x: torch.Tensor, operators: list[LinearOperator] | None, adjoint_data: torch.Tensor) -> torch.Tensor:
        """``x``, ``adjoint_data`` (= Aᴴy): complex ``(N, H, W)``; one operator per batch item (``None``: ``A = I``)."""
        if operators is None:
            gradient = x - adjoint_data
        else:
            gradient = torch.stack([operator.normal(x[n]) for n, operator in enumerate(operators)]) - adjoint_data
        return x - self.step * gradient


class IstaStage(nn.Module):
    """The learned proximal step of one ISTA-Net⁺ stage: ``r ↦ r + G 𝓕̃(soft(𝓕 D r, θ))`` on ``(N, 2, H, W)``."""

    def __init__(self, features: int, initial_threshold: float) -> None:
        super().__init__()
        self.head = nn.Conv2d(2, features, 3, padding=1)
        self.forward_transform = nn.Sequential(
            nn.Conv2d(features, features, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(features, features, 3, padding=1)
        )
        self.backward_transform = nn.Sequential(
            nn.Conv2d(features, features, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(features, features, 3, padding=1)
        )
        self.tail = nn.Conv2d(features, 2, 3, padding=1)
        self.raw_threshold = nn.Parameter(torch.full((1, features, 1, 1), _inverse_softplus(initial_threshold)))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        coefficients = self.forward_transform(self.head(image))
        sparse = soft_threshold(coefficients, F.softplus(self.raw_threshold))
        return image + self.tail(self.backward_transform(sparse))


def sense_operators(kspace: torch.Tensor, mask: torch.Tensor, coil_maps: torch.Tensor) -> list[LinearOperator]:
    """One Cartesian SENSE operator per batch item: ``mask`` ``(N, H, W)``, ``coil_maps`` ``(N, coils, H, W)``."""
    if kspace.shape != coil_maps.shape or mask.shape[0] != kspace.shape[0] or tuple(mask.shape[-2:]) != tuple(kspace.shape[-2:]):
        raise InputError(
            None,
            f"k-space {tuple(kspace.shape)}, mask {tuple(mask.shape)} and coil maps {tuple(coil_maps.shape)} do not match "
            "(expected (N, coils, H, W), (N, H, W), (N, coils, H, W))",
        )
    return [cartesian_sense(coil_maps[n], mask[n]) for n in range(kspace.shape[0])]


class UnrolledNet(ImageToImageModel):
    """``K`` ISTA-Net⁺ stages with SENSE data consistency (see the module docstring).

    ``forward(image, kspace, mask, coil_maps)``: ``image`` float ``(N, 2, H, W)`` = ``Aᴴy``;
    ``kspace`` complex ``(N, coils, H, W)`` (zeros where not sampled); ``mask`` ``(N, H, W)``;
    ``coil_maps`` complex ``(N, coils, H, W)`` → the reconstruction, float ``(N, 2, H, W)``.

    Example:
        >>> net = UnrolledNet(UnrolledConfig(stages=2, features=4))
        >>> net(torch.zeros(1, 2, 12, 10)).shape
        torch.Size([1, 2, 12, 10])
    """

    name = "unrolled"

    def __init__(self, config: UnrolledConfig = UnrolledConfig()) -> None:
        super().__init__()
        self.config = config
        count = 1 if config.shared_weights else config.stages
        self.transforms = nn.ModuleList([IstaStage(config.features, config.initial_threshold) for _ in range(count)])
        self.data_consistency = nn.ModuleList([DataConsistencyStep(config.initial_step) for _ in range(config.stages)])

    physics_names: tuple[str, ...] = ("kspace", "mask", "coil_maps")
    """The physics tensors :meth:`forward` takes after the image, in order."""

    def build_operators(self, physics: tuple[torch.Tensor, ...]) -> tuple[list[LinearOperator], torch.Tensor]:
        """``(one operator A per batch item, the data y it fits (N, …))`` from the physics tensors."""
        kspace, mask, coil_maps = physics
        return sense_operators(kspace, mask, coil_maps), kspace

    def forward(self, image: torch.Tensor, *physics: torch.Tensor | None) -> torch.Tensor:
        """``image`` float ``(N, 2, H, W)`` = ``Aᴴy``, then the physics tensors (all or none) → float ``(N, 2, H, W)``."""
        check_input(image, 2, 2, self.name)
        names = self.physics_names
        given = [part is not None for part in physics]
        if len(physics) > len(names) or (any(given) and (len(physics) != len(names) or not all(given))):
            raise InputError(None, f"{self.name}: give {', '.join(names)} together (or none of them)")
        operators, data = self.build_operators(physics) if any(given) else (None, None)  # type: ignore[arg-type]
        adjoint_data = channels_to_complex(image)
        x = adjoint_data
        if operators is not None and self.config.initial_cg_iterations > 0:
            iterations = self.config.initial_cg_iterations
            x = torch.stack([cg_sense(operator, data[n], 0.0, iterations, 0.0)[0] for n, operator in enumerate(operators)])  # type: ignore[index]
        for stage, step in enumerate(self.data_consistency):
            transform = self.transforms[0 if self.config.shared_weights else stage]
            x = channels_to_complex(transform(complex_to_channels(x)))
            x = step(x, operators, adjoint_data)
        return complex_to_channels(x)


def radial_operators(
    kspace: torch.Tensor, trajectory: torch.Tensor, weights: torch.Tensor, coil_maps: torch.Tensor, tolerance: float = 1e-4
) -> tuple[list[LinearOperator], torch.Tensor]:
    """Density-weighted NUFFT-SENSE operators ``A_n = √w_n ⊙ F_nu,n S_n`` and their data ``√w_n ⊙ y_n``.

    ``kspace`` complex ``(N, coils, *samples)``, ``trajectory`` ``(N, *samples, 2)``, ``weights``
    ``(N, *samples)`` (0 on padded samples, which then drop out of ``A``), ``coil_maps`` complex
    ``(N, coils, H, W)``.
    """
    batch = kspace.shape[0]
    if not (trajectory.shape[0] == weights.shape[0] == coil_maps.shape[0] == batch) or tuple(kspace.shape[2:]) != tuple(weights.shape[1:]) \
            or tuple(trajectory.shape[1:-1]) != tuple(weights.shape[1:]) or kspace.shape[1] != coil_maps.shape[1]:
        raise InputError(
            None,
            f"k-space {tuple(kspace.shape)}, trajectory {tuple(trajectory.shape)}, weights {tuple(weights.shape)} and coil maps "
            f"{tuple(coil_maps.shape)} do not match (expected (N, coils, *samples), (N, *samples, 2), (N, *samples), (N, coils, H, W))",
        )
    operators = [radial_sense(coil_maps[n], trajectory[n], weights[n], tolerance) for n in range(batch)]
    return operators, weighted_samples(kspace, weights[:, None])


class RadialUnrolledNet(UnrolledNet):
    """:class:`UnrolledNet` whose data-consistency steps run the density-weighted radial NUFFT-SENSE operator.

    ``forward(image, kspace, trajectory, weights, coil_maps)``: ``image`` float ``(N, 2, H, W)`` =
    ``Aᴴ(√w ⊙ √w ⊙ y) = Σ_c conj(S_c) F_nuᴴ(w ⊙ y_c)`` (the density-compensated, coil-combined
    gridding); ``kspace`` complex ``(N, coils, spokes, readout)``; ``trajectory``
    ``(N, spokes, readout, 2)`` in grid units; ``weights`` ``(N, spokes, readout)`` (Pipe–Menon);
    ``coil_maps`` complex ``(N, coils, H, W)``. Each stage's gradient step is
    ``x − η Sᴴ F_nuᴴ W (F_nu S x) + η Aᴴ√w y`` — the NUFFT (FINUFFT, single precision, 1e-4) with its
    exact adjoint as its autograd backward, so the network trains end to end. The weights make
    ``AᴴA`` close to the identity on the sampled disc (``‖AᴴA‖ ≈ 1``), so ``η ≈ 1`` is the
    natural step, as in the Cartesian network.

    Example:
        >>> net = RadialUnrolledNet(UnrolledConfig(stages=2, features=4))
        >>> net(torch.zeros(1, 2, 12, 10)).shape
        torch.Size([1, 2, 12, 10])
    """

    physics_names = ("kspace", "trajectory", "weights", "coil_maps")

    def build_operators(self, physics: tuple[torch.Tensor, ...]) -> tuple[list[LinearOperator], torch.Tensor]:
        kspace, trajectory, weights, coil_maps = physics
        return radial_operators(kspace, trajectory, weights, coil_maps)
