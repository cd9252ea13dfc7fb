"""Siemens raw data (twix ``.dat``, VB and VD/VE/XA) through the ``twixtools`` package.

Only image-scan lines (``mdb.is_image_scan()``) of the last measurement of the file are used
(earlier measurements of a multi-raid file are adjustment and noise scans); noise, navigator
and phase correction lines are skipped. Lines are placed by their ``Lin`` counter (and ``Par``
for 3-D); ``Sli`` (a stack of slices), ``Ave``, ``Eco`` and ``Rep`` become batch axes
``(repetitions, echoes, averages, slices, coils, ny, nx)`` — only those with more than one value,
named in ``metadata["batch_axes"]`` (:func:`~medrestore.io.raw_common.assemble_lines`).
Averages are averaged only on request (``average=True``); lines with identical counters are
averaged. Several ``Phs`` or ``Set`` values, or one line in several ``Seg`` values, are refused.

Readout oversampling: when the protocol's ``flReadoutOSFactor`` (``Meas``) is above 1, every
line is cropped to the central ``samples / factor`` points in image space (inverse FFT along
the readout, crop, FFT back) — what the scanner does before reconstruction. Pulseq sequences
report 1.0 there and keep all samples.

Geometry: pixel spacing = field of view / matrix (``sSliceArray.asSlice[0]``: ``dPhaseFOV``,
``dReadoutFOV``, ``dThickness``); the affine is diagonal in array order ``(ky, kx)``.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import numpy as np

from medrestore.core.errors import InputError
from medrestore.core.kspace import KSpace
from medrestore.io.common import library_errors
from medrestore.io.raw_common import LineCounters, assemble_lines, build_kspace


_TWIX_COUNTERS = {"line": "Lin", "partition": "Par", "slice": "Sli", "average": "Ave", "contrast": "Eco",
                  "repetition": "Rep", "phase": "Phs", "set": "Set", "segment": "Seg"}


def _import_twixtools() -> Any:
    try:
        import twixtools
    except ImportError as error:
        raise InputError(None, "reading Siemens twix files needs the 'twixtools' package (pip install twixtools)") from error
    return twixtools


def _protocol_value(header: dict[str, Any], *keys: str) -> Any:
    """A nested header entry, or ``None`` when any key is missing."""
    value: Any = header
    for key in keys:
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and isinstance(key, int) and key < len(value):
            value = value[key]
        else:
            return None
    return value


def _header_metadata(header: dict[str, Any]) -> dict[str, Any]:
    yaps = header.get("MeasYaps", {})
    dicom = header.get("Dicom", {})
    slice_info = _protocol_value(yaps, "sSliceArray", "asSlice") or [{}]
    return {
        "vendor": "Siemens",
        "format": "twix",
        "scanner": dicom.get("ManufacturersModelName"),
        "field_strength_t": dicom.get("flMagneticFieldStrength"),
        "protocol": yaps.get("tProtocolName"),
        "sequence": yaps.get("tSequenceFileName"),
        "repetition_time_us": (yaps.get("alTR") or [None])[0],
        "echo_time_us": (yaps.get("alTE") or [None])[0],
        "flip_angle_deg": (yaps.get("adFlipAngleDegree") or [None])[0],
        "readout_fov_mm": slice_info[0].get("dReadoutFOV"),
        "phase_fov_mm": slice_info[0].get("dPhaseFOV"),
        "slice_thickness_mm": slice_info[0].get("dThickness"),
        "readout_oversampling": float(header.get("Meas", {}).get("flReadoutOSFactor", 1.0) or 1.0),
    }


def _remove_oversampling(lines: np.ndarray, factor: float) -> np.ndarray:
    """Crop the readout (last axis) to its central ``n / factor`` points in image space."""
    samples = lines.shape[-1]
    kept = int(round(samples / factor))
    image = np.fft.fftshift(np.fft.ifft(np.fft.ifftshift(lines, axes=-1), axis=-1, norm="ortho"), axes=-1)
    start = samples // 2 - kept // 2
    cropped = image[..., start : start + kept]
    return np.fft.fftshift(np.fft.fft(np.fft.ifftshift(cropped, axes=-1), axis=-1, norm="ortho"), axes=-1)


def _counters(mdb: Any) -> LineCounters:
    """The twix counters of one line (``Lin Par Sli Ave Eco Rep Phs Set Seg``)."""
    return LineCounters(int(mdb.cLin), int(mdb.cPar), int(mdb.cSlc), int(mdb.cAve), int(mdb.cEco), int(mdb.cRep),
                        int(mdb.cPhs), int(mdb.cSet), int(mdb.cSeg))


def read_twix(path: str | Path, average: bool = False) -> KSpace:
    """Read the image-scan k-space of a Siemens twix file.

    Args:
        path: the ``.dat`` file.
        average: average the ``Ave`` counter's lines instead of keeping them as a batch axis.

    Returns:
        :class:`KSpace` ``(*batch, coils, ny, nx)`` — ``(coils, ny, nx)`` for one 2-D slice,
        ``(slices, coils, ny, nx)`` for several (batch axes as in the module notes) — or
        ``(*batch, coils, nz, ny, nx)`` for a 3-D (partition-encoded) scan. Lines never
        acquired are zeros and define the mask.

    Raises:
        InputError: missing/corrupt file, no image lines, NaN samples, several cardiac phases or sets.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    twixtools = _import_twixtools()
    with library_errors(path, "read the Siemens twix file"), contextlib.redirect_stdout(io.StringIO()):
        measurements = twixtools.read_twix(str(path), verbose=False)
        measurement = measurements[-1]
        scans = [mdb for mdb in measurement["mdb"] if mdb.is_image_scan()]
    if not scans:
        raise InputError(path, "the twix file holds no image-scan lines")
    assembled = assemble_lines(path, [(_counters(mdb), mdb.data) for mdb in scans], None, average, _TWIX_COUNTERS)
    metadata = {**_header_metadata(measurement["hdr"]), "measurements": len(measurements),
                "batch_axes": list(assembled.batch_axes), "batch_values": assembled.batch_values}
    data = assembled.data
    factor = metadata["readout_oversampling"]
    if factor > 1:
        data = _remove_oversampling(data, factor)
    metadata["readout_oversampling_removed"] = factor > 1
    three_d = data.shape[-3] > 1
    data = data if three_d else data[..., 0, :, :]
    ny, nx = data.shape[-2], data.shape[-1]
    spacing_y = float(metadata["phase_fov_mm"] or ny) / ny
    spacing_x = float(metadata["readout_fov_mm"] or nx) / nx
    spacing: tuple[float, ...] = (spacing_y, spacing_x)
    if three_d:
        spacing = (float(metadata["slice_thickness_mm"] or data.shape[-3]) / data.shape[-3], *spacing)
    else:
        spacing = (*spacing, float(metadata["slice_thickness_mm"] or 1.0))
    grid_ndim = 3 if three_d else 2
    kspace = build_kspace(path, data.astype(np.complex64), spacing, metadata, None, grid_ndim)
    return kspace
