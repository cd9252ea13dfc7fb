"""``medrestore train``: train a paired image-to-image model from a YAML configuration."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from medrestore.cli.batch import JobProgress
from medrestore.core.progress import reporting
from medrestore.tasks.train import train_from_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config FILE.yaml [--resume] [-o DIR] [--device D]``."""
    parser.add_argument("--config", required=True, metavar="FILE.yaml", help="experiment configuration (see configs/)")
    parser.add_argument("--resume", action="store_true", help="continue the run in the output folder from last.pt")
    parser.add_argument("-o", "--output", "--output-dir", dest="output", metavar="DIR", help="run folder (default: train.output_dir of the config)")
    parser.add_argument("--device", metavar="D", help="auto, cpu, cuda, cuda:1 or mps (default: train.device of the config, itself auto when not set)")


def run(args: argparse.Namespace) -> int:
    with reporting(JobProgress(sys.stderr)):  # loops that mark their progress (e.g. coupled-dictionary rounds) show it
        run_dir = train_from_config(args.config, resume=args.resume, output_dir=args.output, device=args.device)
    print(f"run folder: {run_dir}")
    for name in ("last.pt", "best.pt", "log.csv", "history.json"):
        path = Path(run_dir) / name
        if path.exists():
            print(f"  {name}: {path}")
    return 0
