"""Evaluate harmonisers: on any two scanners' folders (``medrestore harmonize-eval``) and on the simulated pair.

:func:`evaluate_harmonizers` (the command) trains the scanner classifier on one pair of folders,
harmonises the held-out folders with each model and writes ``report.html`` + ``metrics.json``:
classifier accuracy before (``identity``) and after, tissue Jaccard to the input, PSNR/SSIM where
slices pair by name, and :func:`hyperintensity_survival` — the seed's synthetic local hyperintensity
test made model-agnostic (a posterior bump added to the input, measured after harmonisation).

The benchmark functions below use what only the simulated pair has (clean anatomy, noise-free
renderings).

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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

import medrestore
from medrestore.core.files import guard_output
from medrestore.core.progress import progress
from medrestore.core.random import make_generator
from medrestore.data.harmonize import read_folder_slices, read_paired_folders
from medrestore.metrics.basic import psnr
from medrestore.metrics.harmonization import hyperintensity_contrast, hyperintensity_regions, anatomy_jaccard
from medrestore.metrics.ssim import ssim
from medrestore.models.harmonizers import Harmonizer, check_direction
from medrestore.physics.degradations import ScannerAppearance
from medrestore.physics.scanner import brain_mask, hyperintensity_map, scanner_profile
from medrestore.report.figures import save_comparison_png
from medrestore.report.html import Figure, Report, ReportSection, metrics_record, write_report
from medrestore.tasks.harmonize import harmonize_in_units, resolve_harmonizer
from medrestore.tasks.harmonize_analysis import match_by_name, read_scanner_slices
from medrestore.training.harmonize import build_harmonizer
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


# -- the harmonize-eval command: any scanner folders, any harmonisers, one JSON and an HTML page -------

IDENTITY = "identity"
FITTED_HERE = ("histogram-matching",)


@dataclasses.dataclass(frozen=True)
class EvaluationPlan:
    """What :func:`evaluate_harmonizers` measures.

    Attributes:
        train_a, train_b: slices of each scanner the judge (scanner classifier) is trained on —
            subjects that neither the harmonisers nor the test folders hold.
        test_a, test_b: held-out slices of each scanner; slices with the same name in both are
            pairs (same anatomy), scored by PSNR/SSIM.
        models: harmonisers (zoo names, harmoniser files, run folders; ``histogram-matching`` is
            fitted here on the training folders); the unharmonised input (``identity``) is always scored.
        directions: ``a2b`` and/or ``b2a``.
        grid: harmonise on this square grid (:func:`~medrestore.tasks.harmonize.harmonize_on_grid`).
        amplitude, width_fraction: the added hyperintensity ``a`` and ``w`` (as the simulator's scanner b).
        seed, epochs: of the judge's training.
    """

    train_a: str
    train_b: str
    test_a: str
    test_b: str
    models: tuple[str, ...] = ()
    directions: tuple[str, ...] = ("b2a", "a2b")
    grid: int | None = None
    amplitude: float = 0.35
    width_fraction: float = 0.08
    seed: int = 0
    epochs: int = 30


def hyperintensity_survival(
    harmonize: Callable[[torch.Tensor], torch.Tensor], source: torch.Tensor, amplitude: float, width_fraction: float
) -> dict[str, float]:
    """How much of a local hyperintensity added to the source slices is left after harmonisation.

    ``x⁺ = x · (1 + h)`` with ``h`` the simulator's posterior bump
    (:func:`~medrestore.physics.scanner.hyperintensity_map`, amplitude ``a``, width ``w``) on each
    source slice ``x``; ``C_added = C(x⁺; x)`` and ``C_after = C(H(x⁺); H(x))``
    (:func:`~medrestore.metrics.harmonization.hyperintensity_contrast`, region and cortical
    control band of ``x``'s brain mask). ``survival = C_after / C_added``: 0 when the harmoniser
    erases the added region (wanted when the bump is a scanner's trait it was trained to remove,
    as in the seed's occipital test), 1 when it keeps it (wanted for anatomy or pathology).
    """
    region, control = hyperintensity_regions(source, width_fraction)
    bumped = source * (1.0 + hyperintensity_map(brain_mask(source), amplitude, width_fraction))
    added = hyperintensity_contrast(bumped, source, region, control)
    after = hyperintensity_contrast(harmonize(bumped), harmonize(source), region, control)
    return {"hyperintensity_added": added, "hyperintensity_after": after, "hyperintensity_survival": after / added}


def _harmonizers(plan: EvaluationPlan, train_a: torch.Tensor, train_b: torch.Tensor, direction: str) -> dict[str, Harmonizer | None]:
    methods: dict[str, Harmonizer | None] = {IDENTITY: None}
    for model in plan.models:
        if model in FITTED_HERE:
            harmonizer = build_harmonizer(model)
            harmonizer.fit(train_a, train_b, seed=plan.seed)
            methods[model] = harmonizer
        else:
            methods[model] = resolve_harmonizer(model, direction)[0]
    return methods


def evaluate_harmonizers(plan: EvaluationPlan, out_dir: str | Path) -> dict[str, Any]:
    """Score every harmoniser of ``plan`` on the test folders; write ``report.html``, ``metrics.json`` and PNGs.

    Per method and direction (source → target scanner): the judge's accuracy on target test slices
    plus harmonised source slices (100 % = told apart, 50 % = chance; the ``identity`` row is the
    accuracy before harmonisation), tissue-class Jaccard of the output to its input
    (:func:`~medrestore.metrics.harmonization.anatomy_jaccard`), PSNR/SSIM inside the target's
    brain mask to the paired target slices (when names pair; data range = the target's maximum),
    :func:`hyperintensity_survival` and seconds per slice. Returns the ``metrics.json`` record.
    """
    out_dir = Path(out_dir)
    guard_output(out_dir, [plan.train_a, plan.train_b, plan.test_a, plan.test_b, *plan.models])
    for direction in plan.directions:
        check_direction(direction)
    start = time.perf_counter()
    train_a, train_b = read_scanner_slices(plan.train_a)[1], read_scanner_slices(plan.train_b)[1]
    test = {"a": read_scanner_slices(plan.test_a), "b": read_scanner_slices(plan.test_b)}
    labels = torch.cat([torch.zeros(len(train_a), dtype=torch.long), torch.ones(len(train_b), dtype=torch.long)])
    judge, _ = train_scanner_classifier(torch.cat([train_a, train_b]), labels, epochs=plan.epochs, seed=plan.seed)
    judge_seconds = time.perf_counter() - start
    judge_training_accuracy = classifier_accuracy(judge, torch.cat([train_a, train_b]), labels)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[list[Any]] = []
    figures: list[Figure] = []
    with progress("harmonisers", len(plan.directions) * (len(plan.models) + 1)) as step:
        for direction in plan.directions:
            (source_names, source), (target_names, target) = test[SOURCE_OF[direction]], test[TARGET_OF[direction]]
            matched = match_by_name(source_names, source, target_names, target)
            pairs = None if matched is None else matched[1:]
            for name, harmonizer in _harmonizers(plan, train_a, train_b, direction).items():
                def harmonize(slices: torch.Tensor, method: Harmonizer | None = harmonizer) -> torch.Tensor:
                    return slices if method is None else harmonize_in_units(slices, method, direction, plan.grid)

                tick = time.perf_counter()
                output = harmonize(source)
                seconds = (time.perf_counter() - tick) / len(source)
                fidelity: tuple[float | None, float | None] = (None, None)
                if pairs is not None:
                    paired_output = harmonize(pairs[0])
                    fidelity = _fidelity(paired_output, pairs[1], brain_mask(pairs[1]), float(pairs[1].max()))
                survival = hyperintensity_survival(harmonize, source, plan.amplitude, plan.width_fraction)
                rows.append([
                    name, direction, judge_accuracy(judge, target, output, direction), anatomy_jaccard(output, source),
                    fidelity[0], fidelity[1], survival["hyperintensity_added"], survival["hyperintensity_after"],
                    survival["hyperintensity_survival"], seconds,
                ])
                figure = f"{direction}-{Path(name).name}.png"
                middle = len(source) // 2
                panels = [(f"scanner {SOURCE_OF[direction]} (input)", source[middle]), (f"{name} {direction}", output[middle])]
                save_comparison_png(panels + [(f"scanner {TARGET_OF[direction]}", target[min(middle, len(target) - 1)])], out_dir / figure)
                figures.append(Figure(figure, f"{name}, {direction}: middle test slice, its harmonised version and a target-scanner slice"))
                step()
    section = ReportSection(
        key="harmonize_eval",
        title="Scanner harmonisation: classifier, anatomy, paired fidelity, local hyperintensity",
        description=_EVAL_DESCRIPTION.format(
            train=len(train_a) + len(train_b), test_a=len(test["a"][0]), test_b=len(test["b"][0]), amplitude=plan.amplitude
        ),
        figures=figures,
        columns=EVAL_COLUMNS,
        rows=rows,
        seconds=time.perf_counter() - start,
    )
    provenance = [
        ("medrestore", medrestore.__version__),
        ("train folders", f"{plan.train_a} | {plan.train_b}"),
        ("test folders", f"{plan.test_a} | {plan.test_b}"),
        ("models", ", ".join(plan.models) or "none"),
        ("grid", str(plan.grid)),
        ("judge", _judge_note(plan, judge_seconds, judge_training_accuracy)),
    ]
    report = Report("medrestore harmonize-eval", [section], provenance)
    write_report(report, out_dir)
    return metrics_record(report)


def _judge_note(plan: EvaluationPlan, seconds: float, training_accuracy: float) -> str:
    """The classifier's provenance line; it warns when the classifier did not learn its own training slices."""
    note = f"{plan.epochs} epochs, seed {plan.seed}, {seconds:.1f} s, accuracy on its own training slices {training_accuracy:.0%}"
    return note if training_accuracy >= 0.9 else f"{note} — under-trained: raise --epochs"


EVAL_COLUMNS = (
    "method", "direction", "classifier_accuracy", "jaccard_input", "psnr", "ssim",
    "hyperintensity_added", "hyperintensity_after", "hyperintensity_survival", "seconds_per_slice",
)  # fmt: skip

_EVAL_DESCRIPTION = (
    "classifier_accuracy: a small CNN trained on {train} slices of both scanners' training folders, scored on the "
    "target scanner's test slices (their label) and the harmonised source slices (the source label): 100 % = the "
    "scanners are told apart, 50 % = chance; the identity row is the accuracy before harmonisation.\n\n"
    "jaccard_input: mean Jaccard of three tissue classes (multi-Otsu after dividing out smooth fields, output classified "
    "at the input's quantile levels) between output and input. psnr/ssim: inside the brain, to the target scanner's "
    "slice of the same name (empty when no names pair). Test slices: {test_a} (a), {test_b} (b).\n\n"
    "hyperintensity: a posterior bump of relative amplitude {amplitude} is added to each source slice; "
    "survival = its contrast after harmonisation (against the harmonised slice without it) over its added contrast: "
    "0 = erased, 1 = kept."
)
