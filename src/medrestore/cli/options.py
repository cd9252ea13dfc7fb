"""Command-line options that several commands share, defined once.

``add_value_options(parser)`` gives a command that reads images the ``--nonfinite`` option:
what to do with NaN/±Inf pixel values (:mod:`medrestore.io.values`). Its ``run`` passes
``args.nonfinite`` to the task it calls.
"""

from __future__ import annotations

import argparse

from medrestore.io.values import CLI_NONFINITE_POLICIES

__all__ = ["add_value_options"]


def add_value_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--nonfinite {refuse,zero}`` (default ``refuse``) to ``parser``."""
    parser.add_argument(
        "--nonfinite",
        choices=CLI_NONFINITE_POLICIES,
        default="refuse",
        help="NaN/±Inf pixel values: refuse the file (default), or zero: replace them by 0 "
        "(counted on stderr and in the output's JSON record)",
    )
