"""`medrestore evaluate` (placeholder until implemented)."""

from __future__ import annotations

import argparse

from medrestore.core.errors import MedrestoreError

NAME = "evaluate"
HELP = "evaluate (not yet available)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No arguments yet."""


def run(args: argparse.Namespace) -> int:
    raise MedrestoreError("'evaluate' is not implemented yet")
