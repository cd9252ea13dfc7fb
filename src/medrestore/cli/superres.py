"""``medrestore superres``: put a scintigram on a finer grid (bicubic, ML-EM with or without denoised counts, or a trained network), in counts."""

from __future__ import annotations

import argparse

from medrestore.cli.options import add_value_options
from medrestore.tasks.superres import (
    DEFAULT_METHOD,
    DEFAULT_MLEM_ITERATIONS,
    ENSEMBLE_SIZES,
    METHODS,
    MODALITIES,
    NETWORK_VIEWS,
    PlanarAcquisition,
    SuperResolutionRequest,
    superres_file,
)

NAME = "superres"
HELP = "super-resolve a planar scintigram ×K in counts (total counts kept) and record how in OUT.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--modality nm IN -o OUT [--scale K] [--method M] [--model NAME] [--device D]`` and the camera."""
    add = parser.add_argument
    add("input", metavar="IN", help="input image: DICOM NM (planar or multi-frame), NIfTI, TIFF, PNG, NumPy")
    add("-o", "--output", metavar="OUT", required=True, help="output image (format from extension)")
    add("--modality", choices=MODALITIES, default="nm", help="image modality (default nm: values are counts)")
    add("--scale", type=int, default=4, metavar="K", help="enlargement factor per axis (default 4)")
    add("--method", choices=METHODS, default=DEFAULT_METHOD, help=f"restoration method (default {DEFAULT_METHOD})")
    add("--model", metavar="NAME", help="zoo model name or training checkpoint (.pt) for the network methods")
    add("--device", default="cpu", metavar="D", help="cpu (default), auto, cuda, cuda:1 or mps")
    iterations = ", ".join(f"{method} {count}" for method, count in DEFAULT_MLEM_ITERATIONS.items())
    add("--iterations", type=int, metavar="N", help=f"ML-EM iterations (default: {iterations}; the networks' as trained)")
    sizes = ", ".join(map(str, ENSEMBLE_SIZES))
    defaults = ", ".join(f"{method} {len(views)}" for method, views in NETWORK_VIEWS.items())
    add("--ensemble", type=int, metavar="V",
        help=f"network methods: average the network over V turned/flipped views ({sizes}; default: {defaults}, others 1)")
    add("--collimator", default="LEGP", metavar="NAME", help="camera collimator when IN.json records none (default LEGP)")
    add("--distance", type=float, default=100.0, metavar="MM", help="source distance when IN.json records none (default 100)")
    add("--isotope", default="Tc-99m", metavar="NAME", help="isotope when IN.json records none (default Tc-99m)")
    add("--pixel-size", type=float, metavar="MM", help="output pixel size (default: IN.json, else the input spacing / K)")
    add_value_options(parser)


def run(args: argparse.Namespace) -> int:
    request = SuperResolutionRequest(
        modality=args.modality, scale=args.scale, method=args.method, model=args.model, device=args.device,
        iterations=args.iterations, ensemble=args.ensemble, acquisition=PlanarAcquisition(args.collimator, args.isotope, args.distance),
        pixel_size_mm=args.pixel_size, nonfinite=args.nonfinite,
    )  # fmt: skip
    record = superres_file(args.input, args.output, request)
    totals_in, totals_out = sum(record["frame_total_counts"]), sum(record["output_frame_total_counts"])
    model = f", model {record['model']}" if record["model"] else ""
    print(
        f"wrote {record['output']} and {record['output']}.json ({record['method']} ×{record['scale']}{model}; "
        f"total counts {totals_in:.6g} → {totals_out:.6g}; {record['seconds']:.2f} s)"
    )
    return 0
