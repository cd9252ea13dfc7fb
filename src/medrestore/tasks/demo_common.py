"""What every demo section shares: its context, its signature and where the project's data lies.

The demo's sections (``demo_foundation``, ``demo_nm``, ``demo_oct``, ``demo_mri``,
``demo_harmonize``) import only this module and the workflows they show; :mod:`medrestore.tasks.demo`
imports the sections. So the imports among ``tasks/demo*`` run one way (an import-linter contract
in ``pyproject.toml`` keeps it so).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medrestore.report import ReportSection

__all__ = ["DATA_ENVIRONMENT", "DemoContext", "Section", "data_root", "signed_db"]

DATA_ENVIRONMENT = "MEDRESTORE_DATA"
"""Environment variable naming the project's data folder (real images the sections read)."""


@dataclasses.dataclass(frozen=True)
class DemoContext:
    """What a demo section receives.

    Attributes:
        out_dir: report folder; figures are written here.
        work_dir: scratch folder for intermediate files (generated inputs).
        seed: base seed; sections derive their own generators from it.
        quick: fewer images, subjects and slices (tests use it).
    """

    out_dir: Path
    work_dir: Path
    seed: int = 0
    quick: bool = False


Section = Callable[[DemoContext], "ReportSection"]
"""A demo section: context → its part of the report (figures written into ``context.out_dir``)."""


def data_root() -> Path:
    """``$MEDRESTORE_DATA`` when set, else ``../shared/data`` beside the source checkout."""
    configured = os.environ.get(DATA_ENVIRONMENT)
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[3].parent / "shared" / "data"


def signed_db(value: float) -> str:
    """A difference as the verdicts print it: ``+1.23`` or ``−0.45`` (a true minus sign)."""
    return f"{value:+.2f}".replace("-", "\u2212")
