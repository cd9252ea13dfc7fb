"""The MRI denoising evaluation protocols as runs that write a JSON record and a PNG figure.

Both judge a denoiser without a clean image of the real scan, on repetitions ``y_1…y_R`` of one anatomy: the
volumes of a 4-D series (an fMRI run, nibabel's ``example4d``) or, with ``simulate = R``, ``R`` Rician noise
draws of a clean 3-D volume (σ = ``relative_sigma`` × its maximum, as ``medrestore degrade --kind rician``).

* **leave-one-out** (:func:`leave_one_out_file`): each repetition ``y_r`` is denoised and scored against the mean
  of the others, ``ȳ_{−r}`` (:mod:`medrestore.metrics.repeated`: PSNR, SSIM, MSE inside the brain mask), beside the
  same scores of ``y_r`` itself. A series method (``mppca``, ``patch2self``) would see ``ȳ_{−r}``'s volumes while
  denoising ``y_r``, so it is scored on interleaved halves instead: the even-numbered repetitions are denoised
  together and each is scored against the mean of the odd-numbered ones (independent noise), beside the noisy
  even repetitions scored the same way. This score rewards removing *any* variation over time: replacing every
  volume by the even half's temporal mean would beat every denoiser, and an fMRI run's signal of interest is such a
  variation. Read it with a check that the temporal signal is kept (:mod:`medrestore.data.bold`).
* **tissue** (:func:`tissue_agreement_file`): grey matter, white matter and CSF segmented by a hidden Markov random
  field (:func:`~medrestore.metrics.tissue.hmrf_segmentation`) on the reference (the clean volume, or the mean
  of the other repetitions), on ``y_1`` and on its denoised copy; the Jaccard index per class of each against the
  reference's labels. Where the input is a simulation of a clean volume the clean volume is the reference. A series
  method denoises the even-numbered repetitions together and the reference is the mean of the odd ones.

The brain mask is :func:`brain_mask`: the repetitions' smoothed mean above ``2σ`` (σ estimated on ``y_1``), holes filled. The denoising is :func:`~medrestore.tasks.denoise_mri.denoise_image` or
:func:`~medrestore.tasks.denoise_mri.denoise_series` (with the σ estimated per repetition and capped at the repetitions' temporal bound, as
``medrestore denoise --sigma auto`` does for a series).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medrestore.core.device import select_device
from medrestore.core.errors import InputError
from medrestore.core.files import atomic_write_text, guard_output
from medrestore.metrics.repeated import leave_one_out_reference, repeated_acquisition_scores
from medrestore.metrics.tissue import class_jaccard, hmrf_segmentation
from medrestore.io import read_image
from medrestore.io.values import clip_negative
from medrestore.models.series_denoise import SERIES_METHODS
from medrestore.physics.noise import add_rician_noise
from medrestore.report.figures import save_comparison_png, save_line_plot_png
from medrestore.tasks.denoise_mri import (
    bounded_sigma, denoise_image, denoise_series, image_volumes, load_predictor, resolve_method, series_mask, series_sigma_bound,
)

PROTOCOLS = ("leave-one-out", "tissue")


@dataclasses.dataclass(frozen=True)
class ProtocolSettings:
    """How a protocol runs.

    Attributes:
        method: the MRI denoising method (``medrestore denoise --method``; ``auto`` resolved per volume shape).
        simulate: ``0``: the input is a 4-D series of repetitions; ``R >= 2``: the input is a clean 3-D volume and the
            repetitions are ``R`` Rician draws of it.
        relative_sigma: σ of the simulated noise as a fraction of the clean volume's maximum.
        seed: seed of the simulated noise.
        repetitions: leave-one-out: score at most this many repetitions, evenly spaced (``None``: all).
        device: ``auto``, ``cpu``, ``cuda``…
    """

    method: str = "nlm"
    simulate: int = 0
    relative_sigma: float = 0.05
    seed: int = 0
    repetitions: int | None = None
    device: str = "auto"


def figure_path(output: str | Path) -> Path:
    """The PNG figure written beside a protocol's JSON ``output``: ``OUT.png``."""
    return Path(output).with_suffix(".png")


def load_repetitions(path: Path, settings: ProtocolSettings) -> tuple[torch.Tensor, torch.Tensor | None, tuple[float, ...]]:
    """The repetitions ``(R, *spatial)`` float32 of ``path``, the clean volume when simulated (else ``None``) and the
    voxel size of the kept axes.

    Raises:
        InputError: a simulation of a series, or a series of fewer than 2 repetitions (naming ``path``).
    """
    image = clip_negative(read_image(path), path, "MRI denoising (Rician magnitude model)")
    volumes, _ = image_volumes(image, path)
    spacing = tuple(s for s, n in zip(image.spacing, image.spatial_shape, strict=True) if n > 1)
    if settings.simulate:
        if volumes.shape[0] != 1 or settings.simulate < 2:
            raise InputError(path, f"--simulate takes one clean 3-D volume and R >= 2; got {volumes.shape[0]} volume(s), R = {settings.simulate}")
        clean = volumes[0]
        sigma = settings.relative_sigma * float(clean.max())
        generator = torch.Generator().manual_seed(settings.seed)
        draws = [add_rician_noise(clean, sigma, generator).to(torch.float32) for _ in range(settings.simulate)]
        return torch.stack(draws), clean, spacing
    if volumes.shape[0] < 2:
        raise InputError(path, "holds one volume; the protocols need repetitions (a 4-D series) or --simulate R on a clean volume")
    return volumes, None, spacing


def brain_mask(repetitions: torch.Tensor) -> np.ndarray:
    """The brain mask of the module docstring, boolean ``(*spatial)``
    (:func:`~medrestore.tasks.denoise_mri.series_mask` of the repetitions)."""
    return series_mask(repetitions)


def _denoiser(
    method: str, repetitions: torch.Tensor, spacing: tuple[float, ...], device: str
) -> tuple[str, Callable[[torch.Tensor], torch.Tensor]]:
    """``method`` resolved for the volumes of ``repetitions`` ``(R, *spatial)`` and a function ``volume → denoised
    volume`` (per-volume methods), σ estimated per volume and capped at the repetitions' temporal bound, as
    ``medrestore denoise`` does for a series (:func:`~medrestore.tasks.denoise_mri.bounded_sigma`)."""
    resolved = resolve_method(method, tuple(repetitions.shape[1:]), spacing)
    target = select_device(device)
    predictor = load_predictor(resolved, target)
    bound = series_sigma_bound(repetitions)
    return resolved, lambda volume: denoise_image(volume, resolved, bounded_sigma(volume, None, bound), predictor, target)[0]


def _evenly_spaced(count: int, limit: int | None) -> list[int]:
    """``limit`` indices spread over ``range(count)`` (all when ``limit`` is ``None`` or larger)."""
    if limit is None or limit >= count:
        return list(range(count))
    return sorted({int(round(i)) for i in np.linspace(0, count - 1, max(limit, 1))})


def _mean_scores(rows: list[dict[str, Any]], key: str) -> dict[str, float | None]:
    """The mean of each score over ``rows``; ``None`` for a score that is ``None`` (e.g. SSIM of images smaller than its
    window)."""
    values = {metric: [row[key][metric] for row in rows] for metric in rows[0][key]}
    return {metric: None if None in column else float(np.mean(column)) for metric, column in values.items()}


def display_slice(volume: torch.Tensor | np.ndarray) -> torch.Tensor:
    """The middle slice of a 3-D ``volume`` across its shortest side (the acquired slices of a thick-slice series),
    float32 ``(a, b)``; a 2-D image as it is."""
    tensor = torch.as_tensor(np.asarray(volume) if not isinstance(volume, torch.Tensor) else volume).to(torch.float32)
    if tensor.ndim != 3:
        return tensor
    axis = int(np.argmin(tensor.shape))
    return tensor.select(axis, tensor.shape[axis] // 2)


def _write(output: Path, record: dict[str, Any]) -> None:
    atomic_write_text(output, json.dumps(record, indent=2) + "\n")


def leave_one_out_file(input_path: str | Path, output: str | Path, settings: ProtocolSettings = ProtocolSettings()) -> dict[str, Any]:
    """The leave-one-out protocol (module docstring) on ``input_path``; writes ``output`` (JSON) and
    :func:`figure_path` (PSNR per repetition, noisy and denoised; and one repetition, denoised and its reference).

    Returns:
        The record written: per repetition ``{"index", "noisy": scores, "denoised": scores, "seconds"}``, the means,
        the method, the mask's voxel count and the protocol (``leave-one-out`` or ``interleaved-halves``).
    """
    input_path, output = Path(input_path), Path(output)
    guard_output(output, [input_path], extra=[figure_path(output)])
    repetitions, clean, spacing = load_repetitions(input_path, settings)
    mask = brain_mask(repetitions)
    if settings.method in SERIES_METHODS:
        protocol, resolved, rows, example = "interleaved-halves", settings.method, *_halves_rows(repetitions, mask, settings.method, input_path)
    else:
        protocol = "leave-one-out"
        resolved, denoise = _denoiser(settings.method, repetitions, spacing, settings.device)
        rows, example = [], None
        for index in _evenly_spaced(repetitions.shape[0], settings.repetitions):
            started = time.perf_counter()
            denoised = denoise(repetitions[index])
            seconds = time.perf_counter() - started
            rows.append(_row(index, repetitions[index], denoised, list(repetitions), index, mask, seconds))
            example = example or (index, denoised)
    record = {
        "input": str(input_path), "protocol": protocol, "method": resolved, "repetitions": int(repetitions.shape[0]),
        "simulated": bool(settings.simulate), "relative_sigma": settings.relative_sigma if settings.simulate else None,
        "seed": settings.seed if settings.simulate else None, "mask_voxels": int(mask.sum()),
        "mean": {"noisy": _mean_scores(rows, "noisy"), "denoised": _mean_scores(rows, "denoised")}, "scores": rows,
    }  # fmt: skip
    _write(output, record)
    index, denoised = example
    reference = leave_one_out_reference(list(repetitions), index) if protocol == "leave-one-out" else repetitions[1::2].mean(dim=0)
    curves = {f"noisy ({'vs mean of the others' if protocol == 'leave-one-out' else 'even vs mean of odd'})": [r["noisy"]["psnr"] for r in rows],
              resolved: [r["denoised"]["psnr"] for r in rows]}  # fmt: skip
    save_line_plot_png(curves, [r["index"] for r in rows], figure_path(output), "repetition", "PSNR in the brain mask (dB)",
                       panels=[(name, display_slice(volume)) for name, volume in ((f"repetition {index}", repetitions[index]), (resolved, denoised),
                                                                                  ("reference", reference))])
    return record


def _row(index: int, noisy: torch.Tensor, denoised: torch.Tensor, repetitions: list[torch.Tensor], left_out: int, mask: np.ndarray,
         seconds: float) -> dict[str, Any]:
    """Scores of ``noisy`` and ``denoised`` against the mean of ``repetitions`` other than ``left_out``."""
    return {"index": index, "noisy": repeated_acquisition_scores(noisy, repetitions, left_out, mask),
            "denoised": repeated_acquisition_scores(denoised, repetitions, left_out, mask), "seconds": seconds}  # fmt: skip


def _halves_rows(repetitions: torch.Tensor, mask: np.ndarray, method: str, path: Path) -> tuple[list[dict[str, Any]], tuple[int, torch.Tensor]]:
    """The interleaved-halves scores of a series ``method``: the even repetitions denoised together, each scored against
    the mean of the odd ones."""
    even, odd = repetitions[0::2], repetitions[1::2]
    started = time.perf_counter()
    denoised = denoise_series(even, method, path)
    seconds = (time.perf_counter() - started) / even.shape[0]
    rows = []
    for position in range(even.shape[0]):  # the list: [this even repetition, *odd]; leaving out 0 scores against the odd mean
        rows.append(_row(2 * position, even[position], denoised[position], [even[position], *odd], 0, mask, seconds))
    return rows, (0, denoised[0])


def tissue_agreement_file(input_path: str | Path, output: str | Path, settings: ProtocolSettings = ProtocolSettings()) -> dict[str, Any]:
    """The tissue protocol (module docstring) on ``input_path``; writes ``output`` (JSON) and :func:`figure_path`
    (the reference, ``y_1`` and its denoised copy, with their labels).

    Returns:
        The record written: the Jaccard per class (``"1"`` CSF, ``"2"`` GM, ``"3"`` WM) and their mean of the noisy and
        the denoised repetition, the reference used and the method.
    """
    input_path, output = Path(input_path), Path(output)
    guard_output(output, [input_path], extra=[figure_path(output)])
    repetitions, clean, spacing = load_repetitions(input_path, settings)
    if repetitions.ndim != 4:
        raise InputError(input_path, "the tissue protocol segments 3-D volumes; this input holds 2-D images")
    mask = brain_mask(repetitions)
    noisy = repetitions[0]
    if settings.method in SERIES_METHODS:
        resolved, denoised = settings.method, denoise_series(repetitions[0::2], settings.method, input_path)[0]  # the even half
        reference, reference_name = (clean, "clean") if clean is not None else (repetitions[1::2].mean(dim=0), "mean of the odd repetitions")
    else:
        resolved, denoise = _denoiser(settings.method, repetitions, spacing, settings.device)
        denoised = denoise(noisy)
        reference, reference_name = (clean, "clean") if clean is not None else (leave_one_out_reference(list(repetitions), 0), "mean of the other repetitions")
    labels = {name: hmrf_segmentation(volume, mask) for name, volume in (("reference", reference), ("noisy", noisy), ("denoised", denoised))}
    record = {
        "input": str(input_path), "protocol": "tissue", "method": resolved, "segmentation": "dipy TissueClassifierHMRF",
        "classes": {"1": "CSF", "2": "grey matter", "3": "white matter"}, "reference": reference_name,
        "simulated": bool(settings.simulate), "relative_sigma": settings.relative_sigma if settings.simulate else None,
        "mask_voxels": int(mask.sum()),
        "jaccard": {"noisy": class_jaccard(labels["noisy"], labels["reference"]), "denoised": class_jaccard(labels["denoised"], labels["reference"])},
    }  # fmt: skip
    _write(output, record)
    panels = [(name, display_slice(volume)) for name, volume in (("reference", reference), ("repetition 0", noisy), (resolved, denoised))]
    panels += [(f"{name} labels", display_slice(torch.from_numpy(labels[name]))) for name in ("reference", "noisy", "denoised")]
    save_comparison_png(panels, figure_path(output), reference_index=None)
    return record
