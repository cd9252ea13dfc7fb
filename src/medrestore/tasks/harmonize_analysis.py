"""Sparse analysis of what differs between two scanners' images of the same anatomy.

Given ``N`` aligned slice pairs ``(a_i, b_i)`` (same anatomy on scanners a and b):

1. the global contrast difference is taken out first by histogram matching ``b`` to ``a``
   (brain-masked, :class:`~medrestore.models.harmonizers.HistogramMatching`), so what remains
   are *spatial* differences;
2. **low-rank + sparse**: the matrix ``M = [a_1 … a_N, b̃_1 … b̃_N]`` (one column per slice)
   is split by robust PCA, ``M = L + S`` (:func:`~medrestore.solvers.sparse.robust_pca`): the
   anatomy shared by each pair is low rank, scanner-specific local differences are sparse; the
   difference map is the mean of ``S`` over the ``b`` columns minus that over the ``a`` columns;
3. **L1-regularised estimate**: ``d̂ = argmin_d ½‖mean_i(b̃_i − a_i) − d‖² + λ‖d‖₁`` (soft
   thresholding, :func:`~medrestore.solvers.sparse.l1_difference`) with ``λ`` three times the
   noise level of the mean difference, so noise is zeroed and real local differences survive.
   The noise level is the MAD estimate over the whole map (most of it background noise), or,
   when 5 % or more of the map is exactly zero (a masked background), ``σ_d = √(σ_a² + σ_b²) / √N``
   from each scanner's median per-slice noise (Donoho's wavelet estimate,
   :func:`~medrestore.physics.scanner.estimate_noise_sigma`).

:func:`analyze_scanner_folders` (``medrestore harmonize-analyze``) writes these maps as NIfTI and
PNG with a JSON summary: the rank of ``L`` and how the energy of the sparse and L1 maps is spread
over brain regions (:func:`analysis_regions`, :func:`region_energy`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any

import scipy.ndimage
import torch

import medrestore
from medrestore.core.errors import InputError
from medrestore.core.files import atomic_write_text, guard_output
from medrestore.core.image import Image
from medrestore.data.harmonize import read_folder_slices, read_slices
from medrestore.io import write_image
from medrestore.models.harmonizers import HistogramMatching, check_slices
from medrestore.physics.scanner import brain_mask, estimate_noise_sigma, robust_maximum
from medrestore.report.figures import save_comparison_png
from medrestore.solvers.sparse import RobustPCAInfo, l1_difference, robust_pca


@dataclasses.dataclass(frozen=True)
class DifferenceMaps:
    """``(H, W)`` maps of what scanner b adds over a, the mean histogram-matched b slice, and the records.

    ``weight`` is the robust-PCA ``λ`` used, ``l1_threshold`` the soft threshold of the L1 estimate.
    """

    sparse_difference: torch.Tensor
    l1_difference: torch.Tensor
    mean_difference: torch.Tensor
    mean_b_matched: torch.Tensor
    low_rank_rank: int
    info: RobustPCAInfo
    weight: float
    l1_threshold: float


def scanner_difference_maps(slices_a: torch.Tensor, slices_b: torch.Tensor, weight: float | None = None) -> DifferenceMaps:
    """Difference maps of paired ``(N, H, W)`` stacks (module docstring); ``weight`` = robust-PCA ``λ``."""
    slices_a, slices_b = check_slices(slices_a, "scanner a"), check_slices(slices_b, "scanner b")
    if slices_a.shape != slices_b.shape:
        raise InputError(None, f"paired stacks must have one shape, got {tuple(slices_a.shape)} and {tuple(slices_b.shape)}")
    matcher = HistogramMatching()
    matcher.fit(slices_a, slices_b)
    matched_b = matcher.harmonize(slices_b, "b2a")
    count, height, width = slices_a.shape
    matrix = torch.cat([slices_a, matched_b]).reshape(2 * count, height * width).T.double()
    weight = 1.0 / math.sqrt(max(matrix.shape)) if weight is None else weight
    low_rank, sparse, info = robust_pca(matrix, weight)
    sparse_maps = sparse.T.reshape(2 * count, height, width)
    sparse_difference = (sparse_maps[count:] - sparse_maps[:count]).mean(dim=0)
    mean_difference = (matched_b - slices_a).double().mean(dim=0)
    if float((mean_difference == 0).double().mean()) < 0.05:  # noise everywhere: its MAD over the map
        noise = float((mean_difference - mean_difference.median()).abs().median()) / 0.6745
    else:  # a masked (exactly zero) background: from the images' own noise
        noise = math.sqrt(_noise_variance(slices_a) + _noise_variance(matched_b)) / math.sqrt(count)
    return DifferenceMaps(
        sparse_difference=sparse_difference.float(),
        l1_difference=l1_difference(mean_difference, torch.zeros_like(mean_difference), 3.0 * noise).float(),
        mean_difference=mean_difference.float(),
        mean_b_matched=matched_b.mean(dim=0),
        low_rank_rank=info.rank,
        info=info,
        weight=float(weight),
        l1_threshold=3.0 * noise,
    )


def _noise_variance(slices: torch.Tensor) -> float:
    """Median over ``(N, H, W)`` slices of the noise variance, in the slices' unit (wavelet estimate × robust maximum)."""
    relative = estimate_noise_sigma(slices)
    scale = robust_maximum(slices, brain_mask(slices))[:, 0, 0]
    return float((relative * scale).median()) ** 2


def region_contrast(difference: torch.Tensor, region: torch.Tensor, control: torch.Tensor) -> float:
    """Mean of ``difference`` in ``region`` minus its mean in ``control`` (both ``(H, W)`` boolean)."""
    return float(difference[region].mean() - difference[control].mean())


# -- the harmonize-analyze command: maps, figures and a summary of two scanners' folders -----------

ANALYSIS_MAPS = ("mean_a", "mean_b_matched", "mean_difference", "sparse_difference", "l1_difference")


def read_scanner_slices(path: str | Path) -> tuple[tuple[str, ...], torch.Tensor]:
    """Slices of a scanner's folder (:func:`~medrestore.data.harmonize.read_folder_slices`) or of one file."""
    path = Path(path)
    if path.is_dir():
        return read_folder_slices(path)
    if not path.exists():
        raise InputError(path, "does not exist")
    stack = read_slices(path).float()
    return (tuple([path.name]) if len(stack) == 1 else tuple(f"{path.name}:{z:03d}" for z in range(len(stack)))), stack


def match_by_name(
    names_a: tuple[str, ...], slices_a: torch.Tensor, names_b: tuple[str, ...], slices_b: torch.Tensor
) -> tuple[tuple[str, ...], torch.Tensor, torch.Tensor] | None:
    """The slices whose names are in both stacks, sorted by name: ``(names, a, b)``; ``None`` when none are."""
    common = sorted(set(names_a) & set(names_b))
    if not common:
        return None
    index_a, index_b = {n: i for i, n in enumerate(names_a)}, {n: i for i, n in enumerate(names_b)}
    return tuple(common), slices_a[[index_a[n] for n in common]], slices_b[[index_b[n] for n in common]]


def pair_scanner_slices(path_a: str | Path, path_b: str | Path) -> tuple[tuple[str, ...], torch.Tensor, torch.Tensor, str]:
    """Aligned ``(names, a (N, H, W), b (N, H, W), rule)``: matched by name when the two share names, else by order.

    Raises:
        InputError: no shared names and different slice counts, or different slice shapes (naming ``path_b``).
    """
    names_a, slices_a = read_scanner_slices(path_a)
    names_b, slices_b = read_scanner_slices(path_b)
    matched = match_by_name(names_a, slices_a, names_b, slices_b)
    if matched is not None:
        (names, slices_a, slices_b), rule = matched, "name"
    elif len(names_a) == len(names_b):
        names, rule = tuple(f"{x}|{y}" for x, y in zip(names_a, names_b)), "order"
    else:
        raise InputError(path_b, f"shares no slice names with {path_a} and has {len(names_b)} slices, not {len(names_a)}: "
                                 "the analysis needs the same anatomy on both scanners (aligned slices)")
    if slices_a.shape[1:] != slices_b.shape[1:]:
        raise InputError(path_b, f"slices are {tuple(slices_b.shape[1:])}, those of {path_a} {tuple(slices_a.shape[1:])}: "
                                 "register both to one grid first")
    return names, slices_a, slices_b, rule


def analysis_regions(mean_a: torch.Tensor, band_fraction: float = 0.08) -> dict[str, torch.Tensor]:
    """Boolean ``(H, W)`` regions of the mean scanner-a slice (display orientation: rows anterior → posterior).

    ``brain`` (:func:`~medrestore.physics.scanner.brain_mask`), ``background``, ``cortical_band``
    (within ``band_fraction · max(H, W)`` pixels of the brain's edge), ``deep`` (the rest of the
    brain), and the brain's ``anterior``/``posterior`` and ``left``/``right`` halves split at its
    centroid (image left = column 0).
    """
    brain = brain_mask(mean_a)
    depth = torch.from_numpy(scipy.ndimage.distance_transform_edt(brain.numpy()))
    band = brain & (depth <= band_fraction * max(mean_a.shape))
    rows, cols = torch.nonzero(brain, as_tuple=True)
    centre_row = float(rows.float().mean()) if len(rows) else mean_a.shape[0] / 2
    centre_col = float(cols.float().mean()) if len(cols) else mean_a.shape[1] / 2
    row_index = torch.arange(mean_a.shape[0])[:, None].expand(mean_a.shape)
    col_index = torch.arange(mean_a.shape[1])[None, :].expand(mean_a.shape)
    return {
        "brain": brain,
        "background": ~brain,
        "cortical_band": band,
        "deep": brain & ~band,
        "anterior": brain & (row_index < centre_row),
        "posterior": brain & (row_index >= centre_row),
        "left": brain & (col_index < centre_col),
        "right": brain & (col_index >= centre_col),
    }


def region_energy(difference: torch.Tensor, regions: dict[str, torch.Tensor]) -> dict[str, dict[str, float]]:
    """Per region of ``(H, W)`` ``difference``: share of ``Σ d²``, share of pixels, their ratio, mean ``d`` and mean ``|d|``.

    ``energy_density = energy_fraction / pixel_fraction`` is 1 where the energy is spread evenly and
    above 1 where the region holds more than its share.
    """
    squared = difference.double() ** 2
    total = float(squared.sum()) or 1.0
    record = {}
    for name, region in regions.items():
        pixels = int(region.sum())
        energy = float(squared[region].sum()) / total
        pixel_fraction = pixels / region.numel()
        record[name] = {
            "energy_fraction": energy,
            "pixel_fraction": pixel_fraction,
            "energy_density": energy / pixel_fraction if pixels else 0.0,
            "mean": float(difference[region].double().mean()) if pixels else 0.0,
            "mean_abs": float(difference[region].double().abs().mean()) if pixels else 0.0,
        }
    return record


def analyze_scanner_folders(
    path_a: str | Path, path_b: str | Path, out_dir: str | Path, weight: float | None = None
) -> dict[str, Any]:
    """Write the difference maps of two scanners' aligned slices into ``out_dir``; return the summary.

    ``out_dir`` receives one NIfTI per map of :data:`ANALYSIS_MAPS` (``(H, W)``, display
    orientation, pixel units), ``means.png`` (the mean a and matched b slices), ``maps.png`` (the
    mean, sparse and L1 difference maps) and ``summary.json`` (rank of ``L``,
    robust-PCA record, L1 threshold and non-zero share, and :func:`region_energy` of the
    sparse and L1 maps). Inputs are only read; every file is written atomically.
    """
    out_dir = Path(out_dir)
    guard_output(out_dir, [path_a, path_b])
    start = time.perf_counter()
    names, slices_a, slices_b, rule = pair_scanner_slices(path_a, path_b)
    maps = scanner_difference_maps(slices_a, slices_b, weight)
    images = {
        "mean_a": slices_a.mean(dim=0),
        "mean_b_matched": maps.mean_b_matched,
        "mean_difference": maps.mean_difference,
        "sparse_difference": maps.sparse_difference,
        "l1_difference": maps.l1_difference,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, image in images.items():
        write_image(Image.from_array(image.float().numpy(), spacing=(1.0, 1.0), modality="mri"), out_dir / f"{name}.nii.gz")
    save_comparison_png([(name.replace("_", " "), images[name]) for name in ANALYSIS_MAPS[:2]], out_dir / "means.png")
    save_comparison_png([(name.replace("_", " "), images[name]) for name in ANALYSIS_MAPS[2:]], out_dir / "maps.png", reference_index=None)
    regions = analysis_regions(images["mean_a"])
    summary = {
        "scanner_a": str(path_a),
        "scanner_b": str(path_b),
        "slices": len(names),
        "paired_by": rule,
        "slice_shape": list(slices_a.shape[1:]),
        "low_rank_rank": maps.low_rank_rank,
        "robust_pca": {"weight": maps.weight, "iterations": maps.info.iterations, "residual": maps.info.residual},
        "l1_threshold": maps.l1_threshold,
        "l1_nonzero_fraction": float((maps.l1_difference != 0).double().mean()),
        "sparse_energy_by_region": region_energy(maps.sparse_difference, regions),
        "l1_energy_by_region": region_energy(maps.l1_difference, regions),
        "maps": [f"{name}.nii.gz" for name in ANALYSIS_MAPS],
        "figures": ["means.png", "maps.png"],
        "seconds": round(time.perf_counter() - start, 3),
        "medrestore_version": medrestore.__version__,
    }
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary
