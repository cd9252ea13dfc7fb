"""The public Python API: every workflow as one call on images in memory.

Each function takes an :class:`~medrestore.Image` (or :class:`~medrestore.KSpace`), or a path to
one, and returns a :class:`Result`: the restored image (or the scores) and a ``record`` of what was
done — the method, model, parameters and seeds the command line writes to its ``OUT.json``::

    image, record = medrestore.denoise(noisy, modality="mri", method="nlm")

The functions are thin: they run the same task functions as the command line
(:mod:`medrestore.tasks`), so a call and the equivalent ``medrestore`` command give the same
result and the same record. Workflows that are defined on files (denoising, super-resolution,
harmonisation, degradation: they read, guard and record files) run on a private temporary copy
of the image in NumPy ``.npz`` form, which keeps the data, its dtype, its voxel→world affine and
modality; the temporary files are deleted before the call returns, and the record names no path
but the caller's. Reconstruction and scoring run in memory.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medrestore.core.device import DEFAULT_DEVICE
from medrestore.core.errors import InputError

if TYPE_CHECKING:
    from medrestore.core.image import Image
    from medrestore.core.kspace import KSpace

__all__ = ["Result", "degrade", "denoise", "evaluate", "harmonize", "recon", "superres"]

MEMORY = "<memory>"
"""What a record says in place of the temporary file that held an in-memory image."""
MEMORY_IMAGE = "in-memory image"
"""What an error about an in-memory image names in place of a file."""

_FILE_KEYS = ("source_path", "format", "npz_members")
"""Metadata the reader adds about the temporary file, left out of a returned image."""


@dataclasses.dataclass(frozen=True)
class Result:
    """What an API call returns: ``output`` (an :class:`~medrestore.Image`, or ``{metric: value}``
    for :func:`evaluate`) and ``record``, a JSON-ready dict of what was done.

    It unpacks as a pair: ``image, record = medrestore.denoise(...)``.
    """

    output: Any
    record: dict[str, Any]

    def __iter__(self) -> Iterator[Any]:
        yield self.output
        yield self.record


def _image(source: Image | str | Path) -> Image:
    """``source`` itself, or the image read from the path ``source``."""
    if isinstance(source, (str, Path)):
        from medrestore.io import read_image

        return read_image(source)
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


def _through_files(source: Image | str | Path, task: Callable[[Path, Path], Any]) -> Result:
    """Run the file workflow ``task(input, output)`` on ``source`` via a private temporary folder.

    A path ``source`` is read where it lies (never modified); an :class:`Image` is written there
    as ``.npz`` in its own dtype. The output is read back, and the folder is deleted.
    """
    from medrestore.io import read_image, write_image

    with tempfile.TemporaryDirectory(prefix="medrestore-") as folder:
        work = Path(folder)
        output_path = work / "output.npz"
        replace = {str(work / "input.npz"): MEMORY, str(output_path): MEMORY}
        if isinstance(source, (str, Path)):
            input_path = Path(source)
        else:
            input_path = work / "input.npz"
            write_image(source, input_path, dtype="source" if "dtype" in source.metadata else None)
        try:
            record = task(input_path, output_path)
        except InputError as error:
            if error.path is None or not error.path.is_relative_to(work):
                raise
            raise InputError(None, f"{MEMORY_IMAGE}: {error.problem}") from error  # not a deleted temporary file
        output = read_image(output_path)
        kept = {key: value for key, value in output.metadata.items() if key not in _FILE_KEYS}
        output = dataclasses.replace(output, metadata=kept)
        replace[str(work)] = MEMORY
        return Result(output, _jsonable(record, replace))


def denoise(
    image: Image | str | Path,
    modality: str,
    method: str = "auto",
    model: str | None = None,
    sigma: float | str | None = "auto",
    device: str = DEFAULT_DEVICE,
    nonfinite: str = "refuse",
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

    Returns:
        :class:`Result`: the denoised image (same shape and geometry) and the workflow's record
        (method, model, σ per volume, timings).
    """
    from medrestore.tasks.denoise import denoise_file

    return _through_files(
        image,
        lambda source, target: denoise_file(source, target, modality, model, None, device, method=method, sigma=sigma, nonfinite=nonfinite),
    )


def superres(
    image: Image | str | Path,
    scale: int = 4,
    method: str | None = None,
    model: str | None = None,
    device: str = DEFAULT_DEVICE,
    modality: str = "nm",
    nonfinite: str = "refuse",
) -> Result:
    """Super-resolve a planar scintigram ``(H, W)`` (or frames ``(H, W, F)``) in counts by ``scale``
    per axis, as ``medrestore superres`` does (:func:`medrestore.tasks.superres.superres_file`).

    ``method`` ``None`` is the command's default; the camera (collimator, distance, isotope) is
    the command's default unless the image's record names it. ``nonfinite``: NaN/±Inf policy,
    ``"refuse"`` or ``"zero"`` (:mod:`medrestore.io.values`), as for every call. Returns the ``(scale·H, scale·W)``
    image (total counts kept) and the sidecar record.
    """
    from medrestore.tasks.superres import SuperResolutionRequest, superres_file

    request = SuperResolutionRequest(modality=modality, scale=scale, model=model, device=device, nonfinite=nonfinite)
    if method is not None:
        request = dataclasses.replace(request, method=method)
    return _through_files(image, lambda source, target: superres_file(source, target, request))


def harmonize(
    image: Image | str | Path,
    model: str,
    direction: str = "b2a",
    noise_level: float | None = None,
    seed: int = 0,
    grid: int | None = None,
    nonfinite: str = "refuse",
) -> Result:
    """Harmonise an MRI slice ``(H, W)`` or volume ``(X, Y, Z)`` between scanners a (1.5 T) and b (3 T),
    as ``medrestore harmonize`` does (:func:`medrestore.tasks.harmonize.harmonize_file`).

    ``model`` has no default on purpose (see ``medrestore harmonize --help``). Returns the
    harmonised image (same geometry) and the record.
    """
    from medrestore.tasks.harmonize import harmonize_file

    return _through_files(image, lambda source, target: harmonize_file(source, target, model, direction, noise_level, seed, grid, nonfinite))


def degrade(
    image: Image | str | Path, kind: str, seed: int = 0, nonfinite: str = "refuse", **parameters: float | int | str | bool
) -> Result:
    """Degrade ``image`` with the forward model ``kind`` (``gaussian``, ``rician``, ``poisson``,
    ``speckle``, ``blur-downsample``, ``gamma-camera``, ``scanner``) and its ``parameters``
    (e.g. ``sigma=0.05``, ``counts=100``, ``factor=2``), as ``medrestore degrade`` does
    (:func:`medrestore.tasks.degrade.degrade_file`). Returns the degraded image (float32) and the
    record (kind, parameters, seed, input digest).
    """
    from medrestore.tasks.degrade import degrade_file

    return _through_files(image, lambda source, target: degrade_file(source, target, kind, parameters, seed, nonfinite=nonfinite))


def recon(
    kspace: KSpace | str | Path,
    method: str = "auto",
    lam: float | None = None,
    iterations: int | None = None,
    coil_maps: str = "espirit",
    device: str = DEFAULT_DEVICE,
    trajectory: str | Path | None = None,
    delay_correction: str = "auto",
) -> Result:
    """Reconstruct a magnitude image from multi-coil k-space ``(*batch, coils, ky, kx)`` (Cartesian, or
    radial with its trajectory), as ``medrestore recon`` does
    (:func:`medrestore.tasks.recon.reconstruct_any`: Cartesian SENSE/CS/networks, or radial with the
    gradient delay estimated and corrected first).

    ``trajectory`` names the BART trajectory ``.cfl`` of a BART k-space file given by path; an
    in-memory radial :class:`~medrestore.KSpace` carries its own. ``delay_correction``: radial only
    (``auto``, ``ring``, ``ac-adaptive``, ``none``).

    Returns the image ``(ny, nx)`` (or ``(slices, ny, nx)``) with the k-space's geometry and the
    record ``recon`` writes (method run, its regularisation weight and how it was chosen,
    iterations, seconds, ``auto``'s decision; for radial data the delay and its decision).
    """
    from medrestore.io import read_kspace
    from medrestore.tasks.recon import ReconOptions, reconstruct_any

    data = read_kspace(kspace, trajectory) if isinstance(kspace, (str, Path)) else kspace
    options = ReconOptions(method=method, coil_maps=coil_maps, lam=lam, iterations=iterations, device=device,
                           delay_correction=delay_correction)
    result, fields = reconstruct_any(data, options)
    record = {"input": str(kspace) if isinstance(kspace, (str, Path)) else MEMORY, **fields, "options": _jsonable(options, {})}
    return Result(result.image, record)


def evaluate(
    pred: Image | str | Path,
    ref: Image | str | Path,
    convention: str = "default",
    mask: Image | str | Path | None = None,
) -> Result:
    """Score ``pred`` against ``ref`` (one shape) under ``convention`` (``default``, ``fastmri``, ``oct``),
    inside ``mask`` (nonzero = inside) when given, as ``medrestore evaluate`` does
    (:func:`medrestore.tasks.evaluate.evaluate_images`: a series ``(*spatial, T)`` is scored as a stack of
    ``T`` images). Returns ``{metric: value}`` (PSNR in dB, SSIM, NMSE, MAE) and the record."""
    from medrestore.tasks.evaluate import evaluate_images

    prediction, reference = _image(pred), _image(ref)
    metrics = evaluate_images(prediction, reference, convention, None if mask is None else _image(mask))
    record = {
        "prediction": str(pred) if isinstance(pred, (str, Path)) else MEMORY,
        "reference": str(ref) if isinstance(ref, (str, Path)) else MEMORY,
        "convention": convention,
        "masked": mask is not None,
        "shape": list(prediction.shape),
    }
    return Result(metrics, record)
