"""Evaluate harmonisers on the simulated scanner pair's held-out test subjects.

For the direction ``b2a`` (3 T-like → 1.5 T-like, the one that must remove the occipital
hyperintensity) and ``a2b``:

* **scanner classifier** (:mod:`medrestore.training.scanner_classifier`) trained on the
  validation subjects' slices of both scanners (subjects neither the harmonisers nor the test
  used); accuracy on test slices of the target scanner (true label) and harmonised source
  slices (label: source scanner). 100 % = the scanners are told apart; 50 % = chance.
* **paired fidelity**: PSNR/SSIM inside the brain mask of the harmonised slice to the target
  scanner's slice of the same anatomy — to its acquired (noisy) image and to its noise-free
  rendering (same simulator parameters, σ = 0); data range = the acquired target's maximum.
* **anatomy**: tissue-class Jaccard of the harmonised slice to its input and to the clean anatomy
  (:func:`~medrestore.metrics.harmonization.anatomy_jaccard`). ``jaccard_input`` compares output
  and input at the coarser of the two scanners' resolutions (the sharper one blurred to the other's
  point-spread function) and leaves out the hyperintensity region ``R``, which the harmoniser is
  meant to change; ``jaccard_input_whole`` is the same over the whole brain at the native
  resolutions (the ideal harmoniser — the target scanner's noise-free rendering — scores 0.930 and
  0.885 in b2a).
* **hyperintensity** (b2a): contrast ``C`` before and after against the noise-free target
  rendering, and its removal ``1 − |C_after| / |C_before|``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import torch

from medrestore.core.random import make_generator
from medrestore.data.harmonize import read_folder_slices, read_paired_folders
from medrestore.metrics.basic import psnr
from medrestore.metrics.harmonization import hyperintensity_contrast, hyperintensity_regions, anatomy_jaccard
from medrestore.metrics.ssim import ssim
from medrestore.models.harmonizers import Harmonizer
from medrestore.physics.degradations import ScannerAppearance
from medrestore.physics.scanner import brain_mask, scanner_profile
from medrestore.training.scanner_classifier import classifier_accuracy, train_scanner_classifier

SOURCE_OF = {"a2b": "a", "b2a": "b"}
TARGET_OF = {"a2b": "b", "b2a": "a"}


@dataclasses.dataclass(frozen=True)
class EvaluationSet:
    """Test slices ``(N, H, W)`` of both scanners, their clean anatomy and noise-free renderings."""

    names: tuple[str, ...]
    acquired: dict[str, torch.Tensor]
    noiseless: dict[str, torch.Tensor]
    clean: torch.Tensor
    region: torch.Tensor
    control: torch.Tensor
    mask: torch.Tensor


def load_evaluation_set(root: str | Path, split: str = "test") -> EvaluationSet:
    """Read ``root/paired/<split>/{a,b}`` and ``root/clean/<split>``; render each scanner without noise."""
    root = Path(root)
    names, slices_a, slices_b = read_paired_folders(root / "paired" / split / "a", root / "paired" / split / "b")
    clean_names, clean = read_folder_slices(root / "clean" / split)
    index = {name: i for i, name in enumerate(clean_names)}
    clean = clean[[index[name] for name in names]]
    noiseless = {
        scanner: ScannerAppearance(scanner=scanner, noise_sigma=0.0)(clean, make_generator(0)) for scanner in ("a", "b")
    }
    width = ScannerAppearance(scanner="b").hyperintensity_width
    region, control = hyperintensity_regions(clean, float(width))
    return EvaluationSet(names, {"a": slices_a, "b": slices_b}, noiseless, clean, region, control, brain_mask(clean))


def train_judge(root: str | Path, seed: int = 0, epochs: int = 30) -> torch.nn.Module:
    """The scanner classifier trained on ``root/paired/val`` slices (a → 0, b → 1)."""
    _, val_a, val_b = read_paired_folders(Path(root) / "paired" / "val" / "a", Path(root) / "paired" / "val" / "b")
    slices = torch.cat([val_a, val_b])
    labels = torch.cat([torch.zeros(len(val_a), dtype=torch.long), torch.ones(len(val_b), dtype=torch.long)])
    model, _ = train_scanner_classifier(slices, labels, epochs=epochs, seed=seed)
    return model


def judge_accuracy(judge: torch.nn.Module, target: torch.Tensor, source_like: torch.Tensor, direction: str) -> float:
    """Accuracy on target-scanner slices (their label) and source slices mapped to the target (source label)."""
    target_label = 0 if TARGET_OF[direction] == "a" else 1
    slices = torch.cat([target, source_like])
    labels = torch.cat([
        torch.full((len(target),), target_label, dtype=torch.long),
        torch.full((len(source_like),), 1 - target_label, dtype=torch.long),
    ])
    return classifier_accuracy(judge, slices, labels)


def _fidelity(output: torch.Tensor, reference: torch.Tensor, mask: torch.Tensor, data_range: float) -> tuple[float, float]:
    """Mean per-slice PSNR and mean SSIM (Gaussian window σ = 1.5) over the brain ``mask``."""
    psnr_value = sum(psnr(o, r, data_range, mask=m) for o, r, m in zip(output, reference, mask)) / len(output)
    return psnr_value, ssim(output.double(), reference.double(), data_range, mask=mask)


def common_resolution_jaccard(output: torch.Tensor, source: torch.Tensor, region: torch.Tensor, direction: str) -> float:
    """Tissue-class Jaccard of ``output`` to its ``source`` slices at the coarser scanner's resolution, outside ``region``.

    The sharper of the two is blurred by ``√(f_coarse² − f_own²)`` (FWHM, pixels; ``f`` the
    scanners' simulated point-spread functions), the output taken at the target scanner's.
    """
    source_fwhm = scanner_profile(SOURCE_OF[direction]).blur_fwhm
    target_fwhm = scanner_profile(TARGET_OF[direction]).blur_fwhm
    coarse = max(source_fwhm, target_fwhm)
    return anatomy_jaccard(
        output,
        source,
        exclude=region,
        output_fwhm=math.sqrt(coarse**2 - target_fwhm**2),
        reference_fwhm=math.sqrt(coarse**2 - source_fwhm**2),
    )


def evaluate_direction(
    harmonizer: Harmonizer | None, data: EvaluationSet, judge: torch.nn.Module, direction: str
) -> dict[str, float]:
    """All measures for one direction; ``harmonizer=None`` scores the unharmonised input (the baseline)."""
    source, target = data.acquired[SOURCE_OF[direction]], data.acquired[TARGET_OF[direction]]
    start = time.perf_counter()
    output = source if harmonizer is None else harmonizer.harmonize(source, direction)
    seconds = (time.perf_counter() - start) / len(source)
    data_range = float(target.max())
    psnr_acquired, ssim_acquired = _fidelity(output, target, data.mask, data_range)
    psnr_noiseless, ssim_noiseless = _fidelity(output, data.noiseless[TARGET_OF[direction]], data.mask, data_range)
    result = {
        "classifier_accuracy": judge_accuracy(judge, target, output, direction),
        "psnr": psnr_acquired,
        "ssim": ssim_acquired,
        "psnr_noiseless": psnr_noiseless,
        "ssim_noiseless": ssim_noiseless,
        "jaccard_input": common_resolution_jaccard(output, source, data.region, direction),
        "jaccard_input_whole": anatomy_jaccard(output, source),
        "jaccard_anatomy": anatomy_jaccard(output, data.clean),
        "seconds_per_slice": seconds,
    }
    if direction == "b2a":
        reference = data.noiseless["a"]
        before = hyperintensity_contrast(source, reference, data.region, data.control)
        after = hyperintensity_contrast(output, reference, data.region, data.control)
        result.update(
            hyperintensity_before=before,
            hyperintensity_after=after,
            hyperintensity_removal=1.0 - abs(after) / abs(before),
        )
    return result
