"""The ``medrestore`` command: one sub-command per module in :mod:`medrestore.cli`.

Each command module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``;
commands call :mod:`medrestore.tasks`, never the layers below directly.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from medrestore.core.errors import MedrestoreError

COMMAND_MODULES = (
    "evaluate",
    "degrade",
    "phantom",
    "models",
    "train",
    "denoise",
    "superres",
    "undersample",
    "recon",
    "demo",
    "simulate_radial",
    "estimate_delay",
    "harmonize",
    "harmonize_data",
    "view",
)


def build_parser() -> argparse.ArgumentParser:
    from medrestore import __version__

    parser = argparse.ArgumentParser(prog="medrestore", description="Physics-aware restoration of medical images.")
    parser.add_argument("--version", action="version", version=f"medrestore {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        module = importlib.import_module(f"medrestore.cli.{module_name}")
        sub = subparsers.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(handler=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point. Deliberate errors print ``medrestore: error: <message>`` and exit with 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except MedrestoreError as error:
        print(f"medrestore: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("medrestore: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
