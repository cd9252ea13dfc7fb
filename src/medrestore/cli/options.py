"""Command-line options that several commands share, defined once, so every command speaks alike.

* ``add_value_options(parser)`` gives a command that reads images the ``--nonfinite`` option:
  what to do with NaN/±Inf pixel values (:mod:`medrestore.io.values`). Its ``run`` passes
  ``args.nonfinite`` to the task it calls.
* ``add_device_option(parser)`` gives ``--device`` with the one default of every command,
  :data:`DEFAULT_DEVICE` (``auto``: CUDA when present, then Apple MPS, else the CPU, as
  :func:`medrestore.core.device.select_device` resolves it).
* ``add_reference_option(parser, ...)`` gives ``--reference FILE`` (``args.reference``); the
  older spelling ``--ref`` is accepted as an alias.

Every command that writes takes ``-o/--output``; :mod:`medrestore.cli.batch` and the command
modules add it. The help of every option shows its default (the formatter of
:mod:`medrestore.cli.main`).
"""

from __future__ import annotations

import argparse

from medrestore.core.device import DEFAULT_DEVICE  # the GPU when there is one, as select_device's default
from medrestore.io.values import CLI_NONFINITE_POLICIES

__all__ = ["DEFAULT_DEVICE", "add_device_option", "add_reference_option", "add_value_options"]



def add_value_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--nonfinite {refuse,zero}`` (default ``refuse``) to ``parser``."""
    parser.add_argument(
        "--nonfinite",
        choices=CLI_NONFINITE_POLICIES,
        default="refuse",
        help="NaN/±Inf pixel values: refuse the file (default), or zero: replace them by 0 "
        "(counted on stderr and in the output's JSON record)",
    )


def add_device_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--device D`` (default :data:`DEFAULT_DEVICE`) to ``parser``."""
    parser.add_argument(
        "--device",
        default=DEFAULT_DEVICE,
        metavar="D",
        help="auto (CUDA if present, then MPS, else CPU), cpu, cuda, cuda:1 or mps",
    )


def add_reference_option(parser: argparse.ArgumentParser, help_text: str, required: bool = False, many: bool = False) -> None:
    """Add ``--reference FILE`` (alias ``--ref``, stored as ``args.reference``) to ``parser``;
    ``many``: ``--reference FILE [FILE ...]`` (a list)."""
    parser.add_argument("--reference", "--ref", dest="reference", required=required, default=None, metavar="FILE",
                        nargs="+" if many else None, help=help_text)  # fmt: skip
