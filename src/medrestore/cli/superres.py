"""``medrestore superres``: put a scintigram on a finer grid (bicubic, ML-EM with or without denoised counts, or a trained network), in counts."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from medrestore import api
from medrestore.cli.batch import add_io_arguments, batch_device, default_image_ext, run_io_command
from medrestore.cli.options import add_device_option, add_value_options
from medrestore.tasks.superres import (
    DEFAULT_METHOD,
    DEFAULT_MLEM_ITERATIONS,
    ENSEMBLE_SIZES,
    METHODS,
    MODALITIES,
    NETWORK_VIEWS,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--modality nm IN -o OUT [--scale K] [--method M] [--model NAME] [--device D]`` and the camera."""
    add = parser.add_argument
    add_io_arguments(parser, "input image: DICOM NM (planar or multi-frame), NIfTI, TIFF, PNG, NumPy", "output image (format from extension)")
    add("--modality", choices=MODALITIES, default="nm", help="image modality (default nm: values are counts)")
    add("--scale", type=int, default=4, metavar="K", help="enlargement factor per axis (default 4)")
    add("--method", choices=METHODS, default=DEFAULT_METHOD,
        help=f"restoration method (default {DEFAULT_METHOD}; the refining methods fall back to their classical stage "
        "outside the inputs their networks learnt, recorded in OUT.json)")  # fmt: skip
    add("--model", metavar="NAME", help="zoo model name or training checkpoint (.pt) for the network methods")
    add_device_option(parser)
    iterations = ", ".join(f"{method} {count}" for method, count in DEFAULT_MLEM_ITERATIONS.items())
    add("--iterations", type=int, metavar="N", help=f"ML-EM iterations (default: {iterations}; dct-mlem runs 40·(FWHM/9)² where the system response is "
        "wider than 9 output pixels; the networks' as trained)")
    sizes = ", ".join(map(str, ENSEMBLE_SIZES))
    defaults = ", ".join(f"{method} {len(views)}" for method, views in NETWORK_VIEWS.items())
    add("--ensemble", type=int, metavar="V",
        help=f"network methods: average the network over V turned/flipped views ({sizes}; default: {defaults}, others 1)")
    add("--collimator", metavar="NAME",
        help="camera collimator when IN.json records none: LEHR, LEGP, LEUHR, LEHS, MEGP, HEGP, or INTR (an intrinsic "
             "acquisition, no collimator); default: the one an NM DICOM input names (CollimatorGridName), else LEGP")
    add("--distance", type=float, default=100.0, metavar="MM", help="source distance in mm when IN.json records none (default 100)")
    add("--isotope", default="Tc-99m", metavar="NAME", help="isotope when IN.json records none (default Tc-99m)")
    add("--pixel-size", type=float, metavar="MM", help="output pixel size in mm (default: IN.json, else the input spacing / K)")
    add("--fwhm", type=float, metavar="MM",
        help="the camera's measured system resolution, FWHM in mm (e.g. its NEMA line-source FWHM at the acquisition's "
             "distance); replaces the collimator model's and IN.json's")
    add_value_options(parser)


def run(args: argparse.Namespace) -> int:
    device = batch_device(args.device)

    def process(input_path: Path | str, output_path: Path | str) -> dict[str, Any]:
        return api.superres(
            input_path, args.scale, args.method, args.model, device, args.modality, args.nonfinite, iterations=args.iterations,
            ensemble=args.ensemble, collimator=args.collimator, isotope=args.isotope, distance_mm=args.distance,
            pixel_size_mm=args.pixel_size, fwhm_mm=args.fwhm, output=output_path,
        ).record  # fmt: skip

    def single(input_path: str, output_path: str) -> int:
        record = process(input_path, output_path)
        totals_in, totals_out = sum(record["frame_total_counts"]), sum(record["output_frame_total_counts"])
        model = f", model {record['model']}" if record["model"] else ""
        guard = record.get("refinement_guard") or {}
        if guard.get("fallback"):
            model += f"; {record['requested_method']}'s networks not applied ({'; '.join(guard['reasons'])})"
        camera = record.get("system_response") or {}
        if camera.get("collimator_source"):
            model += f"; collimator {camera['collimator']}: {camera['collimator_source']}"
        print(
            f"wrote {record['output']} and {record['output']}.json ({record['method']} ×{record['scale']}{model}; "
            f"total counts {totals_in:.6g} → {totals_out:.6g}; {record['seconds']:.2f} s)"
        )
        return 0

    return run_io_command(args, "image", single, process, default_image_ext)
