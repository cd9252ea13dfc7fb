"""``medrestore harmonize-eval``: score harmonisers on held-out scanner folders (one JSON and an HTML page)."""

from __future__ import annotations

import argparse
import sys

from medrestore.cli.batch import JobProgress
from medrestore.core.progress import reporting
from medrestore.tasks.harmonize_eval import EvaluationPlan, evaluate_harmonizers


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--train-a DIR --train-b DIR --test-a DIR --test-b DIR [--model NAME ...] -o OUT_DIR``."""
    for split, role in (("train", "the scanner classifier is trained on"), ("test", "held out: harmonised and scored")):
        for scanner in ("a", "b"):
            parser.add_argument(
                f"--{split}-{scanner}", required=True, metavar="PATH", help=f"scanner {scanner} slices {role} (folder or one volume)"
            )
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME",
        help="harmoniser to score (repeatable): zoo name (e.g. cyclegan-sim, coupled-dictionary-sim), harmonizer.pt / last.pt, run folder, "
        "or histogram-matching (fitted on the training folders); the unharmonised input is always scored",
    )
    parser.add_argument("--direction", choices=("a2b", "b2a", "both"), default="both", help="direction(s) to score (default both)")
    parser.add_argument("--grid", type=int, metavar="N", help="harmonise on an N×N grid (the model's training grid, e.g. 128)")
    parser.add_argument("--amplitude", type=float, default=0.35, help="relative amplitude of the added hyperintensity (default 0.35)")
    parser.add_argument("--epochs", type=int, default=30,
                        help="training epochs of the scanner classifier (default 30; raise it when the report calls the classifier under-trained)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the scanner classifier (default 0, recorded)")
    parser.add_argument("-o", "--output", metavar="OUT_DIR", required=True, help="folder for report.html, metrics.json and PNGs")


def run(args: argparse.Namespace) -> int:
    plan = EvaluationPlan(
        train_a=args.train_a,
        train_b=args.train_b,
        test_a=args.test_a,
        test_b=args.test_b,
        models=tuple(args.model),
        directions=("b2a", "a2b") if args.direction == "both" else (args.direction,),
        grid=args.grid,
        amplitude=args.amplitude,
        seed=args.seed,
        epochs=args.epochs,
    )
    with reporting(JobProgress(sys.stderr)):
        record = evaluate_harmonizers(plan, args.output)
    for row in record["sections"]["harmonize_eval"]["rows"]:  # type: ignore[index]
        print(f"{row['method']} {row['direction']}: classifier {row['classifier_accuracy']:.0%}, Jaccard {row['jaccard_input']:.3f}, "
              f"hyperintensity survival {row['hyperintensity_survival']:.2f}")
    print(f"wrote {args.output}/report.html and metrics.json")
    return 0
