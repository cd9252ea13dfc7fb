"""MkDocs hook: publish the benchmark pages (``benchmarks/*.md``) and their figures on the site.

The pages stay where the benchmark scripts are (``benchmarks/``), readable on their own; the site
shows them under ``benchmarks/`` so the workflow pages can link to them and the strict build checks
those links.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
"""The repository root: ``benchmarks/`` lies there, beside ``docs/``."""


def on_files(files: Files, config: Any) -> Files:
    """Add ``benchmarks/*.md`` and ``benchmarks/figures/*.png`` to the site's files."""
    folder = ROOT / "benchmarks"
    for path in sorted(folder.glob("*.md")) + sorted((folder / "figures").glob("*.png")):
        relative = path.relative_to(ROOT).as_posix()
        files.append(File(relative, src_dir=str(ROOT), dest_dir=config["site_dir"], use_directory_urls=config["use_directory_urls"]))
    return files
