"""`medrestore models`: list architectures, classical methods and pretrained zoo models."""

from __future__ import annotations

import argparse
import json

from medrestore.tasks.models import MODALITY_CHOICES, catalogue_text, list_models


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--task``, ``--modality`` filters and ``--json`` output."""
    parser.add_argument("--task", metavar="TASK", help="only what serves this task (denoise, recon, harmonize, superres)")
    parser.add_argument("--modality", choices=MODALITY_CHOICES, help="only what fits this modality")
    parser.add_argument("--json", action="store_true", help="print a JSON record instead of tables")


def run(args: argparse.Namespace) -> int:
    catalogue = list_models(task=args.task, modality=args.modality)
    if args.json:
        print(json.dumps(catalogue.as_dict(), indent=2))
    else:
        print(catalogue_text(catalogue), end="")
    return 0
