"""medrestore — physics-aware restoration of medical images.

The public Python API re-exports the data types and one call per workflow
(:mod:`medrestore.api`: ``denoise``, ``recon``, ``superres``, ``harmonize``, ``degrade``,
``evaluate``, ``nema``); the workflows live in :mod:`medrestore.tasks` and the command line in
:mod:`medrestore.cli`. Both are loaded on first use (PEP 562), so that importing the package —
and ``medrestore --help`` — does not pay for importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from medrestore.core.errors import InputError, MedrestoreError

if TYPE_CHECKING:
    from medrestore.api import Result, degrade, denoise, evaluate, harmonize, nema, recon, superres
    from medrestore.core.image import Image
    from medrestore.core.kspace import KSpace

__all__ = [
    "Image", "KSpace", "InputError", "MedrestoreError", "Result", "__version__",
    "degrade", "denoise", "evaluate", "harmonize", "nema", "recon", "superres",
]  # fmt: skip
__version__ = "0.1.0"

_API = ("Result", "degrade", "denoise", "evaluate", "harmonize", "nema", "recon", "superres")
_LAZY = {"Image": "medrestore.core.image", "KSpace": "medrestore.core.kspace", **dict.fromkeys(_API, "medrestore.api")}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'medrestore' has no attribute {name!r}")
