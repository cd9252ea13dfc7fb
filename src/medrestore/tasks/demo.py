"""``medrestore demo``: every available workflow on built-in data, one HTML report.

Each workflow contributes one or more *sections*: a function ``(DemoContext) -> ReportSection``
listed in :data:`DEMO_SECTIONS`. The sections import what they share from
:mod:`medrestore.tasks.demo_common`, never this module, so the imports run one way. A section
uses data generated in code or shipped inside the installed package (the OCT and harmonisation sections read real images from the project's data folder
and report themselves skipped without them), writes its figures into the output folder, and returns its metrics.
"""

from __future__ import annotations

import dataclasses
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch

from medrestore.report import Report, ReportSection, write_report
from medrestore.tasks.demo_common import DemoContext, Section
from medrestore.tasks.demo_foundation import degradations_section, denoising_section
from medrestore.tasks.demo_harmonize import harmonization_section
from medrestore.tasks.demo_mri import cartesian_section, mri_denoising_section, radial_section
from medrestore.tasks.demo_nm import nm_superres_section
from medrestore.tasks.demo_oct import oct_section


DEMO_SECTIONS: tuple[Section, ...] = (
    degradations_section,
    denoising_section,
    nm_superres_section,
    oct_section,
    mri_denoising_section,
    cartesian_section,
    radial_section,
    harmonization_section,
)


def _timed(section: Section, context: DemoContext) -> ReportSection:
    start = time.perf_counter()
    result = section(context)
    return dataclasses.replace(result, seconds=time.perf_counter() - start)


def run_demo(out_dir: str | Path, seed: int = 0, quick: bool = False, progress: Callable[[str], None] | None = None) -> Path:
    """Run every section and write ``report.html`` + ``metrics.json`` into ``out_dir``.

    Returns:
        Path of ``report.html``.
    """
    from medrestore import __version__

    out = Path(out_dir)
    context = DemoContext(out_dir=out, work_dir=out / "work", seed=seed, quick=quick)
    out.mkdir(parents=True, exist_ok=True)
    sections = []
    for section in DEMO_SECTIONS:
        if progress is not None:
            progress(f"running {section.__name__.removesuffix('_section').replace('_', ' ')}")
        sections.append(_timed(section, context))
    report = Report(
        title="medrestore demo",
        sections=sections,
        provenance=(
            ("medrestore", __version__),
            ("torch", torch.__version__),
            ("machine", f"{platform.machine()}, {torch.get_num_threads()} threads"),
            ("seed", str(seed)),
            ("mode", "quick" if quick else "full"),
        ),
    )
    return write_report(report, out)
