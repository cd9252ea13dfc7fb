"""MkDocs hooks: publish the benchmark pages on the site, and read their lists as GitHub does.

* The benchmark pages (``benchmarks/*.md``) and their figures stay where the benchmark scripts are,
  readable on their own; the site shows them under ``benchmarks/`` so the workflow pages can link to
  them and the strict build checks those links.
* GitHub starts a list on the line after a paragraph; Python-Markdown needs a blank line first and
  would run such a list into the paragraph. :func:`on_page_markdown` inserts that blank line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
"""The repository root: ``benchmarks/`` lies there, beside ``docs/``."""
LIST_ITEM = re.compile(r"([-*+]|\d+\.) ")
"""A list item at the left margin."""


def on_files(files: Files, config: Any) -> Files:
    """Add ``benchmarks/*.md`` and ``benchmarks/figures/*.png`` to the site's files."""
    folder = ROOT / "benchmarks"
    for path in sorted(folder.glob("*.md")) + sorted((folder / "figures").glob("*.png")):
        relative = path.relative_to(ROOT).as_posix()
        files.append(File(relative, src_dir=str(ROOT), dest_dir=config["site_dir"], use_directory_urls=config["use_directory_urls"]))
    return files


def separate_lists(markdown: str) -> str:
    """``markdown`` with a blank line between a paragraph line and a list item that follows it.

    Lines inside fenced code, indented lines (list continuations) and consecutive items are left alone.
    """
    lines, fenced, previous = [], False, ""
    for line in markdown.split("\n"):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and LIST_ITEM.match(line) and previous.strip() and not previous[0].isspace() \
                and not LIST_ITEM.match(previous) and not previous.startswith(">"):
            lines.append("")
        lines.append(line)
        previous = line
    return "\n".join(lines)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Every page's Markdown after :func:`separate_lists`."""
    return separate_lists(markdown)
