"""Demo section of OCT speckle reduction: the shipped OCT models on the real Duke/Bioptigen
validation eyes (subjects 9–12, never trained on), scored as ``benchmarks/oct_duke.py`` does.

The B-scans are not shipped inside the package: the section reads them from the project's data
folder (``$MEDRESTORE_DATA`` or ``../shared/data`` beside the source checkout) and reports itself
as skipped when they are not there.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from medrestore.data.oct import DUKE_VALIDATION_SUBJECTS, FrameGroup, align_frames, read_duke_subjects
from medrestore.io import cast_to_dtype
from medrestore.metrics import evaluate
from medrestore.models import create_method
from medrestore.report import Figure, ReportSection, save_comparison_png
from medrestore.tasks.demo_common import DATA_ENVIRONMENT, data_root, signed_db
from medrestore.tasks.denoise import DEFAULT_MODELS, DEFAULT_MULTIFRAME_MODELS, input_frames, load_denoiser

if TYPE_CHECKING:
    from collections.abc import Callable

    from medrestore.tasks.demo_common import DemoContext

DUKE_FOLDER = "oct-duke-bioptigen"
MEDIAN_SIZE = 11  # chosen on the training subjects 1–8 (benchmarks/oct_duke.py tune-classical)


def _eight_bit(image: torch.Tensor) -> np.ndarray:
    """Rounded and clipped to uint8, as ``medrestore denoise`` writes an 8-bit B-scan."""
    return cast_to_dtype(image.detach().cpu().numpy().astype(np.float64), "uint8")


def _restorers() -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """Label → ``frames (F, H, W)`` on 0–255 → restored ``(H, W)``."""
    single, _ = load_denoiser(None, "oct", multi_frame=False, device="cpu")
    multi, _ = load_denoiser(None, "oct", multi_frame=True, device="cpu")
    median = create_method("median", {"size": MEDIAN_SIZE})
    frames_taken = input_frames(multi)
    return {
        "noisy B-scan": lambda frames: frames[0],
        f"median {MEDIAN_SIZE}×{MEDIAN_SIZE}": lambda frames: median(frames[None, :1].to(torch.float64))[0, 0],
        f"{DEFAULT_MODELS['oct']} (default)": lambda frames: single.predict(frames[:1]).reshape(frames.shape[1:]),
        f"{DEFAULT_MULTIFRAME_MODELS['oct']} ({frames_taken} frames)": lambda frames: multi.predict(
            align_frames(frames[:frames_taken])
        ).reshape(frames.shape[1:]),
    }


def _skipped(folder: Path) -> ReportSection:
    return ReportSection(
        key="oct",
        title="OCT speckle reduction on real B-scans (skipped)",
        description=f"The Duke/Bioptigen B-scans were not found at {folder}; set {DATA_ENVIRONMENT} to the data folder.",
    )


def oct_section(context: DemoContext) -> ReportSection:
    """Restore ``test.tif`` of each validation subject with every method and score it against ``average.tif``."""
    folder = data_root() / DUKE_FOLDER
    if not folder.is_dir():
        return _skipped(folder)
    subjects = DUKE_VALIDATION_SUBJECTS[:1] if context.quick else DUKE_VALIDATION_SUBJECTS
    groups: list[FrameGroup] = read_duke_subjects(folder, subjects)
    rows: list[list[object]] = []
    panels: list[tuple[str, torch.Tensor]] = []
    with torch.inference_mode():
        for label, restore in _restorers().items():
            for index, group in enumerate(groups):
                started = time.perf_counter()
                restored = restore(group.frames)
                seconds = time.perf_counter() - started
                assert group.reference is not None
                scores = evaluate(_eight_bit(restored), group.reference.numpy(), convention="oct")
                rows.append([Path(group.name).name, label, scores["psnr"], scores["ssim"], seconds])
                if index == 0:
                    panels.append((f"{label}\n{scores['psnr']:.2f} dB / {scores['ssim']:.3f}", restored))
    panels.append(("multi-frame average (reference)", groups[0].reference))
    figure = "oct.png"
    save_comparison_png(panels, context.out_dir / figure, reference_index=len(panels) - 1)
    return ReportSection(
        key="oct",
        title="OCT speckle reduction on real B-scans",
        description=(
            "Real spectral-domain OCT B-scans of the Duke/Bioptigen set (Fang et al., IEEE TMI 2013): the single noisy "
            "B-scan test.tif of each validation eye (subjects 9–12, never used in training) is restored with "
            "`medrestore denoise --modality oct` (shipped default single-frame model) and with the shipped multi-frame "
            "model fed the four neighbouring frames 1.tif…4.tif; each output is rounded to 8 bits and scored against "
            "the registered multi-frame average in the `oct` convention (even crop; PSNR and Gaussian SSIM on 0–255). "
            "Published peers on these four eyes reach 26.60 dB / 0.673 (see benchmarks/README.md)."
        ),
        figures=(Figure(figure, f"Subject {subjects[0]}: every method and the averaged reference (shared grey window)."),),
        columns=("subject", "method", "PSNR (dB)", "SSIM", "seconds"),
        rows=rows,
        verdict=_verdict(rows),
    )


def _verdict(rows: list[list[object]]) -> str:
    """The default model against the median filter (the best classical filter here), per subject and on average."""
    default, baseline = f"{DEFAULT_MODELS['oct']} (default)", f"median {MEDIAN_SIZE}×{MEDIAN_SIZE}"
    baseline_name = f"{MEDIAN_SIZE}×{MEDIAN_SIZE} median filter"
    psnr_of = {(str(row[0]), str(row[1])): float(row[2]) for row in rows}  # type: ignore[arg-type]
    subjects = sorted({subject for subject, _ in psnr_of})
    gains = [psnr_of[(subject, default)] - psnr_of[(subject, baseline)] for subject in subjects]
    mean = sum(gains) / len(gains)
    return (f"the default ({DEFAULT_MODELS['oct']}) {signed_db(mean)} dB PSNR against the {baseline_name} on average, "
            f"above it on {sum(gain > 0 for gain in gains)} of {len(gains)} subjects")
