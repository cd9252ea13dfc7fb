"""The learning-rate table of the Aizu OCT study (seed 004), reproduced with one command.

For SRCNN and the CAE, and every learning rate of the study (2e-4, 3e-4, 4e-4, 5e-4, 6e-4), train
the seed recipe (``configs/oct-srcnn-seed.yaml``, ``configs/oct-cae-seed.yaml``: 41×41 patches on a
stride-14 grid inside 20 random 227×227 crops per B-scan, flips and quarter turns, z-score, Adam,
MSE) with only ``optim.lr`` changed, then score the last checkpoint on the Duke/Bioptigen
subjects 9–12 in the ``oct`` convention (as ``benchmarks/oct_duke.py`` does)::

    python benchmarks/oct_lr_table.py                      # the configs' epochs (long on a CPU)
    python benchmarks/oct_lr_table.py --max-steps 150      # a budgeted version
    python benchmarks/oct_lr_table.py --models srcnn --rates 2e-4,6e-4

Runs go to ``results/oct-lr-table/<model>-<rate>/``; an existing finished run is scored again
without retraining, an interrupted one is resumed. The study reported its numbers on its own
(Fukushima) data with ``L = 1`` after a sigmoid; the numbers here are on the public Duke set,
so only the ranking of the rates is comparable, not the values.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from oct_duke import DEFAULT_DATA, ROOT, model_restorer, score_method
from medrestore.data.oct import DUKE_VALIDATION_SUBJECTS, read_duke_subjects
from medrestore.tasks.train import train
from medrestore.training import ExperimentConfig, load_checkpoint, load_config

RATES = (2e-4, 3e-4, 4e-4, 5e-4, 6e-4)
CONFIGS = {"srcnn": ROOT / "configs" / "oct-srcnn-seed.yaml", "cae": ROOT / "configs" / "oct-cae-seed.yaml"}


def configured(model: str, rate: float, output_root: Path, max_steps: int | None) -> ExperimentConfig:
    """The seed configuration of ``model`` with ``optim.lr = rate`` and its own run folder."""
    config = load_config(CONFIGS[model])
    run_dir = output_root / f"{model}-{rate:g}"
    train_settings = dataclasses.replace(config.train, output_dir=str(run_dir), max_steps=max_steps, progress_bar=False)
    return dataclasses.replace(config, optim=dataclasses.replace(config.optim, lr=rate), train=train_settings)


def train_or_resume(config: ExperimentConfig) -> Path:
    """Train ``config`` (resuming an interrupted run); the path of its last checkpoint."""
    last = Path(config.train.output_dir) / "last.pt"
    result = train(config, resume=last.exists())
    return result.last_checkpoint


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="srcnn,cae", help="comma-separated: srcnn, cae")
    parser.add_argument("--rates", default=",".join(f"{rate:g}" for rate in RATES), help="comma-separated learning rates")
    parser.add_argument("--max-steps", type=int, default=None, help="stop each run after this many steps")
    parser.add_argument("--output", type=Path, default=ROOT / "results" / "oct-lr-table", help="folder of the runs")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the oct-duke-bioptigen folder")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    arguments = parser.parse_args(argv)
    torch.set_num_threads(arguments.threads)
    groups = read_duke_subjects(arguments.data, DUKE_VALIDATION_SUBJECTS)
    lines = ["| model | learning rate | steps | PSNR (dB) | SSIM |", "|---|---|---|---|---|"]
    for model in arguments.models.split(","):
        for rate in (float(text) for text in arguments.rates.split(",")):
            config = configured(model, rate, arguments.output, arguments.max_steps)
            checkpoint = train_or_resume(config)
            steps = int(load_checkpoint(checkpoint, map_location="cpu")["progress"]["global_step"])
            with torch.inference_mode():
                score = score_method(f"{model} {rate:g}", model_restorer(str(checkpoint)), groups, warm_up=False)
            lines.append(f"| {model} | {rate:g} | {steps} | {score.psnr:.2f} | {score.ssim:.3f} |")
            print(lines[-1], file=sys.stderr)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
