"""Gamma-camera super-resolution ×4 on real camera images beside the simulated sets, with NEMA measures.

Real images: ``../shared/data/nm-nmqc`` (a Mediso Nucline camera's QC acquisitions, Apache-2.0):
four-bar, two line sources, line grid, flood, and the middle slice of a reconstructed SPECT
Jaszczak phantom; and a real whole-body bone scan from pydicom's test files (``JPEG2000.dcm``, 1024 × 256,
2.26-mm pixels, its negative background set to 0 as ``degrade`` does). No clean truth exists, so each is treated as the *original*: degraded by our
camera model (``medrestore degrade --kind gamma-camera`` defaults: LEGP at 10 cm, Tc-99m, ×4
binning, the original's total counts, pixel size from the DICOM) and restored ×4 by each method,
scored against it (PSNR/SSIM, ``default`` convention; total-count error). Beside those, the NEMA
NU 1 measures of :mod:`medrestore.metrics.nema` on the original, the coarse acquisition and each
restoration: line-source FWHM/FWTM (``Spatial_Resol_X``), line-grid contrast (``Lin_X``), flood
integral/differential uniformity (``UNIFORMIDAD_1``); and the line-source widths of each method
applied to the original itself (a crop around the lines, output pixels 4× finer).

Simulated sets: those of ``benchmarks/nm_superres.py`` (paper phantoms at 1 and 2.4 mm, bone scans), and
two quadrant-bar acquisitions (:func:`~medrestore.data.nm_phantoms.quadrant_bar_phantom`: a flood through
2.0–3.5-mm and 3.2–6.4-mm bars, 1-mm pixels, 3.5-mm intrinsic blur, 5 million counts, Poisson) with the
bar contrast of each quadrant before and after.

Methods: ``bicubic``, ``mlem``, ``dct-mlem``, ``dct-mlem-ensemble`` with its networks always applied
(``networks forced``) and as ``superres`` runs it (:func:`~medrestore.tasks.superres.guard_refinement`:
``guarded``). Timing: the whole ``medrestore superres`` command on a 256 × 64 input (the line-source
image binned ×8 across the lines) for each method, alternated with ``--method bicubic`` in the same run,
best of ``--repeats``; the ratios are what to compare (the machine is shared).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/nm_real.py                 # → results/nm_real.json and the tables
    OMP_NUM_THREADS=1 python benchmarks/nm_real.py --skip-simulated --repeats 1
    OMP_NUM_THREADS=2 python benchmarks/nm_real.py --file-collimators --json results/nm_real_file_collimators.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pydicom
import torch

import nm_superres as bench
from medrestore.core.image import Image, affine_from_spacing
from medrestore.io import read_image, write_image
from medrestore.core.random import make_generator
from medrestore.data.nm_phantoms import QUADRANT_BAR_AXES, quadrant_bar_phantom, quadrant_slices
from medrestore.metrics.nema import bar_contrast, flood_uniformity, line_source_widths
from medrestore.physics.blur import gaussian_blur
from medrestore.physics.degradations import GammaCamera, recorded_collimator
from medrestore.physics.gamma_camera import DEFAULT_COLLIMATOR
from medrestore.tasks.superres import (
    CountSuperResolution,
    PlanarAcquisition,
    SystemResponse,
    guard_refinement,
    load_super_resolution,
)

ROOT = Path(__file__).resolve().parents[1]
NMQC = ROOT.parent / "shared" / "data" / "nm-nmqc"
REAL_IMAGES = ("FourBar.dcm", "Spatial_Resol_X.dcm", "Lin_X", "UNIFORMIDAD_1.dcm", "Jaszack.dcm")
BONE_SCAN = Path(pydicom.__file__).parent / "data" / "test_files" / "JPEG2000.dcm"  # a real whole-body bone scan
LINES = "Spatial_Resol_X.dcm"
LINES_CROP = (slice(96, 416), slice(160, 296))  # the two line sources with 60-70 pixels of background
GRID = "Lin_X"
GRID_PROFILE = (slice(300, 700), slice(350, 650))  # rows across 7 grid lines, columns averaged along them
GRID_ROWS = 1024
FLOOD = "UNIFORMIDAD_1.dcm"
METHODS = ("bicubic", "mlem", "dct-mlem", "dct-mlem-ensemble (networks forced)", "dct-mlem-ensemble (guarded)")
TIMED_METHODS = ("bicubic", "dct-mlem", "dct-mlem-ensemble")


def real_images() -> list[tuple[str, torch.Tensor, float]]:
    """``(name, counts (H, W) float64, pixel mm)`` of the shared QC images (the SPECT volume: its middle slice), then
    pydicom's whole-body bone scan with its negative background set to 0 (counts, as ``degrade`` clips them)."""
    images = []
    for path in (*(NMQC / name for name in REAL_IMAGES), BONE_SCAN):
        image = read_image(path)
        data = image.data.to(torch.float64).clamp_min(0)
        if data.ndim == 3:
            data = data[data.shape[0] // 2]
        images.append((path.name, data, float(image.spacing[-1])))
    return images


def load_methods() -> dict[str, CountSuperResolution]:
    plain = {name: load_super_resolution(name, bench.SCALE) for name in ("bicubic", "mlem", "dct-mlem", "dct-mlem-ensemble")}
    return {
        "bicubic": plain["bicubic"], "mlem": plain["mlem"], "dct-mlem": plain["dct-mlem"],
        "dct-mlem-ensemble (networks forced)": plain["dct-mlem-ensemble"], "dct-mlem-ensemble (guarded)": plain["dct-mlem-ensemble"],
    }  # fmt: skip


def restore(
    label: str, method: CountSuperResolution, coarse: torch.Tensor, pixel_mm: float, collimator: str = DEFAULT_COLLIMATOR
) -> tuple[torch.Tensor, dict | None]:
    """``method`` on ``coarse`` (fine pixels of ``pixel_mm``, acquired through ``collimator``); the guarded label goes
    through :func:`guard_refinement`."""
    response = SystemResponse(PlanarAcquisition(collimator), pixel_mm, "benchmark")
    guard = None
    if label.endswith("(guarded)"):
        image = Image(coarse.to(torch.float32), affine_from_spacing((pixel_mm * bench.SCALE,) * 2), 2, "nm", {})
        method, guard = guard_refinement(method, image, response)
    return method(coarse, response.fwhm_pixels), guard


def nema_measures(name: str, image: torch.Tensor, pixel_mm: float) -> dict[str, float]:
    """The NEMA measure of the QC image ``name`` on ``image`` (any grid; ``pixel_mm`` its pixel size)."""
    if name == LINES:
        widths = line_source_widths(image, pixel_mm, lines=2, line_axis=0)
        return {"fwhm_mm": widths.mean_fwhm_mm, "fwtm_mm": widths.mean_fwtm_mm}
    if name == GRID:
        ratio = image.shape[0] / GRID_ROWS  # the profile window is given in the original's pixels
        rows, columns = (slice(round(s.start * ratio), round(s.stop * ratio)) for s in GRID_PROFILE)
        return {"grid_contrast": bar_contrast(image[rows, columns].mean(dim=1))}
    if name == FLOOD:
        return {f"uniformity_{key}": value for key, value in flood_uniformity(image, pixel_mm).record().items() if key != "pixel_mm"}
    return {}


def run_real(methods: dict[str, CountSuperResolution]) -> dict[str, dict[str, dict[str, object]]]:
    results: dict[str, dict[str, dict[str, object]]] = {}
    for index, (name, original, pixel) in enumerate(real_images()):
        coarse = bench.degrade(bench.TestImage(name, original, original, pixel), seed=index)
        rows: dict[str, dict[str, object]] = {
            "original": nema_measures(name, original, pixel),  # type: ignore[dict-item]
            "coarse": nema_measures(name, coarse, pixel * bench.SCALE),  # type: ignore[dict-item]
        }
        for label, method in methods.items():
            started = time.perf_counter()
            restored, guard = restore(label, method, coarse, pixel)
            seconds = time.perf_counter() - started
            row: dict[str, object] = {**bench.score(restored, original, coarse), "seconds": seconds, **nema_measures(name, restored, pixel)}
            if guard is not None:
                row["networks_applied"] = guard["networks_applied"]
                row["guard_reasons"] = guard["reasons"]
            rows[label] = row
            print(f"{name} {label}: " + ", ".join(f"{k} {v:.4g}" for k, v in row.items() if isinstance(v, float)), flush=True)
        results[name] = rows
    return results


def run_line_originals(methods: dict[str, CountSuperResolution]) -> dict[str, dict[str, float]]:
    """Line-source widths of each method applied to the original line-source acquisition itself (a crop)."""
    image = read_image(NMQC / LINES)
    pixel = float(image.spacing[-1])
    crop = image.data.to(torch.float64)[LINES_CROP]
    rows = {"original": nema_measures(LINES, crop, pixel)}
    for label, method in methods.items():
        restored, _ = restore(label, method, crop, pixel / bench.SCALE)
        rows[label] = nema_measures(LINES, restored, pixel / bench.SCALE)
    return rows


def camera_model_check() -> dict[str, float]:
    """The real camera beside our model: the flood's noise against Poisson, the line sources against the default response.

    ``fano``: ``var(x_i − x_{i+1}) / (2 · mean)`` over the central 96 × 96 pixels of the flood, neighbours
    along rows and columns (1 for Poisson counts on a uniform field; differences cancel slow non-uniformity).
    """
    flood = read_image(NMQC / FLOOD).data.to(torch.float64).numpy()[80:176, 80:176]
    differences = np.concatenate([(flood[:, 1:] - flood[:, :-1]).ravel(), (flood[1:] - flood[:-1]).ravel()])
    lines = read_image(NMQC / LINES)
    return {
        "flood_mean_counts": float(flood.mean()), "fano": float(differences.var() / (2.0 * flood.mean())),
        "line_fwhm_mm": nema_measures(LINES, lines.data.to(torch.float64), float(lines.spacing[-1]))["fwhm_mm"],
        "model_response_fwhm_mm": PlanarAcquisition().resolution_mm,
    }  # fmt: skip


QUADRANT_BARS = {"fine bars 2.0/2.5/3.0/3.5 mm": (2.0, 2.5, 3.0, 3.5), "coarse bars 3.2/4.0/4.8/6.4 mm": (3.2, 4.0, 4.8, 6.4)}
QUADRANT_PIXEL_MM, QUADRANT_INTRINSIC_FWHM_MM, QUADRANT_COUNTS = 1.0, 3.5, 5e6


def quadrant_contrasts(image: torch.Tensor) -> list[float]:
    """Bar contrast of each quadrant (:func:`~medrestore.metrics.nema.bar_contrast` of the profile across its bars)."""
    contrasts = []
    for quadrant, axis in enumerate(QUADRANT_BAR_AXES):
        rows, columns = quadrant_slices(image.shape[0], quadrant)
        contrasts.append(bar_contrast(image[rows, columns].mean(dim=1 - axis)))
    return contrasts


def quadrant_bar_acquisition(
    index: int, counts: float = QUADRANT_COUNTS, pixel_mm: float = QUADRANT_PIXEL_MM, collimator: str = DEFAULT_COLLIMATOR
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The ``index``-th simulated quadrant-bar acquisition of :data:`QUADRANT_BARS` (a 512-mm field of ``pixel_mm``
    pixels, 512² of 1 mm unless given): its noise-free
    expectation (a flood through the bars, the camera's intrinsic blur, ``counts`` counts), the Poisson
    draw that stands for the original, and the original acquired ×4 by the chain's camera model through
    ``collimator``."""
    name, widths = list(QUADRANT_BARS.items())[index]
    size = 2 * round(256 * QUADRANT_PIXEL_MM / pixel_mm)  # the same 512-mm field at any pixel size
    activity = torch.from_numpy(quadrant_bar_phantom(size, pixel_mm, widths))
    expected = gaussian_blur(activity, fwhm=QUADRANT_INTRINSIC_FWHM_MM / pixel_mm)
    expected = expected * (counts / float(expected.sum()))
    original = torch.poisson(expected, generator=make_generator(100 + index))
    coarse = GammaCamera(pixel_size_mm=pixel_mm, collimator=collimator)(original, make_generator(200 + index))
    return expected, original, coarse


def run_quadrant_bars(methods: dict[str, CountSuperResolution]) -> dict[str, dict[str, dict[str, object]]]:
    """Simulated quadrant-bar acquisitions (the held-out real one is not shared): a flood through the bars, the
    camera's intrinsic blur, Poisson counts → the same chain; PSNR/SSIM and the contrast of each bar width."""
    results = {}
    for index, name in enumerate(QUADRANT_BARS):
        _, original, coarse = quadrant_bar_acquisition(index)
        rows: dict[str, dict[str, object]] = {"original": {"contrast": quadrant_contrasts(original)}}
        for label, method in methods.items():
            restored, _ = restore(label, method, coarse, QUADRANT_PIXEL_MM)
            rows[label] = {**bench.score(restored, original, coarse), "contrast": quadrant_contrasts(restored)}
        results[name] = rows
    return results


def run_simulated(methods: dict[str, CountSuperResolution]) -> dict[str, dict[str, dict[str, float]]]:
    sets = {f"phantoms {p:g} mm": bench.phantom_images(p) for p in bench.PHANTOM_PIXEL_SIZES}
    sets["bone-scans"] = bench.bone_scan_images()
    results = {}
    for set_name, images in sets.items():
        scores: dict[str, list[dict[str, float]]] = {label: [] for label in methods}
        for index, image in enumerate(images):
            coarse = bench.degrade(image, seed=index)
            for label, method in methods.items():
                scores[label].append(bench.score(restore(label, method, coarse, image.pixel_size_mm)[0], image.original, coarse))
        results[set_name] = {label: bench._mean(values) for label, values in scores.items()}
        print(set_name, {label: round(row["psnr"], 2) for label, row in results[set_name].items()}, flush=True)
    return results


def run_file_collimators() -> dict[str, dict[str, object]]:
    """The chain with the collimator each file names (``degrade``'s and ``superres``'s default without
    ``--collimator``: :func:`~medrestore.physics.degradations.recorded_collimator`), bicubic and ``dct-mlem``, seeded as
    :func:`run_real`; PSNR/SSIM, the gain and ``(1 − SSIM)`` ratio over bicubic, and the NEMA measure of each image."""
    methods = {name: load_super_resolution(name, bench.SCALE) for name in ("bicubic", "dct-mlem")}
    rows: dict[str, dict[str, object]] = {}
    print("| image | collimator (the file's) | response (mm) | bicubic | dct-mlem | gain (dB) | (1 − SSIM) ratio | NEMA: original / bicubic / dct-mlem |")
    print("|---|---|---|---|---|---|---|---|")
    for index, (name, original, pixel) in enumerate(real_images()):
        path = BONE_SCAN if name == BONE_SCAN.name else NMQC / name
        collimator = recorded_collimator(read_image(path))[0] or DEFAULT_COLLIMATOR
        coarse = GammaCamera(pixel_size_mm=pixel, collimator=collimator)(original, make_generator(index))
        response = SystemResponse(PlanarAcquisition(collimator), pixel, "benchmark")
        restored = {label: method(coarse, response.fwhm_pixels) for label, method in methods.items()}
        scores = {label: bench.score(image, original, coarse) for label, image in restored.items()}
        nema = {"original": nema_measures(name, original, pixel), **{label: nema_measures(name, image, pixel) for label, image in restored.items()}}
        gain = scores["dct-mlem"]["psnr"] - scores["bicubic"]["psnr"]
        ratio = (1 - scores["dct-mlem"]["ssim"]) / (1 - scores["bicubic"]["ssim"])
        rows[name] = {"collimator": collimator, "resolution_mm": response.resolution_mm, "scores": scores, "nema": nema}
        measure = next(iter(nema["original"]), None)
        shown = " / ".join(f"{nema[label][measure]:.3g}" for label in ("original", "bicubic", "dct-mlem")) if measure else "–"
        print(f"| {name} | {collimator} | {response.resolution_mm:.2f} | "
              + " | ".join(f"{scores[label]['psnr']:.2f} / {scores[label]['ssim']:.3f}" for label in methods)
              + f" | {gain:+.2f} | {ratio:.2f} | {measure or ''} {shown} |", flush=True)  # fmt: skip
    return rows


def run_quadrant_collimators() -> dict[str, dict[str, dict[str, object]]]:
    """The simulated quadrant-bar acquisitions (:func:`quadrant_bar_acquisition`, same originals and seeds) acquired and
    restored through LEGP, LEHR and no collimator (an intrinsic bar test): PSNR gain over bicubic, bar contrasts."""
    methods = {name: load_super_resolution(name, bench.SCALE) for name in ("bicubic", "mlem", "dct-mlem")}
    rows: dict[str, dict[str, dict[str, object]]] = {}
    print("| bars | collimator | bicubic PSNR | mlem | dct-mlem | dct-mlem: contrast per bar width (original) |")
    print("|---|---|---|---|---|---|")
    for collimator in ("LEGP", "LEHR", "INTR"):
        for index, name in enumerate(QUADRANT_BARS):
            _, original, coarse = quadrant_bar_acquisition(index, collimator=collimator)
            fwhm = SystemResponse(PlanarAcquisition(collimator), QUADRANT_PIXEL_MM, "benchmark").fwhm_pixels
            restored = {label: method(coarse, fwhm) for label, method in methods.items()}
            scores = {label: bench.score(image, original, coarse) for label, image in restored.items()}
            contrast, truth = quadrant_contrasts(restored["dct-mlem"]), quadrant_contrasts(original)
            rows.setdefault(name, {})[collimator] = {"scores": scores, "contrast": contrast, "original_contrast": truth}
            bicubic = scores["bicubic"]["psnr"]
            print(f"| {name} | {collimator} | {bicubic:.2f} | "
                  + " | ".join(f"{scores[label]['psnr'] - bicubic:+.2f}" for label in ("mlem", "dct-mlem"))
                  + " | " + " / ".join(f"{c:.3f} ({t:.3f})" for c, t in zip(contrast, truth)) + " |", flush=True)  # fmt: skip
    return rows


def time_commands(repeats: int) -> dict[str, float]:
    """Best-of-``repeats`` seconds of the whole ``medrestore superres`` command per method on a 256 × 64 input."""
    data = read_image(NMQC / LINES).data.numpy()[128:384].reshape(256, 64, 8).sum(axis=-1)
    times: dict[str, list[float]] = {method: [] for method in TIMED_METHODS}
    with tempfile.TemporaryDirectory() as folder:
        source = write_image(Image(data.astype(np.float32), affine_from_spacing((1.0, 8.0)), 2, "nm", {}), Path(folder) / "in.nii.gz")
        for repeat in range(repeats):
            for method in TIMED_METHODS:
                output = Path(folder) / f"{method}-{repeat}.nii.gz"
                command = [sys.executable, "-m", "medrestore.cli.main", "superres", str(source), "-o", str(output), "--method", method]
                started = time.perf_counter()
                subprocess.run(command, check=True, capture_output=True)
                times[method].append(time.perf_counter() - started)
    return {method: min(values) for method, values in times.items()}


def _gain(rows: dict, label: str, reference: str) -> str:
    return f"{rows[label]['psnr'] - rows[reference]['psnr']:+.2f} / {rows[label]['ssim'] - rows[reference]['ssim']:+.3f}"


def tables(results: dict) -> str:
    """The page's tables (markdown) from the results of :func:`main`."""
    real, lines = results["real"], []
    lines += ["| image | " + " | ".join(METHODS) + " |", "|---|" + "---|" * len(METHODS)]
    for name, rows in real.items():
        cells = [f"{rows[m]['psnr']:.2f} / {rows[m]['ssim']:.3f}" for m in METHODS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for set_name, rows in results.get("simulated", {}).items():
        cells = [f"{rows[m]['psnr']:.2f} / {rows[m]['ssim']:.3f}" for m in METHODS]
        lines.append(f"| simulated: {set_name} ({rows['bicubic']['images']} images) | " + " | ".join(cells) + " |")
    lines += ["", "| gain over bicubic / over dct-mlem (PSNR dB / SSIM) | " + " | ".join(METHODS[1:]) + " |",
              "|---|" + "---|" * (len(METHODS) - 1)]  # fmt: skip
    everything = {**real, **{f"simulated: {k}": v for k, v in results.get("simulated", {}).items()}}
    for name, rows in everything.items():
        cells = [f"{_gain(rows, m, 'bicubic')} · {_gain(rows, m, 'dct-mlem')}" for m in METHODS[1:]]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    worst = {m: min(rows[m]["psnr"] - rows["dct-mlem"]["psnr"] for rows in everything.values()) for m in METHODS}
    lines.append("| **worst case over dct-mlem (dB)** | " + " | ".join(f"{worst[m]:+.2f}" for m in METHODS[1:]) + " |")
    lines += ["", "| NEMA measure | original | coarse ×4 | " + " | ".join(METHODS) + " |", "|---|---|---|" + "---|" * len(METHODS)]
    for name, keys in ((LINES, ("fwhm_mm", "fwtm_mm")), (GRID, ("grid_contrast",)), (FLOOD, tuple(k for k in real[FLOOD]["original"]))):
        for key in keys:
            cells = [f"{real[name][column][key]:.3g}" for column in ("original", "coarse", *METHODS)]
            lines.append(f"| {name}: {key} | " + " | ".join(cells) + " |")
    originals = results["line_originals"]
    for key in ("fwhm_mm", "fwtm_mm"):
        cells = [f"{originals[m][key]:.3g}" for m in METHODS]
        lines.append(f"| {LINES} itself ×4 (no degradation): {key} | {originals['original'][key]:.3g} | – | " + " | ".join(cells) + " |")
    for name, rows in results.get("quadrant_bars", {}).items():
        lines += ["", f"| simulated quadrant-bar, {name} | PSNR / SSIM | gain over bicubic (dB) | contrast per bar width (quadrants 1-4) |",
                  "|---|---|---|---|", f"| original | – | – | {' / '.join(f'{c:.3f}' for c in rows['original']['contrast'])} |"]  # fmt: skip
        for m in METHODS:
            row = rows[m]
            gain = row["psnr"] - rows["bicubic"]["psnr"]
            lines.append(f"| {m} | {row['psnr']:.2f} / {row['ssim']:.3f} | {gain:+.2f} | {' / '.join(f'{c:.3f}' for c in row['contrast'])} |")
    camera = results.get("camera")
    if camera:
        lines += ["", "| camera check | real | our model |", "|---|---|---|",
                  f"| flood noise: var / mean (neighbour differences, {camera['flood_mean_counts']:.0f} counts per pixel) | {camera['fano']:.2f} | 1 (Poisson) |",
                  f"| line-source FWHM (mm) | {camera['line_fwhm_mm']:.2f} | {camera['model_response_fwhm_mm']:.2f} (default LEGP at 10 cm) |"]  # fmt: skip
    seconds = results["command_seconds_256x64"]
    lines += ["", "| whole `medrestore superres` command, 256 × 64 → 1024 × 256 | seconds (best of runs) | ratio to bicubic |", "|---|---|---|"]
    lines += [f"| --method {m} | {t:.2f} | {t / seconds['bicubic']:.2f} |" for m, t in seconds.items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, default=ROOT / "results" / "nm_real.json")
    parser.add_argument("--skip-simulated", action="store_true")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each command (best kept)")
    parser.add_argument("--tables-only", action="store_true", help="print the tables of an existing --json and stop")
    parser.add_argument("--file-collimators", action="store_true", help="only the chain with each file's own collimator")
    args = parser.parse_args()
    if args.tables_only:
        print(tables(json.loads(args.json.read_text())))
        return
    if args.file_collimators:
        rows = {"real": run_file_collimators(), "quadrant_bars": run_quadrant_collimators()}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2, default=float) + "\n")
        return
    torch.set_num_threads(1)
    methods = load_methods()
    results: dict[str, object] = {"camera": camera_model_check(), "real": run_real(methods), "line_originals": run_line_originals(methods)}
    results["quadrant_bars"] = run_quadrant_bars(methods)
    if not args.skip_simulated:
        results["simulated"] = run_simulated(methods)
    results["command_seconds_256x64"] = time_commands(args.repeats)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2, default=float) + "\n")
    print(tables(results))


if __name__ == "__main__":
    main()
