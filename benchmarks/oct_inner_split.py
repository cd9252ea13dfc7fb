"""How the OCT recipe and the default's pair of networks were chosen: a split inside the training eyes.

The validation eyes 9–12 score the shipped models; they must not also choose them. This script
trains candidate recipes on Duke/Bioptigen subjects 1–6 and scores them on subjects 7–8, every
one of their five noisy frames restored on its own against the eye's average (ten B-scans, in the
``oct`` convention of ``benchmarks/oct_duke.py``), then the mean of every pair of candidates::

    python benchmarks/oct_inner_split.py                   # five runs, about 15 min each on 2 CPU cores
    python benchmarks/oct_inner_split.py --candidates tone,tone-mse

Each candidate is a shipped configuration with only the subjects, the validation frames and the
run folder changed: ``plain`` is ``configs/oct-resunet.yaml`` (averages as they are),
``plain-seed1`` the same from another seed (how much a seed alone moves the scores), ``plain-mse``
the same with MSE, ``tone`` is ``configs/oct-resunet-tone.yaml`` (tone-matched averages) and
``tone-mse`` ``configs/oct-resunet-tone-mse.yaml``. Runs go to ``results/oct-inner/<candidate>/``;
a finished run is scored again without retraining, an interrupted one is resumed.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from oct_duke import DEFAULT_DATA, ROOT, model_restorer, to_eight_bit
from oct_lr_table import train_or_resume
from medrestore.data.oct import DUKE_NOISY_FRAMES, FrameGroup, read_duke_subjects
from medrestore.metrics import evaluate
from medrestore.training import ExperimentConfig, load_config

TRAINING_SUBJECTS = ("1", "2", "3", "4", "5", "6")
VALIDATION_SUBJECTS = ("7", "8")
CANDIDATES = {
    "plain": ("oct-resunet.yaml", None, None),
    "plain-seed1": ("oct-resunet.yaml", None, 1),
    "plain-mse": ("oct-resunet.yaml", "mse", None),
    "tone": ("oct-resunet-tone.yaml", None, None),
    "tone-mse": ("oct-resunet-tone-mse.yaml", None, None),
}
"""Candidate → (shipped configuration, loss override or ``None``, seed override or ``None``)."""


def configured(candidate: str, output_root: Path, data: Path) -> ExperimentConfig:
    """The shipped configuration of ``candidate`` trained on subjects 1–6, validated on every frame of 7–8."""
    name, loss, seed = CANDIDATES[candidate]
    config = load_config(ROOT / "configs" / name)
    assert config.data.oct is not None
    oct_config = dataclasses.replace(
        config.data.oct, root=str(data), subjects=TRAINING_SUBJECTS, validation_subjects=VALIDATION_SUBJECTS,
        validation_frames=DUKE_NOISY_FRAMES,
    )  # fmt: skip
    settings = dataclasses.replace(
        config.train, output_dir=str(output_root / candidate), progress_bar=False, loss=loss or config.train.loss, validate_every=10,
        seed=config.train.seed if seed is None else seed,
    )  # fmt: skip
    return dataclasses.replace(config, data=dataclasses.replace(config.data, oct=oct_config), train=settings)


def restored_frames(checkpoint: Path, groups: Sequence[FrameGroup]) -> list[list[torch.Tensor]]:
    """Every noisy frame of every group restored alone, on 0–255 before rounding (means of models round once)."""
    restore = model_restorer(str(checkpoint))
    with torch.inference_mode():
        return [[restore(group.frames[index : index + 1]).double() for index in range(len(group.frames))] for group in groups]


def score(outputs: Sequence[Sequence[torch.Tensor]], groups: Sequence[FrameGroup]) -> tuple[float, float]:
    """Mean PSNR and SSIM (``oct`` convention, 8-bit outputs) of the outputs against their groups' averages."""
    values = []
    for frames, group in zip(outputs, groups):
        assert group.reference is not None
        values.extend(evaluate(to_eight_bit(frame), group.reference.numpy(), convention="oct") for frame in frames)
    return float(np.mean([value["psnr"] for value in values])), float(np.mean([value["ssim"] for value in values]))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candidates", default=",".join(CANDIDATES), help=f"comma-separated: {', '.join(CANDIDATES)}")
    parser.add_argument("--output", type=Path, default=ROOT / "results" / "oct-inner", help="folder of the runs")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the oct-duke-bioptigen folder")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    arguments = parser.parse_args(argv)
    torch.set_num_threads(arguments.threads)
    names = arguments.candidates.split(",")
    unknown = [name for name in names if name not in CANDIDATES]
    if unknown:
        sys.exit(f"unknown candidates {', '.join(unknown)}; choose from {', '.join(CANDIDATES)}")
    groups = read_duke_subjects(arguments.data, VALIDATION_SUBJECTS)
    outputs = {}
    for name in names:
        checkpoint = train_or_resume(configured(name, arguments.output, arguments.data))
        outputs[name] = restored_frames(checkpoint, groups)
        print(f"{name}: {score(outputs[name], groups)[0]:.2f} dB", file=sys.stderr)
    lines = ["| candidate (subjects 1–6 → every frame of 7–8) | PSNR (dB) | SSIM |", "|---|---|---|"]
    for size in (1, 2):
        for combination in itertools.combinations(names, size):
            mean = [[sum(outputs[name][g][f] for name in combination) / size for f in range(len(group.frames))] for g, group in enumerate(groups)]
            psnr, ssim = score(mean, groups)
            lines.append(f"| {' + '.join(combination)} | {psnr:.2f} | {ssim:.3f} |")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
