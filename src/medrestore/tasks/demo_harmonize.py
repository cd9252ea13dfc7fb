"""Demo section of scanner harmonisation: the shipped CycleGAN on a held-out simulated subject.

Colin27 (read from the project's data folder, see :func:`medrestore.tasks.demo_oct.data_root`;
the section reports itself skipped without it) is deformed into the first test subject of the
default simulation plan — a subject no model was trained on — and imaged by the simulated
3 T-like scanner ``b`` (with its occipital hyperintensity). The shipped ``cyclegan-sim`` model
translates it to the look of the 1.5 T-like scanner ``a``; it is scored against the noise-free
rendering of the same slices on scanner ``a``.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING

import numpy as np
import torch

from medrestore.core.random import make_generator
from medrestore.data.harmonize import SimulationPlan, load_colin27, split_subjects, subject_slices
from medrestore.metrics import evaluate
from medrestore.metrics.harmonization import hyperintensity_contrast, hyperintensity_regions
from medrestore.physics.scanner import brain_mask, scanner_profile, simulate_scanner
from medrestore.report import Figure, ReportSection, save_comparison_png
from medrestore.tasks.demo_common import DATA_ENVIRONMENT, data_root, signed_db
from medrestore.tasks.harmonize import resolve_harmonizer

if TYPE_CHECKING:
    from medrestore.tasks.demo_common import DemoContext

MODEL = "cyclegan-sim"


def _scores(image: torch.Tensor, reference: torch.Tensor, mask: torch.Tensor) -> tuple[float, float]:
    """Mean PSNR/SSIM over slices inside the brain (range: the reference's maximum)."""
    values = [
        evaluate(image[index].double().numpy(), reference[index].double().numpy(), convention="default", mask=mask[index].numpy())
        for index in range(image.shape[0])
    ]
    return float(np.mean([v["psnr"] for v in values])), float(np.mean([v["ssim"] for v in values]))


def harmonization_section(context: DemoContext) -> ReportSection:
    """Scanner b → a with the shipped CycleGAN; fidelity to scanner a and the hyperintensity before/after."""
    path = data_root() / "brain-mri-ants" / "ch2.nii.gz"
    if not path.is_file():
        return ReportSection(
            key="harmonization",
            title="Scanner harmonisation 3 T-like → 1.5 T-like (skipped)",
            description=f"Colin27 was not found at {path}; set {DATA_ENVIRONMENT} to the data folder.",
        )
    plan = SimulationPlan()
    names = [f"subj{k:03d}" for k in range(plan.subjects)]
    subject = sorted(split_subjects(names, plan.fractions, plan.seed)["test"])[0]
    clean = subject_slices(load_colin27(path), plan, int(subject[4:]))
    clean = clean[:: 2] if context.quick else clean
    profile_a, profile_b = scanner_profile("a"), scanner_profile("b")
    target = simulate_scanner(clean, dataclasses.replace(profile_a, noise_sigma=0.0), make_generator(0))
    source = simulate_scanner(clean, profile_b, make_generator(context.seed))
    harmonizer, _ = resolve_harmonizer(MODEL, "b2a")
    started = time.perf_counter()
    with torch.inference_mode():
        output = harmonizer.harmonize(source, "b2a")
    seconds = (time.perf_counter() - started) / clean.shape[0]
    mask = brain_mask(clean)
    region, control = hyperintensity_regions(clean, profile_b.hyperintensity_width)
    rows: list[list[object]] = []
    for label, image, spent in (("scanner b as acquired", source, None), (f"{MODEL} b → a", output, seconds)):
        psnr, ssim = _scores(image, target, mask)
        rows.append([label, psnr, ssim, hyperintensity_contrast(image, target, region, control), spent])
    middle = clean.shape[0] // 2
    figure = "harmonization.png"
    save_comparison_png(
        [("scanner b (3 T-like)", source[middle]), (f"{MODEL} b → a", output[middle]), ("scanner a, noise-free (target)", target[middle])],
        context.out_dir / figure,
        reference_index=2,
    )
    return ReportSection(
        key="harmonization",
        title="Scanner harmonisation: 3 T-like → 1.5 T-like with the shipped CycleGAN",
        description=(
            f"Colin27 deformed into held-out subject {subject} of the default simulation "
            f"(`medrestore harmonize-data simulate`; {clean.shape[0]} axial slices, 128 × 128) is imaged by the simulated "
            "scanner b (`degrade --kind scanner --scanner b`: steeper T1 contrast, bias field, correlated noise and an "
            "occipital hyperintensity) and translated by `medrestore harmonize --model cyclegan-sim --direction b2a`. "
            "PSNR/SSIM inside the brain against the noise-free scanner-a rendering of the same slices; hyperintensity: "
            "relative excess of the occipital region over a cortical control band, against that rendering (0 = removed)."
        ),
        figures=(Figure(figure, "Middle slice: scanner b, harmonised, and the scanner-a target (window of the target)."),),
        columns=("image", "PSNR (dB)", "SSIM", "hyperintensity contrast", "seconds / slice"),
        rows=rows,
        verdict=(f"{MODEL} {signed_db(rows[1][1] - rows[0][1])} dB PSNR against the unharmonised scanner-b image, "  # type: ignore[operator]
                 f"SSIM {rows[0][2]:.3f} → {rows[1][2]:.3f}, hyperintensity contrast {rows[0][3]:.2f} → {rows[1][3]:.2f}"),
    )
