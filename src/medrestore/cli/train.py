"""`medrestore train` (placeholder until implemented)."""

from __future__ import annotations

import argparse

from medrestore.core.errors import MedrestoreError

NAME = "train"
HELP = "train (not yet available)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No arguments yet."""


def run(args: argparse.Namespace) -> int:
    raise MedrestoreError("'train' is not implemented yet")
