"""Scanner harmonisers: map slices of scanner a to the look of scanner b (``a2b``) or back (``b2a``).

Every harmoniser takes and returns ``(N, H, W)`` float32 slices in the scanners' intensity units,
learns from slices of both scanners with :meth:`Harmonizer.fit`, and stores what it learned as
a flat mapping of tensors (:meth:`Harmonizer.state_dict`) next to its typed config.

* ``histogram-matching`` — within the brain mask, map the input's intensity distribution onto
  the other scanner's (``skimage.exposure.match_histograms`` against stored reference
  quantiles; Nyúl & Udupa, "On standardizing the MR image intensity scale", MRM 42, 1999).
* ``coupled-dictionary`` — dictionaries ``D_a`` and ``D_b`` sharing one sparse code per patch
  pair: ``min ‖[p_a; p_b] − [D_a; D_b] x‖² + λ‖x‖₁`` learned by alternating lasso coding
  (FISTA) and MOD updates; harmonise by coding an ``a`` patch with ``D_a`` and synthesising
  ``D_b x``, whole slices by averaging overlapping patches (Yang, Wright, Huang & Ma, "Image
  super-resolution via sparse representation", IEEE TIP 19(11), 2010).
  Needs paired slices.

Networks (paired U-Net, CycleGAN) are trained by :mod:`medrestore.training` and applied by
:class:`NetworkHarmonizer`. :data:`HARMONIZERS` registers the methods ``medrestore train``
builds by name (``method:`` in a harmonisation config).
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping
from typing import ClassVar, Literal

import numpy as np
import skimage.exposure
import torch
import torch.nn.functional as functional
from torch import nn

from medrestore.core.errors import ConfigError, InputError
from medrestore.core.progress import track
from medrestore.core.random import make_generator
from medrestore.core.registry import Entry, Registry, config_to_options
from medrestore.models.blocks import require
from medrestore.models.cyclegan import CycleGAN, CycleGANConfig
from medrestore.physics.scanner import brain_mask, estimate_noise_sigma, match_noise
from medrestore.solvers.sparse import mod_dictionary_update, sparse_code

Direction = Literal["a2b", "b2a"]
DIRECTIONS: tuple[str, ...] = ("a2b", "b2a")


def check_direction(direction: str) -> str:
    """``direction`` if it is ``a2b`` or ``b2a``; :class:`ConfigError` otherwise."""
    if direction not in DIRECTIONS:
        raise ConfigError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    return direction


def check_slices(slices: torch.Tensor, role: str = "input") -> torch.Tensor:
    """``slices`` as contiguous float32 ``(N, H, W)``; :class:`InputError` for another rank or non-finite values."""
    if slices.ndim != 3:
        raise InputError(None, f"{role}: expected (N, H, W) slices, got shape {tuple(slices.shape)}")
    if not bool(torch.isfinite(slices).all()):
        raise InputError(None, f"{role}: slices hold NaN or infinite values")
    return slices.to(torch.float32).contiguous()


class Harmonizer(abc.ABC):
    """A fitted mapping between two scanners' appearances."""

    name: ClassVar[str]
    paired: ClassVar[bool]
    config: object

    @abc.abstractmethod
    def fit(self, slices_a: torch.Tensor, slices_b: torch.Tensor, seed: int = 0) -> dict[str, float]:
        """Learn from ``(N_a, H, W)`` and ``(N_b, H, W)`` slices (paired methods: ``N_a = N_b``, same anatomy)."""

    @abc.abstractmethod
    def harmonize(self, slices: torch.Tensor, direction: str) -> torch.Tensor:
        """``(N, H, W)`` → ``(N, H, W)`` in the other scanner's appearance."""

    @abc.abstractmethod
    def state_dict(self) -> dict[str, torch.Tensor]:
        """What :meth:`fit` learned, as tensors."""

    @abc.abstractmethod
    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Restore :meth:`state_dict`."""


# -- histogram matching --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class HistogramMatchingConfig:
    """``quantiles``: reference quantiles stored per scanner; ``mask_fraction``: brain-mask threshold."""

    quantiles: int = 1024
    mask_fraction: float = 0.1

    def __post_init__(self) -> None:
        require(self.quantiles >= 16, "histogram-matching", f"quantiles must be >= 16, got {self.quantiles}")
        require(0 < self.mask_fraction < 1, "histogram-matching", f"mask_fraction must be in (0, 1), got {self.mask_fraction}")


class HistogramMatching(Harmonizer):
    """Brain-masked histogram matching to the other scanner's pooled training histogram."""

    name = "histogram-matching"
    paired = False

    def __init__(self, config: HistogramMatchingConfig = HistogramMatchingConfig()) -> None:
        self.config = config
        self.reference: dict[str, torch.Tensor] = {}

    def _quantiles(self, slices: torch.Tensor) -> torch.Tensor:
        values = slices[brain_mask(slices, self.config.mask_fraction)].double().numpy()
        levels = np.linspace(0.0, 1.0, self.config.quantiles)
        return torch.from_numpy(np.quantile(values, levels))

    def fit(self, slices_a: torch.Tensor, slices_b: torch.Tensor, seed: int = 0) -> dict[str, float]:
        self.reference = {"a": self._quantiles(check_slices(slices_a)), "b": self._quantiles(check_slices(slices_b))}
        return {}

    def harmonize(self, slices: torch.Tensor, direction: str) -> torch.Tensor:
        slices = check_slices(slices)
        if not self.reference:
            raise ConfigError("histogram-matching: fit it (or load its state) before harmonising")
        target = self.reference[check_direction(direction)[-1]].numpy()
        output = slices.clone()
        for index, image in enumerate(slices):
            mask = brain_mask(image, self.config.mask_fraction)
            if int(mask.sum()) < 2:
                continue
            matched = skimage.exposure.match_histograms(image[mask].double().numpy(), target)
            output[index][mask] = torch.from_numpy(matched).to(torch.float32)
        return output

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {f"reference_{name}": value for name, value in self.reference.items()}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        self.reference = {name: state[f"reference_{name}"].double() for name in ("a", "b")}


# -- coupled dictionary learning -----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CoupledDictionaryConfig:
    """Options of :class:`CoupledDictionary`.

    Attributes:
        patch_size: side ``p`` of the square patches (``d = p²`` per scanner).
        stride: patch step when harmonising (overlap = ``p − stride``).
        atoms: dictionary size ``K``.
        weight: lasso weight ``λ`` (relative to patch norms of ~1 intensity unit).
        iterations: alternating code/MOD rounds.
        coding_iterations: FISTA iterations per coding.
        training_patches: random patch pairs drawn for learning.
        curve_points: knots of the patch-mean transfer curves ``m_b = f(m_a)`` (and back).
    """

    patch_size: int = 7
    stride: int = 2
    atoms: int = 128
    weight: float = 0.01
    iterations: int = 15
    coding_iterations: int = 60
    training_patches: int = 20000
    curve_points: int = 64

    def __post_init__(self) -> None:
        owner = "coupled-dictionary"
        require(self.patch_size >= 2, owner, f"patch_size must be >= 2, got {self.patch_size}")
        require(1 <= self.stride <= self.patch_size, owner, f"stride must be in [1, patch_size], got {self.stride}")
        require(self.atoms >= 2, owner, f"atoms must be >= 2, got {self.atoms}")
        require(self.weight >= 0, owner, f"weight must be >= 0, got {self.weight}")
        require(self.iterations >= 1 and self.coding_iterations >= 1, owner, "iterations must be >= 1")
        require(self.training_patches >= self.atoms, owner, "training_patches must be >= atoms")


def extract_patches(slices: torch.Tensor, patch_size: int, stride: int) -> torch.Tensor:
    """``(N, H, W)`` → ``(p², N·L)`` patch columns on a grid of step ``stride`` (last row/column included)."""
    padded = _pad_to_grid(slices, patch_size, stride)
    columns = functional.unfold(padded[:, None], patch_size, stride=stride)  # (N, p², L)
    return columns.permute(1, 0, 2).reshape(patch_size**2, -1)


def _pad_to_grid(slices: torch.Tensor, patch_size: int, stride: int) -> torch.Tensor:
    height, width = slices.shape[-2:]
    pad_rows = (-(height - patch_size)) % stride if height >= patch_size else patch_size - height
    pad_cols = (-(width - patch_size)) % stride if width >= patch_size else patch_size - width
    return functional.pad(slices[:, None], (0, pad_cols, 0, pad_rows), mode="replicate")[:, 0]


def average_patches(columns: torch.Tensor, shape: tuple[int, int, int], patch_size: int, stride: int) -> torch.Tensor:
    """Inverse of :func:`extract_patches` by averaging overlaps: ``(p², N·L)`` → ``(N, H, W)``."""
    count, height, width = shape
    padded_shape = _pad_to_grid(torch.zeros(1, height, width), patch_size, stride).shape[-2:]
    per_slice = columns.reshape(patch_size**2, count, -1).permute(1, 0, 2)
    total = functional.fold(per_slice, padded_shape, patch_size, stride=stride)
    weights = functional.fold(torch.ones_like(per_slice[:1]), padded_shape, patch_size, stride=stride)
    return (total / weights)[:, 0, :height, :width]


def learn_coupled_dictionary(
    patches_a: torch.Tensor, patches_b: torch.Tensor, config: CoupledDictionaryConfig, seed: int
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Learn ``[D_a; D_b]`` on stacked pairs ``[p_a; p_b]`` (``(d_a, n)``, ``(d_b, n)``) by lasso + MOD.

    ``min_{D, X} ½‖[P_a; P_b] − [D_a; D_b] X‖²_F + λ‖X‖₁`` with unit-norm stacked atoms,
    initialised with ``K`` random training pairs. Returns ``(D_a, D_b, relative error)``.
    """
    signals = torch.cat([patches_a, patches_b]).double()
    generator = make_generator(seed + 1)
    start = torch.randperm(signals.shape[1], generator=generator)[: config.atoms]
    dictionary = signals[:, start] / signals[:, start].norm(dim=0).clamp_min(1e-12)
    error = 1.0
    for _ in track(range(config.iterations), "coupled-dictionary rounds"):
        codes = sparse_code(dictionary, signals, config.weight, config.coding_iterations)
        dictionary = mod_dictionary_update(signals, codes)
        error = float((signals - dictionary @ codes).norm() / signals.norm())
    split = patches_a.shape[0]
    return dictionary[:split], dictionary[split:], error


def transfer_curve(source: torch.Tensor, target: torch.Tensor, points: int) -> torch.Tensor:
    """Monotone curve ``(2, points)``: source quantiles → mean target value in each quantile bin.

    A binned regression of paired values (patch means) made non-decreasing by a running maximum.
    """
    edges = torch.quantile(source, torch.linspace(0, 1, points + 1, dtype=source.dtype))
    bins = torch.bucketize(source, edges[1:-1])
    sums = torch.zeros(points, dtype=source.dtype).index_add_(0, bins, target)
    counts = torch.zeros(points, dtype=source.dtype).index_add_(0, bins, torch.ones_like(target))
    sources = torch.zeros(points, dtype=source.dtype).index_add_(0, bins, source)
    keep = counts > 0
    x, y = sources[keep] / counts[keep], sums[keep] / counts[keep]
    return torch.stack([x, torch.cummax(y, dim=0).values])


def apply_curve(curve: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear interpolation of ``curve (2, k)`` at ``values`` (linear extrapolation at the ends)."""
    x, y = curve[0].numpy(), curve[1].numpy()
    result = np.interp(values.numpy(), x, y)
    low, high = values.numpy() < x[0], values.numpy() > x[-1]
    if len(x) > 1:
        result[low] = y[0] + (values.numpy()[low] - x[0]) * (y[1] - y[0]) / max(x[1] - x[0], 1e-12)
        result[high] = y[-1] + (values.numpy()[high] - x[-1]) * (y[-1] - y[-2]) / max(x[-1] - x[-2], 1e-12)
    return torch.from_numpy(result).to(values.dtype)


class CoupledDictionary(Harmonizer):
    """Coupled dictionaries ``D_a (p², K)`` and ``D_b (p², K)`` with one shared sparse code.

    Patches are split into their mean ``m`` and detail ``p − m``: the details share the sparse
    code, the means go through monotone transfer curves learned from the same pairs, so
    ``p̂_b = D_b x + f_ab(m_a)`` with ``x = argmin ½‖p_a − m_a − D_a x‖² + λ‖x‖₁``.
    """

    name = "coupled-dictionary"
    paired = True

    def __init__(self, config: CoupledDictionaryConfig = CoupledDictionaryConfig()) -> None:
        self.config = config
        self.dictionary_a = torch.empty(0)
        self.dictionary_b = torch.empty(0)
        self.curve_a2b = torch.empty(0)
        self.curve_b2a = torch.empty(0)

    def _training_pairs(self, slices_a: torch.Tensor, slices_b: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Random patch pairs (anywhere in the slices): ``(p_a (p², n), p_b (p², n))`` float64."""
        size = self.config.patch_size
        patches_a = extract_patches(slices_a, size, 1)
        patches_b = extract_patches(slices_b, size, 1)
        generator = make_generator(seed)
        chosen = torch.randperm(patches_a.shape[1], generator=generator)[: self.config.training_patches]
        return patches_a[:, chosen].double(), patches_b[:, chosen].double()

    def fit(self, slices_a: torch.Tensor, slices_b: torch.Tensor, seed: int = 0) -> dict[str, float]:
        """Learn the mean transfer curves, then alternate lasso coding and MOD on ``[p_a − m_a; p_b − m_b]``.

        Returns the final relative fitting error of the mean-removed pairs.
        """
        slices_a, slices_b = check_slices(slices_a, "scanner a"), check_slices(slices_b, "scanner b")
        if slices_a.shape != slices_b.shape:
            raise InputError(None, f"coupled-dictionary needs paired slices, got {tuple(slices_a.shape)} and {tuple(slices_b.shape)}")
        patches_a, patches_b = self._training_pairs(slices_a, slices_b, seed)
        means_a, means_b = patches_a.mean(dim=0), patches_b.mean(dim=0)
        self.curve_a2b = transfer_curve(means_a, means_b, self.config.curve_points)
        self.curve_b2a = transfer_curve(means_b, means_a, self.config.curve_points)
        dictionary_a, dictionary_b, error = learn_coupled_dictionary(patches_a - means_a, patches_b - means_b, self.config, seed)
        self.dictionary_a, self.dictionary_b = dictionary_a.float(), dictionary_b.float()
        return {"relative_error": error}

    def translate_patches(self, patches: torch.Tensor, direction: str) -> torch.Tensor:
        """``(p², n)`` patches of the source scanner → the target scanner's patches ``D_target x``."""
        source, target = (
            (self.dictionary_a, self.dictionary_b) if check_direction(direction) == "a2b" else (self.dictionary_b, self.dictionary_a)
        )
        if source.numel() == 0:
            raise ConfigError("coupled-dictionary: fit it (or load its state) before harmonising")
        curve = self.curve_a2b if direction == "a2b" else self.curve_b2a
        patches = patches.double()
        means = patches.mean(dim=0)
        codes = sparse_code(source.double(), patches - means, self.config.weight, self.config.coding_iterations)
        return (target.double() @ codes + apply_curve(curve, means)).to(torch.float32)

    def harmonize(self, slices: torch.Tensor, direction: str) -> torch.Tensor:
        slices = check_slices(slices)
        size, stride = self.config.patch_size, self.config.stride
        output = []
        for image in track(slices, f"coupled-dictionary {direction} slices"):  # one slice at a time bounds the memory
            patches = extract_patches(image[None], size, stride)
            output.append(average_patches(self.translate_patches(patches, direction), (1, *image.shape), size, stride))
        return torch.cat(output)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {
            "dictionary_a": self.dictionary_a,
            "dictionary_b": self.dictionary_b,
            "curve_a2b": self.curve_a2b,
            "curve_b2a": self.curve_b2a,
        }

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        self.dictionary_a, self.dictionary_b = state["dictionary_a"].float(), state["dictionary_b"].float()
        self.curve_a2b, self.curve_b2a = state["curve_a2b"].double(), state["curve_b2a"].double()


# -- networks ------------------------------------------------------------------------------------


class NetworkHarmonizer(Harmonizer):
    """Trained image-to-image networks, one per direction (paired U-Net or CycleGAN generators).

    ``networks`` maps ``a2b``/``b2a`` to modules ``(N, 1, H, W) → (N, 1, H, W)`` working on
    intensities divided by ``scale``; a missing direction cannot be harmonised.
    """

    paired = False

    def __init__(
        self, name: str, networks: Mapping[str, nn.Module], scale: float = 1.0, model_options: Mapping[str, object] | None = None
    ) -> None:
        self.name = name  # type: ignore[misc]
        self.networks = dict(networks)
        self.scale = float(scale)
        self.config = {"scale": self.scale, "model": dict(model_options or {})}

    def fit(self, slices_a: torch.Tensor, slices_b: torch.Tensor, seed: int = 0) -> dict[str, float]:
        raise ConfigError(f"{self.name}: networks are trained with `medrestore train`, not fitted here")

    @torch.no_grad()
    def harmonize(self, slices: torch.Tensor, direction: str) -> torch.Tensor:
        slices = check_slices(slices)
        if check_direction(direction) not in self.networks:
            raise ConfigError(f"{self.name}: no network for direction {direction}; it has {', '.join(self.networks)}")
        network = self.networks[direction].eval()
        outputs = [network(slices[i : i + 8, None] / self.scale)[:, 0] * self.scale for i in range(0, len(slices), 8)]
        return torch.cat(outputs)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {f"{direction}.{key}": value for direction, net in self.networks.items() for key, value in net.state_dict().items()}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        for direction, network in self.networks.items():
            prefix = f"{direction}."
            network.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})


class NoiseMatched(Harmonizer):
    """``base`` followed by :func:`~medrestore.physics.scanner.match_noise` to the target scanner's noise level.

    ``noise_levels`` maps ``a``/``b`` to relative noise levels (e.g. the median of
    :func:`~medrestore.physics.scanner.estimate_noise_sigma` over that scanner's training slices);
    the added noise is seeded by ``seed``.
    """

    paired = False

    def __init__(self, base: Harmonizer, noise_levels: Mapping[str, float], seed: int = 0) -> None:
        self.base = base
        self.name = f"{base.name}+noise"  # type: ignore[misc]
        self.noise_levels = {key: float(value) for key, value in noise_levels.items()}
        self.seed = seed
        self.config = {"noise_levels": self.noise_levels, "seed": seed}

    def fit(self, slices_a: torch.Tensor, slices_b: torch.Tensor, seed: int = 0) -> dict[str, float]:
        info = self.base.fit(slices_a, slices_b, seed)
        self.noise_levels = {
            "a": float(estimate_noise_sigma(check_slices(slices_a)).median()),
            "b": float(estimate_noise_sigma(check_slices(slices_b)).median()),
        }
        return info

    def harmonize(self, slices: torch.Tensor, direction: str) -> torch.Tensor:
        output = self.base.harmonize(slices, direction)
        return match_noise(output, self.noise_levels[check_direction(direction)[-1]], make_generator(self.seed))

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.base.state_dict()

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        self.base.load_state_dict(state)


# -- registry ------------------------------------------------------------------------------------


def make_cyclegan_harmonizer(config: CycleGANConfig) -> NetworkHarmonizer:
    """An untrained CycleGAN's generators as a harmoniser (train it with ``medrestore train``)."""
    model = CycleGAN(config)
    return NetworkHarmonizer("cyclegan", {"a2b": model.a2b, "b2a": model.b2a}, 1.0, config_to_options(config))


HARMONIZER_ENTRIES: tuple[Entry[Harmonizer], ...] = (
    Entry(
        name="histogram-matching",
        constructor=HistogramMatching,
        task="harmonize",
        modality="mri",
        description="brain-masked histogram matching to the other scanner's pooled histogram (skimage)",
        config_type=HistogramMatchingConfig,
    ),
    Entry(
        name="coupled-dictionary",
        constructor=CoupledDictionary,
        task="harmonize",
        modality="mri",
        description="coupled dictionaries D_a, D_b with one shared sparse code on overlapping patches (paired)",
        config_type=CoupledDictionaryConfig,
    ),
    Entry(
        name="cyclegan",
        constructor=make_cyclegan_harmonizer,
        task="harmonize",
        modality="mri",
        description="CycleGAN on whole slices: residual U-Net generators, PatchGAN discriminators (unpaired)",
        config_type=CycleGANConfig,
    ),
)
HARMONIZERS: Registry[Harmonizer] = Registry("harmoniser")
for _entry in HARMONIZER_ENTRIES:
    HARMONIZERS.register(_entry)
