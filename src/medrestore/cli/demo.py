"""``medrestore demo -o DIR``: run every available workflow on built-in data."""

from __future__ import annotations

import argparse
import sys

from medrestore.tasks.demo import run_demo


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", "--out", dest="output", default="results/demo", metavar="DIR", help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="base random seed")
    parser.add_argument("--quick", action="store_true", help="fewer images and slices (for smoke tests)")


def run(args: argparse.Namespace) -> int:
    report = run_demo(args.output, seed=args.seed, quick=args.quick, progress=lambda text: print(f"demo: {text}", file=sys.stderr))
    print(f"report: {report}")
    print(f"metrics: {report.parent / 'metrics.json'}")
    return 0
