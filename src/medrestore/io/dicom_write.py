"""DICOM writing: an object of the input's own IOD, per slice (series folder) or in one file.

* ``path`` ending in ``.dcm`` → one file; otherwise a series folder of files ``0001.dcm``,
  ``0002.dcm``... written into a temporary folder beside the destination and renamed into
  place. The IOD follows the input's modality (:mod:`medrestore.io.dicom_iod`): MR and CT
  images per slice, Enhanced MR/CT for a volume in one file, NM Image (one multi-frame file,
  also inside a series folder), Secondary Capture for photographs and unknown modalities.

What the writer reads from ``image.metadata``:

* ``"dicom"``: the source's attributes (:func:`medrestore.io.dicom.dicom_summary`): patient
  and study identity, acquisition parameters, NM frame vectors and sequences. The series
  and every instance get new UIDs (``pydicom.uid.generate_uid``); ``SeriesDescription`` is
  ``"<original> (medrestore)"``.
* ``"derivation"``: ``"Restored"`` (denoising, super-resolution, harmonisation,
  reconstruction), ``"Degraded"`` (a simulated degradation) or ``"Derived"`` (the default):
  written as ``DerivationDescription`` beside ``ImageType`` ``DERIVED\\SECONDARY``.
* ``"dicom_slice_spacing"``: the source's slice spacing; while unchanged, the source's
  ``SliceThickness`` is kept, else the thickness is the written slice spacing.
* ``"dicom_patient_geometry"``: ``False`` when the source had no patient orientation; an NM
  or Secondary Capture object is then written without one and keeps its frame layout.

Geometry: a 3-D image is permuted so that the slice axis comes first
(:func:`~medrestore.io.dicom_geometry.choose_slice_axis`); orientation, positions, pixel
spacing and slice spacing come from the RAS+ affine converted to LPS. Pixels: 16-bit (8-bit
where the IOD allows it) integers with a rescale (:mod:`medrestore.io.dicom_encode`).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pydicom.tag
import pydicom.uid
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from medrestore.core.errors import InputError
from medrestore.core.files import atomic_path, partial_name, remove_stale_partials
from medrestore.core.image import Image
from medrestore.io.common import image_values, library_errors, single_slice_affine
from medrestore.io.dicom_encode import (
    copy_elements,
    ds_list,
    encode_pixels,
    rescale_attributes,
    set_image_pixel_module,
    window_attributes,
)
from medrestore.io.dicom_enhanced import set_enhanced_modules
from medrestore.io.dicom_geometry import choose_slice_axis, stack_geometry
from medrestore.io.dicom_identity import base_dataset, new_series_identity
from medrestore.io.dicom_iod import (
    WriteContext,
    choose_iod,
    multi_frame_sc_class,
    plane_functional_groups,
    rescale_type,
    set_ct_image_module,
    set_mr_image_module,
    set_plane_module,
)
from medrestore.io.dicom_nm_write import set_nm_modules

_SERIES_FILE = re.compile(r"\d{4,}\.dcm")


def keeps_frame_layout(image: Image) -> bool:
    """A DICOM source without patient orientation whose affine is still the reader's diagonal:
    its frames are written as they are, without an invented orientation."""
    if image.metadata.get("dicom_patient_geometry") is not False:
        return False
    if not str(image.metadata.get("format", "")).startswith("dicom"):
        return False
    linear = np.asarray(image.affine, dtype=np.float64)[:3, :3]
    return bool(np.allclose(linear, np.diag(np.diag(linear))) and np.all(np.diag(linear) > 0))


def slices_first(path: Path, image: Image, keep_layout: bool = False) -> Image:
    """A 3-D view ``(slices, rows, cols)`` (``(slices, rows, cols, T)`` for a time series);
    2-D images get one leading slice axis.

    Only axes are permuted (never reversed): the slice axis first, then the in-plane axes in
    the order that makes the slice step point along ``row_cosine × column_cosine``, so the
    slice order survives a read back. Images read from DICOM keep their order;
    ``keep_layout`` keeps the axes exactly as they are.
    """
    if image.n_frames == 1 and image.data.ndim > image.spatial_ndim:
        image = image.frame(0)
    if image.spatial_ndim == 2:  # the slice vector (affine column 2) becomes the leading axis's column
        return Image(image.data[np.newaxis], single_slice_affine(image.affine, 0), 3, image.modality, image.metadata)
    if keep_layout:
        return image
    from_dicom = str(image.metadata.get("format", "")).startswith("dicom")
    slice_dim = ((image.metadata.get("nifti") or {}).get("dim_info") or [None, None, None])[2]
    axis = choose_slice_axis(path, image, 0 if from_dicom else slice_dim)
    first, second = (a for a in range(3) if a != axis)
    # Readers sort slices along IOP's normal X × Y; keep the slice order by making the
    # stack run along +normal, i.e. det < 0 for the RAS columns [step, rows, cols].
    order = [axis, first, second]
    if np.linalg.det(np.asarray(image.affine)[:3, order]) > 0:
        order = [axis, second, first]
    return image if order == [0, 1, 2] else image.permute(order)


def prepare(path: Path, image: Image, dtype: str | np.dtype | None, single_file: bool) -> WriteContext:
    """Slice the image, choose the IOD, derive the geometry and encode the pixels."""
    iod_probe = choose_iod(image, single_file, 1)
    keep_layout = keeps_frame_layout(image) and iod_probe.family in ("NM", "SC")
    volume = slices_first(path, image, keep_layout)
    values = image_values(volume)
    iod = choose_iod(image, single_file, values.shape[0])
    if values.ndim == 4 and (single_file or iod.multi_frame):
        raise InputError(
            path,
            f"a time series (shape {image.shape}) is written as NIfTI or as a DICOM series folder "
            "(one MR, CT or Secondary Capture file per slice and time point), not as one multi-frame object",
        )
    geometry = None if keep_layout else stack_geometry(path, volume.affine, values.shape[0])
    encoded = encode_pixels(path, image, values, dtype, iod.storage)
    spacing = tuple(float(s) for s in volume.spacing)
    return WriteContext(path, image, values, spacing, geometry, encoded, iod, new_series_identity(image))


def _sliced(context: WriteContext, index: int) -> WriteContext:
    """The context of slice ``index`` alone (for per-slice files)."""
    encoded = dataclasses.replace(context.encoded, stored=context.encoded.stored[index])
    return dataclasses.replace(context, values=context.values[index : index + 1], encoded=encoded)


def _set_rescale_and_window(dataset: Dataset, context: WriteContext) -> None:
    copy_elements(dataset, rescale_attributes(context.encoded, rescale_type(context)))
    copy_elements(dataset, window_attributes(context.encoded))


def _single_slice_dataset(context: WriteContext, index: int) -> Dataset:
    """One MR Image, CT Image or Secondary Capture object holding slice ``index``."""
    family = context.iod.family
    dataset = base_dataset(context, context.iod.sop_class, index + 1)
    slice_context = _sliced(context, index)
    set_plane_module(dataset, context, index)
    if family == "MR":
        set_mr_image_module(dataset, context)
    elif family == "CT":
        set_ct_image_module(dataset, context)
    set_image_pixel_module(dataset, slice_context.encoded, *context.values.shape[1:])
    _set_rescale_and_window(dataset, slice_context)
    return dataset


def _multi_frame_sc_dataset(context: WriteContext) -> Dataset:
    """One multi-frame Secondary Capture with per-frame positions (or page numbers without geometry)."""
    dataset = base_dataset(context, multi_frame_sc_class(context.encoded), 1)
    dataset.NumberOfFrames = len(context.values)
    dataset.BurnedInAnnotation = "NO"
    dataset.PresentationLUTShape = "IDENTITY"
    geometry = context.geometry
    if geometry is None:
        dataset.FrameIncrementPointer = pydicom.tag.Tag("PageNumberVector")
        dataset.PageNumberVector = list(range(1, len(context.values) + 1))
    else:
        set_plane_module(dataset, context, 0)
        dataset.FrameIncrementPointer = pydicom.tag.Tag("SliceLocationVector")
        dataset.SliceLocationVector = ds_list(geometry.positions @ geometry.normal)
        shared, frames = plane_functional_groups(context)  # so readers place every frame
        dataset.SharedFunctionalGroupsSequence = DicomSequence([shared])
        dataset.PerFrameFunctionalGroupsSequence = DicomSequence(frames)
    set_image_pixel_module(dataset, context.encoded, *context.values.shape[1:])
    _set_rescale_and_window(dataset, context)
    return dataset


def _one_object_dataset(context: WriteContext, module_writer: Callable[[Dataset, WriteContext], None]) -> Dataset:
    """One multi-frame object whose IOD-specific modules ``module_writer`` fills."""
    dataset = base_dataset(context, context.iod.sop_class, 1)
    module_writer(dataset, context)
    set_image_pixel_module(dataset, context.encoded, *context.values.shape[1:])
    return dataset


def build_datasets(context: WriteContext) -> list[Dataset]:
    """The data sets of ``context``: one per slice, or one multi-frame object."""
    if context.iod.family == "NM":
        return [_one_object_dataset(context, set_nm_modules)]
    if context.iod.enhanced:
        return [_one_object_dataset(context, set_enhanced_modules)]
    if context.iod.multi_frame:
        return [_multi_frame_sc_dataset(context)]
    if context.values.ndim == 4:
        return _time_series_datasets(context)
    return [_single_slice_dataset(context, index) for index in range(len(context.values))]


def _time_series_datasets(context: WriteContext) -> list[Dataset]:
    """One file per slice and time point: time point ``t`` of slice ``k`` is instance
    ``t · slices + k + 1`` with ``TemporalPositionIdentifier`` ``t + 1`` (PS3.3 C.7.6.2)."""
    n_slices, n_times = context.values.shape[0], context.values.shape[-1]
    datasets = []
    for time in range(n_times):
        encoded = dataclasses.replace(context.encoded, stored=context.encoded.stored[..., time])
        time_point = dataclasses.replace(context, values=context.values[..., time], encoded=encoded)
        for index in range(n_slices):
            dataset = _single_slice_dataset(time_point, index)
            dataset.InstanceNumber = time * n_slices + index + 1
            dataset.TemporalPositionIdentifier = time + 1
            dataset.NumberOfTemporalPositions = n_times
            datasets.append(dataset)
    return datasets


def write_dicom_file(image: Image, path: str | Path, dtype: str | np.dtype | None = None) -> Path:
    """Write one ``.dcm`` file of the input's IOD (see the module docstring)."""
    path = Path(path)
    with library_errors(path, "write DICOM"):
        datasets = build_datasets(prepare(path, image, dtype, single_file=True))
        if len(datasets) != 1:
            raise InputError(path, "internal: a one-file DICOM output produced several objects")
        with atomic_path(path, suffix=".dcm") as temporary:
            datasets[0].save_as(temporary, enforce_file_format=True)
    return path


def _replaceable(folder: Path) -> bool:
    """An existing folder may be replaced only when it is empty or holds a series we wrote."""
    return all(entry.is_file() and _SERIES_FILE.fullmatch(entry.name) for entry in folder.iterdir())


def _publish_folder(temporary: Path, destination: Path) -> None:
    """Rename ``temporary`` onto ``destination``, swapping out a previous series folder."""
    if not destination.exists():
        os.replace(temporary, destination)
        return
    backup = destination.with_name(f"{partial_name(destination)}old-{uuid.uuid4().hex[:8]}")
    os.replace(destination, backup)
    try:
        os.replace(temporary, destination)
    except BaseException:
        os.replace(backup, destination)
        raise
    shutil.rmtree(backup, ignore_errors=True)


def write_dicom_series(image: Image, path: str | Path, dtype: str | np.dtype | None = None) -> Path:
    """Write a series folder of files ``0001.dcm``... (atomically): one per slice, or one
    multi-frame NM object."""
    destination = Path(path)
    if destination.exists() and (not destination.is_dir() or not _replaceable(destination)):
        raise InputError(
            destination, "exists and is not an empty folder or a previous DICOM series; choose a new folder"
        )
    with library_errors(destination, "write DICOM series"):
        datasets = build_datasets(prepare(destination, image, dtype, single_file=False))
        destination.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_partials(destination)  # what a killed earlier write of this series left
        temporary = destination.parent / f"{partial_name(destination)}{uuid.uuid4().hex[:12]}"
        temporary.mkdir()  # unlike mkdtemp, honours the umask (mkdtemp makes it private)
        try:
            width = max(4, len(str(len(datasets))))
            for index, dataset in enumerate(datasets, start=1):
                dataset.save_as(temporary / f"{index:0{width}d}.dcm", enforce_file_format=True)
            _publish_folder(temporary, destination)
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise
    return destination
