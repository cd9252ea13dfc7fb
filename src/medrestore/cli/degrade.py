"""``medrestore degrade``: add a catalogued degradation (noise, blur + downsampling, gamma camera) to an image file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from medrestore import api
from medrestore.cli.batch import add_io_arguments, default_image_ext, run_io_command
from medrestore.cli.options import add_value_options
from medrestore.core.errors import ConfigError
from medrestore.tasks.degrade import DEGRADATION_KINDS, OUTPUT_DTYPES, parameter_names


# option destination → (flag, catalogue parameter it sets)
OPTION_PARAMETERS: dict[str, tuple[str, str]] = {
    "sigma": ("--sigma", "sigma"),
    "relative_sigma": ("--relative-sigma", "sigma"),
    "counts": ("--counts", "peak_counts"),
    "looks": ("--looks", "looks"),
    "form": ("--form", "form"),
    "fwhm": ("--fwhm", "fwhm"),
    "factor": ("--factor", "factor"),
    "scale": ("--scale", "scale"),
    "collimator": ("--collimator", "collimator"),
    "distance": ("--distance", "distance_mm"),
    "isotope": ("--isotope", "isotope"),
    "pixel_size": ("--pixel-size", "pixel_size_mm"),
    "total_counts": ("--total-counts", "total_counts"),
    "scatter_fraction": ("--scatter-fraction", "scatter_fraction"),
    "scanner": ("--scanner", "scanner"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``IN [IN ...] -o OUT --kind KIND`` plus the kind's parameters, ``--seed`` and ``--dtype``."""
    add_io_arguments(parser, "input image file", "output image (format from extension)")
    parser.add_argument("--kind", required=True, metavar="KIND", help=f"one of: {', '.join(DEGRADATION_KINDS)}")
    add = parser.add_argument
    add("--sigma", type=float, metavar="S", help="noise standard deviation in image units (gaussian, rician, speckle)")
    add("--relative-sigma", type=float, metavar="R", help="noise standard deviation as a fraction of the image maximum")
    add("--counts", type=float, metavar="C", help="expected counts at the image maximum (poisson, gamma-camera)")
    add("--looks", type=float, metavar="L", help="number of looks; speckle variance is 1/L (speckle)")
    add("--form", metavar="FORM", help="intensity (Gamma, default) or amplitude (Nakagami) (speckle)")
    add("--fwhm", type=float, metavar="F", help="blur FWHM in input pixels; default = factor (blur-downsample)")
    add("--factor", type=int, metavar="K", help="integer downsampling factor (blur-downsample)")
    add("--scale", type=int, metavar="K", help="detector binning factor; output is input/K (gamma-camera, default 4)")
    add("--collimator", metavar="NAME", help="LEHR, LEGP, LEUHR, LEHS, MEGP, HEGP, or INTR: no collimator, an intrinsic acquisition (gamma-camera; "
         "default: the one an NM DICOM input names in CollimatorGridName, else LEGP)")
    add("--distance", type=float, metavar="MM", help="source-to-collimator distance in mm (gamma-camera, default 100)")
    add("--isotope", metavar="NAME", help="Tc-99m (default), I-123, Tl-201 or In-111 (gamma-camera)")
    add("--pixel-size", type=float, metavar="MM", help="input pixel size in mm; default its spacing (gamma-camera)")
    add("--total-counts", type=float, metavar="N", help="expected total counts instead of --counts (gamma-camera)")
    add("--scatter-fraction", type=float, metavar="F", help="fraction of scattered counts, 0-0.95 (gamma-camera)")
    add("--scanner", choices=("a", "b"), help="simulated scanner: a (1.5 T-like) or b (3 T-like) (scanner)")
    add("--seed", type=int, metavar="N", default=0, help="seed of the noise generator (default 0, recorded)")
    add("--dtype", choices=OUTPUT_DTYPES, default="float32", help="output dtype: float32 (default) or the source's")
    add_value_options(parser)


def parameters_from_options(args: argparse.Namespace) -> dict[str, float | int | str | bool]:
    """The catalogue parameters given on the command line; options that do not apply to --kind are refused."""
    if args.sigma is not None and args.relative_sigma is not None:
        raise ConfigError("give --sigma or --relative-sigma, not both")
    accepted = parameter_names(args.kind)
    parameters: dict[str, float | int | str | bool] = {}
    for option, (flag, name) in OPTION_PARAMETERS.items():
        value = getattr(args, option)
        if value is None:
            continue
        if name not in accepted:
            usable = [f for f, n in OPTION_PARAMETERS.values() if n in accepted]
            raise ConfigError(f"{flag} does not apply to --kind {args.kind} (it takes: {', '.join(usable) or 'none'})")
        parameters[name] = value
    if args.relative_sigma is not None:
        parameters["relative"] = True
    return parameters


def run(args: argparse.Namespace) -> int:
    parameters = parameters_from_options(args)

    def process(input_path: Path | str, output_path: Path | str) -> dict[str, Any]:
        return api.degrade(input_path, args.kind, args.seed, args.nonfinite, dtype=args.dtype, output=output_path, **parameters).record

    def single(input_path: str, output_path: str) -> int:
        record = process(input_path, output_path)
        camera = f", collimator {record['degradation']['collimator']}: {record['collimator_source']}" if record.get("collimator_source") else ""
        print(f"wrote {record['output']} and {record['output']}.json ({args.kind}, seed {args.seed}{camera})")
        return 0

    return run_io_command(args, "image", single, process, default_image_ext)
