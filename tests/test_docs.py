"""The documentation site builds with warnings as errors, and what it shows is committed and small.

The strict build checks every internal link and heading anchor (``validation`` in ``mkdocs.yml``),
the navigation, and the API reference mkdocstrings renders from the docstrings (a docstring whose
parameters do not match its signature is a warning, so a failure).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MAX_FIGURE_BYTES = 150_000
DOCS_PACKAGES = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python")


def _missing_docs_packages() -> list[str]:
    missing = []
    for name in DOCS_PACKAGES:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            missing.append(name)
    return missing


def test_site_builds_strictly_without_warnings(tmp_path: Path) -> None:
    missing = _missing_docs_packages()
    if missing:
        pytest.skip(f"the docs extra is not installed (missing {', '.join(missing)}): pip install -e '.[docs]'")
    completed = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    log = completed.stdout + completed.stderr
    warnings = [line for line in log.splitlines() if re.match(r"\s*(WARNING|ERROR)\b", line)]
    assert completed.returncode == 0 and not warnings, log[-4000:]
    site = tmp_path / "site"
    for page in ("index.html", "recon/index.html", "api/index.html", "benchmarks/index.html", "benchmarks/history/index.html"):
        assert (site / page).is_file(), page
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    for name in ("medrestore.api.denoise", "medrestore.api.recon", "medrestore.io.read_image", "medrestore.core.image.Image"):
        assert f'id="{name}"' in api, name


def test_every_figure_the_pages_show_is_committed_and_small() -> None:
    shown = set()
    for page in DOCS.glob("*.md"):
        shown.update(re.findall(r"!\[[^\]]*\]\((figures/[^)]+\.png)\)", page.read_text(encoding="utf-8")))
    assert shown, "the workflow pages show no figures"
    for relative in sorted(shown):
        figure = DOCS / relative
        assert figure.is_file(), f"{relative} is shown but missing: run python docs/make_figures.py"
        assert figure.stat().st_size <= MAX_FIGURE_BYTES, f"{relative}: {figure.stat().st_size} bytes"
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", relative
    made = {f"figures/{path.name}" for path in (DOCS / "figures").glob("*.png")}
    assert made == shown, f"figures no page shows: {sorted(made - shown)}"


def test_every_workflow_page_has_commands_python_a_figure_and_its_benchmark() -> None:
    for name in ("recon", "denoise-mri", "harmonize", "superres-nm", "oct"):
        text = (DOCS / f"{name}.md").read_text(encoding="utf-8")
        assert "```bash" in text and "medrestore " in text, name
        assert "```python" in text and "import medrestore" in text, name
        assert "](figures/" in text, name
        assert "## Benchmark" in text and "](benchmarks/" in text, name
        assert "python benchmarks/" in text or "medrestore harmonize-eval" in text, f"{name}: the command that made the table"


def test_lists_right_after_a_paragraph_are_separated_as_github_reads_them() -> None:
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    if spec is None or spec.loader is None or importlib.util.find_spec("mkdocs") is None:
        pytest.skip("the docs extra is not installed (mkdocs): pip install -e '.[docs]'")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    text = "**Findings.**\n- one\n- two\n  continued\n  - nested\n\n```\nx\n- not a list\n```\n| a |\n- after a table\n1. numbered"
    expected = "**Findings.**\n\n- one\n- two\n  continued\n  - nested\n\n```\nx\n- not a list\n```\n| a |\n\n- after a table\n1. numbered"
    assert hooks.separate_lists(text) == expected
