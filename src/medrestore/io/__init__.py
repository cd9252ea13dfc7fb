"""Image input/output: NIfTI, DICOM (file, multi-frame, series folder), TIFF, PNG, JPEG
(read-only), NumPy ``.npy``/``.npz``.

Public API::

    read_image(path, modality=None, allow_nonfinite=False) -> Image
    write_image(image, path, dtype=None) -> Path
    detect_format(path) -> str   # "nifti" | "dicom" | "dicom-series" | "tiff" | "png" | "jpeg" | "npy" | "npz"
    cast_to_dtype(array, dtype) -> np.ndarray

Every problem with an input file raises :class:`~medrestore.core.errors.InputError` naming
the file; outputs are written atomically.
"""

from medrestore.io.api import read_image, write_image
from medrestore.io.common import cast_to_dtype
from medrestore.io.detect import FORMATS, detect_format

__all__ = ["FORMATS", "cast_to_dtype", "detect_format", "read_image", "write_image"]
