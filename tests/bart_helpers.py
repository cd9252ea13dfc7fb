"""Helpers the BART tests share: the mark that skips without the `bart` command line tool, and
one `bart` command run in a folder."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

needs_bart = pytest.mark.skipif(shutil.which("bart") is None,
                                reason="needs the BART command line tool (Debian package 'bart'), which is not installed")


def bart(folder: Path, *arguments: object) -> str:
    """Run one BART command in ``folder`` (its files are named relative to it); returns its standard output."""
    return subprocess.run(["bart", *map(str, arguments)], cwd=folder, check=True, capture_output=True, text=True).stdout
