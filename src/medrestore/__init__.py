"""medrestore — physics-aware restoration of medical images.

The public Python API re-exports the data types; workflows live in
:mod:`medrestore.tasks` and the command line in :mod:`medrestore.cli`.
"""

from medrestore.core.errors import InputError, MedrestoreError
from medrestore.core.image import Image
from medrestore.core.kspace import KSpace

__all__ = ["Image", "KSpace", "InputError", "MedrestoreError", "__version__"]
__version__ = "0.1.0"
