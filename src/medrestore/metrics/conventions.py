"""Named evaluation conventions: which metrics, which data range, which SSIM — exactly as published.

Numbers are only comparable with a paper when they are computed its way. Each
:class:`Convention` fixes every choice; :func:`evaluate` applies one to a prediction/reference
pair. ``x`` is the prediction, ``y`` the reference (ground truth).

``fastmri`` — fastMRI's ``fastmri/evaluate.py`` (Zbontar et al., arXiv:1811.08839), volume level:
    ``NMSE = ‖y − x‖² / ‖y‖²``; ``PSNR = 10 log10(max(y)² / MSE)`` over the whole volume;
    ``SSIM = (1/S) Σ_s SSIM₂D(y[s], x[s])`` over the slices ``s`` of the first axis (a 2-D image is
    one slice) with skimage's defaults: 7×7 uniform window, sample covariance (``n − 1``),
    ``K1 = 0.01, K2 = 0.03``, data range ``max(y)`` of the whole volume.

``oct`` — the convention of the published denoisers on the Duke/Bioptigen SD-OCT set
(Fang et al., IEEE TMI 32(11), 2013, and the peers that report on it): crop both images to an
even height and width (drop the last row/column when odd), then on the 0–255 scale
``PSNR = 10 log10(255² / MSE)`` and Gaussian-window SSIM (σ = 1.5, truncated at 3.5σ → 11 taps,
``K1 = 0.01, K2 = 0.03``, ``L = 255``, population covariance as in Wang et al. 2004). Inputs
must already be on the 0–255 scale (8-bit images). Stacks are scored slice by slice along the
first axis. Averaging over subjects is done by the caller (``medrestore evaluate`` on folders).

``default`` — medrestore's own: ``L = max(y) − min(y)``; PSNR with ``L``; Gaussian SSIM
(σ = 1.5, ``K1 = 0.01, K2 = 0.03``, population covariance; 3-D when the data have three spatial
axes of at least 11 voxels, else 2-D per slice); NMSE as above; ``MAE = mean |y − x|``.

Masks: errors are averaged over the masked voxels (NMSE sums over them) and SSIM is the mean of
the SSIM map over the masked voxels of the interior (see :func:`~medrestore.metrics.ssim.interior_mean`).
The data range is always taken from the whole reference.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch

from medrestore.core.errors import InputError
from medrestore.metrics.arrays import ArrayLike, prepare_mask, prepare_pair
from medrestore.metrics.basic import mae, nmse, psnr
from medrestore.metrics.ssim import SSIMOptions, interior_mean, ssim_slice_axis, structural_similarity_map

MetricName = Literal["psnr", "ssim", "nmse", "mae"]
METRIC_NAMES: tuple[MetricName, ...] = ("psnr", "ssim", "nmse", "mae")
DataRangeRule = Literal["reference_max", "reference_span", "fixed"]


@dataclasses.dataclass(frozen=True)
class Convention:
    """Every choice behind a set of reported numbers.

    Attributes:
        name: short name used on the command line.
        metrics: metric names in report order (``psnr``, ``ssim``, ``nmse``, ``mae``).
        data_range_rule: ``reference_max`` (``L = max(y)``), ``reference_span``
            (``L = max(y) − min(y)``) or ``fixed`` (``L = fixed_data_range``).
        fixed_data_range: ``L`` for the ``fixed`` rule, else ``None``.
        ssim_options: window and constants of SSIM.
        ssim_per_slice: ``True``: 2-D SSIM on each slice of the leading axes (mean of slices);
            ``False``: 3-D SSIM when the data allow it, else 2-D per slice.
        crop_to_even: drop the last row/column of the last two axes when their length is odd.
        formula: the exact formulas, for reports.
        source: where the convention comes from.
    """

    name: str
    metrics: tuple[MetricName, ...]
    data_range_rule: DataRangeRule
    fixed_data_range: float | None
    ssim_options: SSIMOptions
    ssim_per_slice: bool
    crop_to_even: bool
    formula: str
    source: str

    def __post_init__(self) -> None:
        unknown = [metric for metric in self.metrics if metric not in METRIC_NAMES]
        if unknown or not self.metrics:
            raise InputError(None, f"convention {self.name!r}: metrics {unknown or 'none'} not among {METRIC_NAMES}")
        if self.data_range_rule not in ("reference_max", "reference_span", "fixed"):
            raise InputError(None, f"convention {self.name!r}: unknown data range rule {self.data_range_rule!r}")
        if (self.data_range_rule == "fixed") != (self.fixed_data_range is not None):
            raise InputError(None, f"convention {self.name!r}: give fixed_data_range exactly when the rule is 'fixed'")

    def data_range(self, reference: torch.Tensor) -> float:
        """``L`` for this reference (float64 tensor); refuses a non-positive range."""
        if self.fixed_data_range is not None:
            value = float(self.fixed_data_range)
        elif self.data_range_rule == "reference_max":
            value = float(reference.max())
        else:
            value = float(reference.max() - reference.min())
        if not value > 0:
            problem = f"the reference has data range {value:g} under the {self.name!r} convention"
            raise InputError(None, f"{problem}; metrics need a positive range")
        return value

    def ssim_spatial_ndim(self, shape: tuple[int, ...], spatial_ndim: int | None) -> int:
        """Axes SSIM filters: 2 per slice, or 3 when allowed and every spatial axis fits the window."""
        if self.ssim_per_slice:
            return 2
        wanted = spatial_ndim if spatial_ndim is not None else min(len(shape), 3)
        if wanted == 3 and min(shape[-3:]) < self.ssim_options.window_size:
            return 2
        return wanted


CONVENTIONS: tuple[Convention, ...] = (
    Convention(
        name="default",
        metrics=("psnr", "ssim", "nmse", "mae"),
        data_range_rule="reference_span",
        fixed_data_range=None,
        ssim_options=SSIMOptions(window="gaussian", sigma=1.5, k1=0.01, k2=0.03, use_sample_covariance=False),
        ssim_per_slice=False,
        crop_to_even=False,
        formula="L = max(y) - min(y); PSNR = 10 log10(L^2/MSE); SSIM Gaussian sigma=1.5 (2-D or 3-D), "
        "population covariance; NMSE = |y-x|^2/|y|^2; MAE = mean|y-x|",
        source="medrestore; SSIM of Wang et al., IEEE TIP 13(4), 2004",
    ),
    Convention(
        name="fastmri",
        metrics=("nmse", "psnr", "ssim"),
        data_range_rule="reference_max",
        fixed_data_range=None,
        ssim_options=SSIMOptions(window="uniform", win_size=7, k1=0.01, k2=0.03, use_sample_covariance=True),
        ssim_per_slice=True,
        crop_to_even=False,
        formula="NMSE = |y-x|^2/|y|^2; PSNR = 10 log10(max(y)^2/MSE) over the volume; SSIM = mean over "
        "slices of skimage structural_similarity(y[s], x[s], data_range=max(y)) (7x7 uniform, sample covariance)",
        source="fastMRI fastmri/evaluate.py (Zbontar et al., arXiv:1811.08839)",
    ),
    Convention(
        name="oct",
        metrics=("psnr", "ssim"),
        data_range_rule="fixed",
        fixed_data_range=255.0,
        ssim_options=SSIMOptions(window="gaussian", sigma=1.5, k1=0.01, k2=0.03, use_sample_covariance=False),
        ssim_per_slice=True,
        crop_to_even=True,
        formula="crop to even height/width; PSNR = 10 log10(255^2/MSE); SSIM Gaussian sigma=1.5, "
        "K1=0.01, K2=0.03, L=255, population covariance",
        source="Duke/Bioptigen SD-OCT peers (Fang et al., IEEE TMI 32(11), 2013)",
    ),
)

CONVENTION_NAMES: tuple[str, ...] = tuple(convention.name for convention in CONVENTIONS)


def get_convention(name: str) -> Convention:
    """The :class:`Convention` called ``name`` (see :data:`CONVENTION_NAMES`)."""
    for convention in CONVENTIONS:
        if convention.name == name:
            return convention
    raise InputError(None, f"unknown evaluation convention {name!r}; available: {', '.join(CONVENTION_NAMES)}")


def _crop_to_even(values: torch.Tensor) -> torch.Tensor:
    """Drop the last row/column of the last two axes where their length is odd."""
    height, width = values.shape[-2], values.shape[-1]
    return values[..., : height - height % 2, : width - width % 2]


def evaluate(
    pred: ArrayLike,
    ref: ArrayLike,
    convention: str | Convention = "default",
    mask: ArrayLike | None = None,
    spatial_ndim: int | None = None,
) -> dict[str, float]:
    """Score ``pred`` against ``ref`` under a convention; returns ``{metric: value}`` in report order.

    Args:
        pred: the image to score ``(*slices, *spatial)``, NumPy or torch.
        ref: the reference, of ``pred``'s shape.
        convention: a name from :data:`CONVENTION_NAMES` or a :class:`Convention`.
        mask: optional region (nonzero = inside), broadcastable to the image shape.
        spatial_ndim: spatial axes of the data (2 or 3) for conventions that choose 2-D/3-D SSIM
            by the data; ``None`` = ``min(ndim, 3)``.

    Example:
        >>> import numpy as np
        >>> reference = np.linspace(0, 1, 400).reshape(20, 20)
        >>> sorted(evaluate(reference * 0.9, reference))
        ['mae', 'nmse', 'psnr', 'ssim']
    """
    chosen = convention if isinstance(convention, Convention) else get_convention(convention)
    prediction, reference = prepare_pair(pred, ref)
    mask_tensor = prepare_mask(mask, reference.shape, reference.device)
    if chosen.crop_to_even:
        if reference.ndim < 2:
            shape = tuple(reference.shape)
            raise InputError(None, f"the {chosen.name!r} convention needs 2-D images, got shape {shape}")
        prediction, reference = _crop_to_even(prediction), _crop_to_even(reference)
        mask_tensor = None if mask_tensor is None else _crop_to_even(mask_tensor)
    data_range = chosen.data_range(reference)
    results: dict[str, float] = {}
    for metric in chosen.metrics:
        if metric == "psnr":
            results[metric] = psnr(prediction, reference, data_range, mask_tensor)
        elif metric == "nmse":
            results[metric] = nmse(prediction, reference, mask_tensor)
        elif metric == "mae":
            results[metric] = mae(prediction, reference, mask_tensor)
        else:
            ssim_ndim = chosen.ssim_spatial_ndim(tuple(reference.shape), spatial_ndim)
            pair, region = (prediction, reference), mask_tensor
            volume = not chosen.ssim_per_slice and (spatial_ndim if spatial_ndim is not None else min(reference.ndim, 3)) == 3
            axis = ssim_slice_axis(tuple(reference.shape), chosen.ssim_options.window_size) if volume and ssim_ndim == 2 else None
            if axis is not None:  # a volume too thin for 3-D SSIM: 2-D slices across its shortest side
                pair = (prediction.movedim(axis, -3), reference.movedim(axis, -3))
                region = None if mask_tensor is None else mask_tensor.movedim(axis, -3)
            values = structural_similarity_map(*pair, data_range, chosen.ssim_options, ssim_ndim)
            results[metric] = float(interior_mean(values, chosen.ssim_options, ssim_ndim, region))
    return results
