"""`medrestore demo` (placeholder until implemented)."""

from __future__ import annotations

import argparse

from medrestore.core.errors import MedrestoreError

NAME = "demo"
HELP = "demo (not yet available)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No arguments yet."""


def run(args: argparse.Namespace) -> int:
    raise MedrestoreError("'demo' is not implemented yet")
