"""The public Python API: every workflow as one call on images in memory.

Each function takes an :class:`~medrestore.Image` (or :class:`~medrestore.KSpace`), or a path to
one, and returns a :class:`Result`: the restored image (or the scores) and a ``record`` of what was
done — the method, model, parameters and seeds the command line writes to its ``OUT.json``::

    image, record = medrestore.denoise(noisy, modality="mri", method="nlm")

The command line is a shell over these functions: each ``medrestore`` workflow command parses
its options and calls the function of the same name with ``output=`` its ``-o`` path, so a call and
the equivalent command give the same result and the same record. With ``output`` the result is
written there (beside it the record as ``OUTPUT.json``) and :attr:`Result.output` is that path;
without it the result comes back in memory. Workflows that are defined on files (denoising,
super-resolution, harmonisation, degradation: they read, guard and record files) run an in-memory
image through a private temporary copy in NumPy ``.npz`` form, which keeps the data, its dtype, its
voxel→world affine and modality; the temporary files are deleted before the call returns, and the
record names no path but the caller's. Reconstruction and scoring run in memory.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medrestore.core.device import DEFAULT_DEVICE
from medrestore.core.errors import ConfigError, InputError

if TYPE_CHECKING:
    from medrestore.core.image import Image
    from medrestore.core.kspace import KSpace

__all__ = ["Result", "degrade", "denoise", "evaluate", "harmonize", "nema", "recon", "superres"]

MEMORY = "<memory>"
"""What a record says in place of the temporary file that held an in-memory image."""
MEMORY_IMAGE = "in-memory image"
"""What an error about an in-memory image names in place of a file."""

_FILE_KEYS = ("source_path", "format", "npz_members")
"""Metadata the reader adds about the temporary file, left out of a returned image."""


@dataclasses.dataclass(frozen=True)
class Result:
    """What an API call returns: ``output`` (an :class:`~medrestore.Image`; the written file's path when
    the call was given ``output=``; ``{metric: value}`` for :func:`evaluate`) and ``record``, a JSON-ready
    dict of what was done.

    It unpacks as a pair: ``image, record = medrestore.denoise(...)``.
    """

    output: Any
    record: dict[str, Any]

    def __iter__(self) -> Iterator[Any]:
        yield self.output
        yield self.record


def _image(source: Image | str | Path, nonfinite: str = "refuse") -> Image:
    """``source`` itself, or the image read from the path ``source`` (NaN/±Inf policy ``nonfinite``)."""
    if isinstance(source, (str, Path)):
        from medrestore.io import read_image

        return read_image(source, nonfinite=nonfinite)
    return source


def _jsonable(value: Any, replace: Mapping[str, str]) -> Any:
    """``value`` with paths as strings (temporary ones replaced by ``replace``), tuples as lists, dataclasses as dicts."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item, replace) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item, replace) for item in value]
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, str):
        for temporary, shown in replace.items():
            value = value.replace(temporary, shown)
    return value


def _through_files(source: Image | str | Path, task: Callable[[Path, Path], Any], output: str | Path | None = None) -> Result:
    """Run the file workflow ``task(input, output)`` on ``source``.

    A path ``source`` is read where it lies (never modified); an :class:`Image` is written to a private
    temporary folder as ``.npz`` in its own dtype (float32 where that would lose values: an image scaled on reading). The result goes to ``output`` when given (and
    :attr:`Result.output` is that path), else to the temporary folder, from which it is read back.
    The folder is deleted before the call returns.
    """
    from medrestore.io import read_image, write_image
    from medrestore.io.values import output_dtype

    with tempfile.TemporaryDirectory(prefix="medrestore-") as folder:
        work = Path(folder)
        output_path = work / "output.npz" if output is None else Path(output)
        replace = {str(work / "input.npz"): MEMORY, str(work / "output.npz"): MEMORY}
        if isinstance(source, (str, Path)):
            input_path = Path(source)
        else:
            input_path = work / "input.npz"
            # its own dtype, unless that would lose values (scaled on reading, or outside the type's range): float32
            write_image(source, input_path, dtype=output_dtype(source, source.numpy())[0] if "dtype" in source.metadata else None)
        try:
            record = task(input_path, output_path)
        except InputError as error:
            if error.path is None or not error.path.is_relative_to(work):
                raise
            raise InputError(None, f"{MEMORY_IMAGE}: {error.problem}") from error  # not a deleted temporary file
        replace[str(work)] = MEMORY
        if output is not None:
            return Result(output_path, _jsonable(record, replace))
        result = read_image(output_path)
        kept = {key: value for key, value in result.metadata.items() if key not in _FILE_KEYS}
        return Result(dataclasses.replace(result, metadata=kept), _jsonable(record, replace))


def denoise(
    image: Image | str | Path,
    modality: str,
    method: str = "auto",
    model: str | None = None,
    sigma: float | str | None = "auto",
    device: str = DEFAULT_DEVICE,
    nonfinite: str = "refuse",
    frames: Sequence[str | Path] | None = None,
    output: str | Path | None = None,
) -> Result:
    """Denoise ``image`` as ``medrestore denoise`` does (:func:`medrestore.tasks.denoise.denoise_file`).

    Args:
        image: an OCT B-scan or stack of them ``(H, W)``/``(H, W, B)`` on its stored scale, or an MRI
            image ``(X, Y)``, volume ``(X, Y, Z)`` or series ``(X, Y, Z, T)`` in its own intensity units.
        modality: ``"oct"`` (the shipped ResUNet ensemble by default) or ``"mri"``.
        method: MRI only: ``auto``, ``nlm``, ``nlm-wiener``, ``pri-nlm``, ``unet``, ``unet3d``,
            ``unet3d-nlm``, ``gan``; 4-D series ``mppca`` or ``patch2self``.
        model: zoo name or checkpoint in place of the default network.
        sigma: MRI only: noise σ in image units, or ``"auto"`` to estimate it per volume.
        device: ``auto`` (CUDA, then MPS, else CPU), ``cpu``, ``cuda``…
        nonfinite: NaN/±Inf policy, ``"refuse"`` or ``"zero"`` (:mod:`medrestore.io.values`).
        frames: OCT multi-frame models: files of the neighbouring frames of the same location
            (each the shape of ``image``).
        output: file to write (its extension picks the format); ``None`` returns the image in memory.

    Returns:
        :class:`Result`: the denoised image (same shape and geometry; with ``output``, its path) and
        the workflow's record (method, model, σ per volume, timings).
    """
    from medrestore.tasks.denoise import denoise_file

    return _through_files(
        image,
        lambda source, target: denoise_file(source, target, modality, model, None if frames is None else list(frames), device,
                                            method=method, sigma=sigma, nonfinite=nonfinite),
        output,
    )


def superres(
    image: Image | str | Path,
    scale: int = 4,
    method: str | None = None,
    model: str | None = None,
    device: str = DEFAULT_DEVICE,
    modality: str = "nm",
    nonfinite: str = "refuse",
    *,
    iterations: int | None = None,
    ensemble: int | None = None,
    collimator: str | None = None,
    isotope: str = "Tc-99m",
    distance_mm: float = 100.0,
    pixel_size_mm: float | None = None,
    fwhm_mm: float | None = None,
    output: str | Path | None = None,
) -> Result:
    """Super-resolve a planar scintigram ``(H, W)`` (or frames ``(H, W, F)``) in counts by ``scale``
    per axis, as ``medrestore superres`` does (:func:`medrestore.tasks.superres.superres_file`).

    ``method`` ``None`` is the command's default. The camera (``collimator``, ``"INTR"`` for an intrinsic acquisition;
    ``None``: the one an NM DICOM input names in ``CollimatorGridName``, else LEGP; ``isotope``, source distance
    ``distance_mm``) applies when the image's ``degrade`` record names none; ``pixel_size_mm`` is the
    output pixel size (default: the record's, else the input spacing / ``scale``). ``fwhm_mm``: the camera's
    measured system FWHM in mm (e.g. a NEMA line-source FWHM), in place of the collimator model's. ``iterations``:
    ML-EM iterations (default per method; ``dct-mlem``'s grow with a response wider than 9 output pixels); ``ensemble``: views averaged by the network methods.
    ``nonfinite``: NaN/±Inf policy, ``"refuse"`` or ``"zero"`` (:mod:`medrestore.io.values`), as for
    every call. ``output``: file to write (``None``: in memory). Returns the ``(scale·H, scale·W)``
    image (total counts kept) and the sidecar record.
    """
    from medrestore.physics.gamma_camera import DEFAULT_COLLIMATOR, PlanarAcquisition
    from medrestore.tasks.superres import SuperResolutionRequest, superres_file

    request = SuperResolutionRequest(
        modality=modality, scale=scale, model=model, device=device, iterations=iterations, ensemble=ensemble,
        acquisition=PlanarAcquisition(collimator or DEFAULT_COLLIMATOR, isotope, distance_mm),
        collimator_from_image=collimator is None, pixel_size_mm=pixel_size_mm, fwhm_mm=fwhm_mm,
        nonfinite=nonfinite,
    )  # fmt: skip
    if method is not None:
        request = dataclasses.replace(request, method=method)
    return _through_files(image, lambda source, target: superres_file(source, target, request), output)


def harmonize(
    image: Image | str | Path,
    model: str,
    direction: str = "b2a",
    noise_level: float | None = None,
    seed: int = 0,
    grid: int | None = None,
    nonfinite: str = "refuse",
    output: str | Path | None = None,
) -> Result:
    """Harmonise an MRI slice ``(H, W)`` or volume ``(X, Y, Z)`` between scanners a (1.5 T) and b (3 T),
    as ``medrestore harmonize`` does (:func:`medrestore.tasks.harmonize.harmonize_file`).

    ``model`` has no default on purpose (see ``medrestore harmonize --help``). ``output``: file to
    write (``None``: in memory). Returns the harmonised image (same geometry) and the record.
    """
    from medrestore.tasks.harmonize import harmonize_file

    return _through_files(
        image, lambda source, target: harmonize_file(source, target, model, direction, noise_level, seed, grid, nonfinite), output
    )


def degrade(
    image: Image | str | Path,
    kind: str,
    seed: int = 0,
    nonfinite: str = "refuse",
    *,
    dtype: str = "float32",
    output: str | Path | None = None,
    **parameters: float | int | str | bool,
) -> Result:
    """Degrade ``image`` with the forward model ``kind`` (``gaussian``, ``rician``, ``poisson``,
    ``speckle``, ``blur-downsample``, ``gamma-camera``, ``scanner``) and its ``parameters``
    (e.g. ``sigma=0.05``, ``peak_counts=100``, ``factor=2``), as ``medrestore degrade`` does
    (:func:`medrestore.tasks.degrade.degrade_file`). ``dtype``: ``float32`` or ``source`` (the input's).
    ``output``: file to write (``None``: in memory). Returns the degraded image and the record (kind,
    parameters, seed, input digest).
    """
    from medrestore.tasks.degrade import degrade_file

    return _through_files(
        image, lambda source, target: degrade_file(source, target, kind, parameters, seed, dtype, nonfinite), output
    )


def recon(
    kspace: KSpace | str | Path,
    method: str = "auto",
    lam: float | None = None,
    iterations: int | None = None,
    coil_maps: str = "espirit",
    device: str = DEFAULT_DEVICE,
    trajectory: str | Path | None = None,
    delay_correction: str = "auto",
    *,
    maps: int = 1,
    espirit_crop: float | None = None,
    virtual_coils: int | None = None,
    coil_energy: float | None = None,
    compression: str = "auto",
    delay: Sequence[float] | None = None,
    average: bool = False,
    reference: str | Path | None = None,
    output: str | Path | None = None,
) -> Result:
    """Reconstruct a magnitude image from multi-coil k-space ``(*batch, coils, ky, kx)`` (Cartesian, or
    radial with its trajectory), as ``medrestore recon`` does
    (:func:`medrestore.tasks.recon.reconstruct_any`: Cartesian SENSE/CS/networks, or radial with the
    gradient delay estimated and corrected first).

    Args:
        kspace: a :class:`~medrestore.KSpace` or a raw file (twix, ISMRMRD/fastMRI ``.h5``, BART ``.cfl``, ``.npz``).
        method: as ``recon --method`` (``auto``: the classical default for the data).
        lam: absolute regularisation weight; ``None``: chosen per slice by k-space hold-out cross-validation.
        iterations: solver iterations; ``None``: the method's default.
        coil_maps: ``"espirit"`` or a maps file, or a body-coil k-space file of the same slice.
        device: ``auto`` (CUDA, then MPS, else CPU), ``cpu``, ``cuda``…
        trajectory: the BART trajectory ``.cfl`` of a BART k-space file given by path; an in-memory radial
            :class:`~medrestore.KSpace` carries its own.
        delay_correction: radial only (``auto``, ``ring``, ``ac-adaptive``, ``none``).
        maps: ESPIRiT map sets (2: soft-SENSE, one image per set combined by root-sum-of-squares).
        espirit_crop: ESPIRiT eigenvalue crop (BART ``ecalib -c``; ``None``: the default, 0 keeps the whole field).
        virtual_coils: compress to this many virtual coils (BART ``cc -p``) before the maps and the solve.
        coil_energy: compress to the fewest virtual coils keeping this fraction of the calibration energy.
        compression: ``svd``, ``geometric`` or ``auto`` (geometric when the lines are complete along the readout).
        delay: radial only: a known delay ``(dx, dy[, dxy])`` in samples, used instead of estimating one.
        average: average repeated acquisitions instead of reconstructing each.
        reference: image (or fastMRI ``.h5``) to score against with fastMRI's metrics, after the
            least-squares intensity fit (record key ``metrics``).
        output: file to write, with the record as ``OUTPUT.json`` (``None``: in memory).

    Returns:
        The image ``(ny, nx)`` (or ``(slices, ny, nx)``) with the k-space's geometry (with ``output``, its
        path) and the record ``recon`` writes (method run, its regularisation weight and how it was chosen,
        iterations, seconds, ``auto``'s decision; for radial data the delay and its decision).
    """
    from medrestore.io import read_kspace, write_kspace
    from medrestore.tasks.radial import delay_from_values
    from medrestore.tasks.recon import CLASSICAL_ESPIRIT, ReconOptions, coil_compression_option, reconstruct_any, reconstruct_file, \
        score_against_file

    espirit = dataclasses.replace(CLASSICAL_ESPIRIT, maps=maps, crop=CLASSICAL_ESPIRIT.crop if espirit_crop is None else espirit_crop)
    options = ReconOptions(method, coil_maps, lam, iterations, device, espirit, delay_correction=delay_correction,
                           delay=None if delay is None else delay_from_values(list(delay)), average=average,
                           coil_compression=coil_compression_option(virtual_coils, coil_energy, compression))
    if output is not None:
        with tempfile.TemporaryDirectory(prefix="medrestore-") as folder:
            source = kspace
            if not isinstance(kspace, (str, Path)):
                source = Path(folder) / "kspace.npz"
                write_kspace(kspace, source)
            report = reconstruct_file(source, output, options, reference, trajectory)
            return Result(Path(output), _jsonable(report, {str(Path(folder) / "kspace.npz"): MEMORY, folder: MEMORY}))
    data = read_kspace(kspace, trajectory, average) if isinstance(kspace, (str, Path)) else kspace
    result, fields = reconstruct_any(data, options)
    record = {"input": str(kspace) if isinstance(kspace, (str, Path)) else MEMORY, **fields, "options": _jsonable(options, {})}
    if reference is not None:
        record["metrics"] = score_against_file(result.image.data, reference)
        record["reference"] = str(reference)
    return Result(result.image, record)


def evaluate(
    pred: Image | str | Path,
    ref: Image | str | Path,
    convention: str = "default",
    mask: Image | str | Path | None = None,
    nonfinite: str = "refuse",
) -> Result:
    """Score ``pred`` against ``ref`` (one shape) under ``convention`` (``default``, ``fastmri``, ``oct``),
    inside ``mask`` (nonzero = inside) when given, as ``medrestore evaluate`` does: a series
    ``(*spatial, T)`` is scored as a stack of ``T`` images (:func:`medrestore.tasks.evaluate.evaluate_images`).

    Paths may name folders (every file of ``pred`` scored against the file of the same name in ``ref``,
    :func:`medrestore.tasks.evaluate.evaluate_files`): the record then lists ``files`` with their scores
    and the returned scores are their mean. ``nonfinite``: the readers' NaN/±Inf policy.

    A nuclear-medicine reference (modality ``nm``) is scored as counts: its negative values are set to 0,
    with a warning and ``clipped_negative`` in the record.

    Returns ``{metric: value}`` (PSNR in dB, SSIM, NMSE, MAE) and the record (``pred``, ``ref``, ``mask``,
    ``convention``; ``shape`` for images in memory)."""
    from medrestore.io.values import CLIPPED_KEY
    from medrestore.tasks.evaluate import counts_reference, evaluate_files, evaluate_images

    if all(isinstance(item, (str, Path)) or item is None for item in (pred, ref, mask)):
        record = evaluate_files(pred, ref, mask, convention, nonfinite)  # type: ignore[arg-type]
        return Result(record.pop("metrics"), record)

    def named(item: Image | str | Path | None) -> str | None:
        return None if item is None else str(item) if isinstance(item, (str, Path)) else MEMORY

    clipped: dict[str, Any] = {}
    prediction = _image(pred, nonfinite)
    reference = counts_reference(_image(ref, nonfinite), named(ref), clipped)
    metrics = evaluate_images(prediction, reference, convention, None if mask is None else _image(mask, nonfinite))
    record = {"pred": named(pred), "ref": named(ref), "mask": named(mask), "convention": convention, "shape": list(prediction.shape)}
    if clipped:
        record[CLIPPED_KEY] = clipped
    return Result(metrics, record)


def nema(
    image: Image | str | Path,
    measure: str,
    lines: int = 1,
    along: str = "auto",
    strip_mm: float = 30.0,
    nonfinite: str = "refuse",
    bar_widths_mm: Sequence[float] | None = None,
) -> Result:
    """NEMA NU 1 measures of a planar gamma-camera QC acquisition in counts, as ``medrestore nema`` computes them
    (:mod:`medrestore.tasks.nema`): ``measure="lines"`` — FWHM/FWTM (mm) of ``lines`` parallel line sources running
    ``along`` (``"vertical"``, ``"horizontal"`` or ``"auto"``), profiles summed over ``strip_mm`` strips;
    ``measure="flood"`` — integral and differential uniformity (%); ``measure="bars"`` — each quadrant of a
    four-quadrant bar image (bar direction and width, contrast, modulation, resolved), at the frequencies of the
    phantom's ``bar_widths_mm`` when given. The pixel size is the image's.

    Returns the measures (``{"fwhm_mm", "fwtm_mm"}``, the uniformity values, or ``{"quadrants": [...]}``; for an
    image of several planar frames, such as a dual-head flood, ``{"frames": [one per frame]}``) and the whole record
    (per line, pixel size, direction; ``input``).
    """
    from medrestore.tasks.nema import MEASURES, bar_measure, flood_measure, line_measure

    if measure not in MEASURES:
        raise ConfigError(f"the NEMA measures are {', '.join(MEASURES)}, not {measure!r}")
    path = image if isinstance(image, (str, Path)) else None
    source = _image(image, nonfinite)
    if measure == "lines":
        record = line_measure(source, path, lines, along, strip_mm)
    elif measure == "flood":
        record = flood_measure(source, path)
    else:
        record = bar_measure(source, path, None if bar_widths_mm is None else tuple(float(w) for w in bar_widths_mm))
    record = {"input": str(path) if path is not None else MEMORY, **record}

    def measures(frame: dict[str, Any]) -> dict[str, Any]:
        if measure == "lines":
            return {"fwhm_mm": frame["fwhm_mm"], "fwtm_mm": frame["fwtm_mm"]}
        return dict(frame["uniformity"]) if measure == "flood" else {"quadrants": frame["quadrants"]}

    output = {"frames": [measures(frame) for frame in record["frames"]]} if "frames" in record else measures(record)
    return Result(output, record)
