"""Image input/output: NIfTI, DICOM (file, multi-frame, series folder), TIFF, PNG, JPEG
(read-only), NumPy ``.npy``/``.npz``; raw MRI k-space: Siemens twix, fastMRI HDF5, ISMRMRD,
BART ``.cfl``/``.hdr``, NumPy.

Public API::

    read_image(path, modality=None, nonfinite="refuse") -> Image   # or "zero", "keep"
    write_image(image, path, dtype=None) -> Path
    detect_format(path) -> str   # "nifti" | "dicom" | "dicom-series" | "tiff" | "png" | "jpeg" | "npy" | "npz"
    cast_to_dtype(array, dtype) -> np.ndarray
    read_kspace(path, trajectory=None, average=False) -> KSpace  # twix .dat, fastMRI/ISMRMRD .h5, BART .cfl (+ trajectory .cfl), .npy/.npz
    find_inputs(entries, kind) -> Inventory   # the inputs a folder, glob or list holds (batch commands)
    write_kspace(kspace, path) -> Path   # .npz, .cfl, .h5/.mrd (ISMRMRD)
    read_coil_maps(path, kspace) -> torch.Tensor

Every problem with an input file raises :class:`~medrestore.core.errors.InputError` naming
the file; outputs are written atomically.
"""

from medrestore.io.api import read_image, write_image
from medrestore.io.common import cast_to_dtype
from medrestore.io.detect import FORMATS, detect_format
from medrestore.io.inventory import find_inputs
from medrestore.io.kspace_api import KSPACE_FORMATS, kspace_format, read_coil_maps, read_kspace, write_kspace
from medrestore.io.raw_fastmri import read_fastmri_reference

__all__ = [
    "FORMATS",
    "KSPACE_FORMATS",
    "cast_to_dtype",
    "detect_format",
    "find_inputs",
    "kspace_format",
    "read_coil_maps",
    "read_fastmri_reference",
    "read_image",
    "read_kspace",
    "write_image",
    "write_kspace",
]
