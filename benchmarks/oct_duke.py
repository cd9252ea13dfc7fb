"""OCT speckle reduction on the Duke/Bioptigen SD-OCT set: the validation subjects 9–12.

Data: Fang et al., "Fast acquisition and reconstruction of optical coherence tomography images
via sparse representation", IEEE TMI 32(11), 2013, in ../shared/data/oct-duke-bioptigen.
Each method restores ``N/test.tif`` (multi-frame models also get ``N/1.tif`` … ``N/4.tif``); the
output is rounded to 8 bits, as ``medrestore denoise`` writes it, and scored against
``N/average.tif`` in the ``oct`` convention (even crop; PSNR and Gaussian SSIM on 0–255), then
averaged over the subjects. Time is the wall time per B-scan with ``--threads`` torch threads
(models: after one warm-up pass), the fastest of ``--repeats`` runs.

Classical parameters are chosen on the training subjects 1–8 only (``tune-classical``), never
on the validation subjects.

Commands::

    python benchmarks/oct_duke.py                          # the table of benchmarks/README.md
    python benchmarks/oct_duke.py --methods median,resunet-oct-duke --per-subject
    python benchmarks/oct_duke.py --methods results/oct-resunet/last.pt
    python benchmarks/oct_duke.py tune-classical           # grid search on subjects 1–8
    python benchmarks/oct_duke.py publish --checkpoint results/oct-resunet/last.pt \\
        --name resunet-oct-duke --config configs/oct-resunet.yaml --description "..."
    python benchmarks/oct_duke.py publish --name resunet-ensemble-oct-duke \\
        --checkpoint results/oct-resunet-tone/last.pt results/oct-resunet-tone-mse/last.pt \\
        --config configs/oct-resunet-tone.yaml configs/oct-resunet-tone-mse.yaml --description "..."
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from medrestore.data.oct import DUKE_TRAIN_SUBJECTS, DUKE_VALIDATION_SUBJECTS, FrameGroup, align_frames, read_duke_subjects
from medrestore.io import cast_to_dtype
from medrestore.metrics import evaluate
from medrestore.models import create_method
from medrestore.tasks.denoise import input_frames, load_denoiser
from medrestore.tasks.models import publish_checkpoint
from medrestore.zoo import PACKAGED_ZOO

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "oct-duke-bioptigen"
DEFAULT_METHODS = (
    "noisy", "median", "nlm", "bm3d", "srcnn-oct-duke", "cae-oct-duke", "resunet-oct-duke", "resunet-ensemble-oct-duke",
    "multiframe-oct-duke", "multiframe-tone-oct-duke",
)  # fmt: skip
PEERS = (
    ("mixed multiscale BM4D (2023)", "26.35", "0.673"),
    ("MIFCN (a CNN)", "26.60", "0.673"),
)

# Chosen by `tune-classical` on the training subjects 1–8 (best mean PSNR; see benchmarks/history.md).
MEDIAN_SIZE = 11
NLM_OPTIONS = {"patch_size": 5, "patch_distance": 6, "h_factor": 1.2}
BM3D_SIGMA = 85.0

Restorer = Callable[[torch.Tensor], torch.Tensor]
"""``frames (F, H, W)`` on 0–255 → restored ``(H, W)`` on 0–255."""


@dataclasses.dataclass(frozen=True)
class Score:
    """Mean and per-subject results of one method."""

    method: str
    psnr: float
    ssim: float
    seconds: float
    subjects: dict[str, tuple[float, float]]


def to_eight_bit(image: torch.Tensor) -> np.ndarray:
    """Round and clip to uint8, as the CLI writes 8-bit outputs."""
    return cast_to_dtype(image.detach().cpu().numpy().astype(np.float64), "uint8")


def score_method(name: str, restore: Restorer, groups: Sequence[FrameGroup], warm_up: bool, repeats: int = 1) -> Score:
    """Restore every group's stacked frames, score against its average, time each B-scan.

    The time of a B-scan is the fastest of ``repeats`` runs (robust to other processes on a
    shared machine); the reported time is the mean over the groups.
    """
    if warm_up:
        restore(groups[0].frames)
    per_subject: dict[str, tuple[float, float]] = {}
    seconds = []
    for group in groups:
        runs = []
        for _ in range(max(repeats, 1)):
            started = time.perf_counter()
            restored = restore(group.frames)
            runs.append(time.perf_counter() - started)
        seconds.append(min(runs))
        assert group.reference is not None
        metrics = evaluate(to_eight_bit(restored), group.reference.numpy(), convention="oct")
        per_subject[Path(group.name).name] = (metrics["psnr"], metrics["ssim"])
    values = np.array(list(per_subject.values()))
    return Score(name, float(values[:, 0].mean()), float(values[:, 1].mean()), float(np.mean(seconds)), per_subject)


# -- methods ----------------------------------------------------------------------------------
def classical(name: str, options: dict[str, object]) -> Restorer:
    method = create_method(name, options)
    return lambda frames: method(frames[None, :1].to(torch.float64))[0, 0]


def bm3d_restorer(sigma: float) -> Restorer:
    """BM3D (Dabov et al., IEEE TIP 16(8), 2007) with the ``bm3d`` package; ``sigma`` on 0–255."""
    try:
        import bm3d
    except ImportError:
        sys.exit("BM3D needs the bm3d package: pip install bm3d==4.0.3")
    return lambda frames: torch.from_numpy(np.asarray(bm3d.bm3d(frames[0].numpy() / 255.0, sigma_psd=sigma / 255.0)) * 255.0)


def model_restorer(name: str) -> Restorer:
    """A zoo model, a checkpoint or a model ensemble (``A+B``), through the same predictor as ``medrestore denoise``."""
    predictor, _ = load_denoiser(name, "oct", multi_frame=name.startswith("multiframe"), device="cpu")
    channels = input_frames(predictor)
    if channels == 1:
        return lambda frames: predictor.predict(frames[:1]).reshape(frames.shape[1:])
    return lambda frames: predictor.predict(align_frames(frames[:channels])).reshape(frames.shape[1:])


def restorer(name: str) -> tuple[Restorer, bool]:
    """The restorer called ``name`` and whether it needs a warm-up pass (networks)."""
    if name == "noisy":
        return (lambda frames: frames[0]), False
    if name == "median":
        return classical("median", {"size": MEDIAN_SIZE}), False
    if name == "nlm":
        return classical("nlm", dict(NLM_OPTIONS)), False
    if name == "bm3d":
        return bm3d_restorer(BM3D_SIGMA), False
    return model_restorer(name), True


# -- output -----------------------------------------------------------------------------------
def markdown_table(scores: Sequence[Score], per_subject: bool) -> str:
    header = "| method | PSNR (dB) | SSIM | s / B-scan |"
    lines = [header, "|---|---|---|---|"]
    for score in scores:
        lines.append(f"| {score.method} | {score.psnr:.2f} | {score.ssim:.3f} | {score.seconds:.2f} |")
    lines.extend(f"| {name} (published, re-scored) | {psnr} | {ssim} | — |" for name, psnr, ssim in PEERS)
    if per_subject and scores:
        subjects = list(scores[0].subjects)
        lines += ["", "| method | " + " | ".join(f"subject {s}" for s in subjects) + " |", "|---|" + "---|" * len(subjects)]
        for score in scores:
            cells = " | ".join(f"{p:.2f} / {s:.3f}" for p, s in score.subjects.values())
            lines.append(f"| {score.method} | {cells} |")
    return "\n".join(lines)


def run_benchmark(data: Path, methods: Sequence[str], subjects: Sequence[str], repeats: int) -> list[Score]:
    groups = read_duke_subjects(data, subjects)
    scores = []
    for name in methods:
        restore, warm_up = restorer(name)
        with torch.inference_mode():
            scores.append(score_method(name, restore, groups, warm_up, repeats))
        print(f"{name}: {scores[-1].psnr:.2f} dB / {scores[-1].ssim:.3f}, {scores[-1].seconds:.2f} s", file=sys.stderr)
    return scores


# -- classical parameters on the training subjects ---------------------------------------------
def central_crop(group: FrameGroup, height: int, width: int) -> FrameGroup:
    """The central ``height × width`` region of a group's frames and average."""
    top, left = (group.frames.shape[1] - height) // 2, (group.frames.shape[2] - width) // 2
    window = (slice(top, top + height), slice(left, left + width))
    reference = None if group.reference is None else group.reference[window]
    return FrameGroup(group.name, group.frames[(slice(None), *window)], group.frame_names, reference)


def tune_classical(data: Path) -> dict[str, object]:
    """Grid search of median size, NLM strength and BM3D sigma by mean PSNR on subjects 1–8.

    Scored on the central 224 × 448 region of each training B-scan (BM3D takes tens of seconds
    per whole B-scan on 2 cores).
    """
    groups = [central_crop(group, 224, 448) for group in read_duke_subjects(data, DUKE_TRAIN_SUBJECTS)]
    grids: dict[str, list[tuple[object, Restorer]]] = {
        "median": [(size, classical("median", {"size": size})) for size in (5, 7, 9, 11, 13, 15)],
        "nlm": [(h, classical("nlm", {**NLM_OPTIONS, "h_factor": h})) for h in (0.8, 1.0, 1.2, 1.5, 2.0, 2.5)],
        "bm3d": [(sigma, bm3d_restorer(sigma)) for sigma in (25.0, 35.0, 45.0, 55.0, 70.0, 85.0, 100.0)],
    }
    chosen: dict[str, object] = {}
    for method, grid in grids.items():
        results = [(score_method(f"{method} {value}", restore, groups, False), value) for value, restore in grid]
        for score, value in results:
            print(f"{method} {value}: {score.psnr:.2f} dB / {score.ssim:.3f}", file=sys.stderr)
        chosen[method] = max(results, key=lambda pair: pair[0].psnr)[1]
    return chosen


# -- publishing a trained model to the zoo ----------------------------------------------------
def publish(arguments: argparse.Namespace) -> None:
    """Score a checkpoint (several: their mean, one ensemble model) on 9–12 and write its weights and card into the zoo."""
    groups = read_duke_subjects(arguments.data, DUKE_VALIDATION_SUBJECTS)
    with torch.inference_mode():
        restore = model_restorer("+".join(str(path) for path in arguments.checkpoint))
        score = score_method(arguments.name, restore, groups, warm_up=True, repeats=arguments.repeats)
    card = publish_checkpoint(
        arguments.checkpoint,
        name=arguments.name,
        task="denoise",
        modality="oct",
        training={
            "data": "Duke/Bioptigen SD-OCT (Fang et al., IEEE TMI 32(11), 2013)",
            "split": "train subjects 1-8, validate 9-12 (never trained on)",
            "command": " && ".join(f"medrestore train --config {config}" for config in arguments.config),
            "threads": torch.get_num_threads(),
        },
        metrics={
            "convention": "oct (Duke/Bioptigen subjects 9-12, 8-bit output, mean over subjects)",
            "psnr": round(score.psnr, 3),
            "ssim": round(score.ssim, 4),
            "seconds_per_bscan": round(score.seconds, 3),
        },
        description=arguments.description,
        zoo_dir=arguments.zoo_dir,
    )
    print(json.dumps(card.to_dict(), indent=2))


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", default="benchmark", choices=("benchmark", "tune-classical", "publish"))
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the oct-duke-bioptigen folder")
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS), help="comma-separated methods, zoo names or checkpoints")
    parser.add_argument("--subjects", default=",".join(DUKE_VALIDATION_SUBJECTS), help="subjects to score (default 9-12)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the timing column)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per B-scan; the fastest is timed")
    parser.add_argument("--per-subject", action="store_true", help="add a per-subject table")
    parser.add_argument("--json", type=Path, help="also write the scores as JSON here")
    parser.add_argument("--checkpoint", type=Path, nargs="+", help="publish: the trained checkpoint (several: one ensemble of their mean)")
    parser.add_argument("--name", help="publish: zoo name")
    parser.add_argument("--config", nargs="+", default=["configs/oct-resunet.yaml"], help="publish: the training configuration(s) (recorded)")
    parser.add_argument("--description", default="", help="publish: the card's description")
    parser.add_argument("--zoo-dir", type=Path, default=PACKAGED_ZOO, help="publish: zoo folder (default: the packaged zoo)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    torch.set_num_threads(arguments.threads)
    if not arguments.data.is_dir():
        sys.exit(f"data folder {arguments.data} not found (pass --data)")
    if arguments.command == "tune-classical":
        print(json.dumps(tune_classical(arguments.data), indent=2))
        return 0
    if arguments.command == "publish":
        publish(arguments)
        return 0
    scores = run_benchmark(arguments.data, arguments.methods.split(","), arguments.subjects.split(","), arguments.repeats)
    print(markdown_table(scores, arguments.per_subject))
    if arguments.json is not None:
        arguments.json.write_text(json.dumps([dataclasses.asdict(score) for score in scores], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
