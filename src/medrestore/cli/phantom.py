"""``medrestore phantom``: paper phantoms (``paper``) and teacher count calibration (``calibrate``).

::

    medrestore phantom paper IN -o OUTDIR [--collimator-low LEGP --collimator-high LEHR --scale 4
                                           --min-peak-counts 25 --format nii.gz --seed S ...]
    medrestore phantom calibrate TEACHER MEASURED -o OUT [--bins 64 --std-target measured]
"""

from __future__ import annotations

import argparse

from medrestore.core.errors import ConfigError
from medrestore.tasks.phantom import (
    CALIBRATION_TARGETS,
    COLLIMATORS,
    ISOTOPES,
    OUTPUT_FORMATS,
    POLARITIES,
    STD_TARGETS,
    AcquisitionProtocol,
    CalibrationConfig,
    CountLevel,
    InkRecipe,
    PaperPhantomConfig,
    PrinterModel,
    build_paper_phantoms,
    calibrate_files,
)


def _add_paper_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("input", metavar="IN", help="image file, or a folder of images (one phantom per image)")
    add("-o", "--output", metavar="OUTDIR", required=True, help="output folder")
    names = ", ".join(COLLIMATORS)
    add("--collimator-low", default="LEGP", metavar="NAME", help=f"low-resolution collimator (default LEGP; {names})")
    add("--collimator-high", default="LEHR", metavar="NAME", help="high-resolution collimator (default LEHR)")
    add("--scale", type=int, default=4, metavar="K", help="low matrix = matrix / K (default 4)")
    add("--matrix", type=int, default=512, metavar="N", help="high-resolution matrix (default 512)")
    add("--pixel-size", type=float, default=0.67, metavar="MM", help="high-resolution pixel size (default 0.67 mm)")
    add("--print-size", type=float, metavar="MM", help="printed longest side (default pixels × pixel size)")
    add("--distance", type=float, default=100.0, metavar="MM", help="print-to-collimator distance (default 100 mm)")
    add("--isotope", default="Tc-99m", metavar="NAME", help=f"one of {', '.join(ISOTOPES)} (default Tc-99m)")
    add("--scatter-fraction", type=float, default=0.0, metavar="F", help="fraction of scattered counts (default 0)")
    add("--min-peak-counts", type=float, default=25.0, metavar="C", help="extend until max >= C counts (default 25)")
    add("--start-time", type=float, default=600.0, metavar="S", help="first stop of the acquisition in s (default 600)")
    add("--time-step", type=float, default=300.0, metavar="S", help="extension step in s (default 300)")
    add("--max-time", type=float, default=3600.0, metavar="S", help="longest acquisition in s (default 3600)")
    add("--low-counts", type=float, metavar="C", help="peak counts of the low image (no timing rule)")
    add("--high-counts", type=float, metavar="C", help="peak counts of the high image (no timing rule)")
    add("--polarity", choices=POLARITIES, default="negative", help="negative: bright pixels get ink (default)")
    add("--gamma", type=float, default=1.0, metavar="G", help="printer tone-curve exponent (default 1)")
    add("--dot-gain", type=float, default=0.15, metavar="G", help="dot gain at a 50%% tint, 0-0.25 (default 0.15)")
    add("--solution-activity", type=float, default=370.0, metavar="MBQ_PER_ML", help="solution activity (default 370)")
    add("--ink-ratio", default="1:2", metavar="RI:BLACK", help="mixing ratio solution : black ink (default 1:2)")
    add("--ink-volume", type=float, default=0.5, metavar="UL_PER_CM2", help="ink laid at full black (default 0.5)")
    add("--calibrate", choices=CALIBRATION_TARGETS, default="low", help="calibrate the teacher to this acquisition")
    add("--std-target", choices=STD_TARGETS, default="measured", help="standard deviation to match in calibration")
    add("--no-crop", action="store_true", help="keep the whole field of view instead of cropping to the print")
    add("--slice", type=int, metavar="I", help="slice of the last axis printed from a 3-D volume, or frame of an NM stack (default middle)")
    add("--format", choices=OUTPUT_FORMATS, default="nii.gz", help="output image format (default nii.gz)")
    add("--seed", type=int, default=0, metavar="N", help="base seed (default 0, recorded)")


def _add_calibrate_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("teacher", metavar="TEACHER", help="teacher image, an integer multiple of the measured grid")
    add("measured", metavar="MEASURED", help="measured counts image")
    add("-o", "--output", metavar="OUT", required=True, help="calibrated teacher (format from extension)")
    add("--bins", type=int, default=64, metavar="N", help="teacher-value bins of the look-up table (default 64)")
    add("--std-target", choices=STD_TARGETS, default="measured", help="standard deviation to match")
    add("--no-moments", action="store_true", help="skip the mean / standard-deviation matching")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Sub-commands ``paper`` and ``calibrate``."""
    commands = parser.add_subparsers(dest="phantom_command", metavar="PHANTOM", required=True)
    paper = commands.add_parser("paper", help="print images with radioactive ink and acquire them twice")
    _add_paper_arguments(paper)
    calibrate = commands.add_parser("calibrate", help="bring a teacher image to the counts of a measurement")
    _add_calibrate_arguments(calibrate)


def parse_ink_ratio(text: str) -> tuple[float, float]:
    """``"1:2"`` → ``(1.0, 2.0)``."""
    parts = text.split(":")
    try:
        radioactive, black = (float(part) for part in parts)
    except ValueError:
        raise ConfigError(f"--ink-ratio must read RI:BLACK, e.g. 1:2, got {text!r}") from None
    return radioactive, black


def paper_config(args: argparse.Namespace) -> PaperPhantomConfig:
    """The phantom configuration the options describe."""
    radioactive, black = parse_ink_ratio(args.ink_ratio)
    return PaperPhantomConfig(
        collimator_low=args.collimator_low,
        collimator_high=args.collimator_high,
        scale=args.scale,
        matrix=args.matrix,
        pixel_size_mm=args.pixel_size,
        print_size_mm=args.print_size,
        distance_mm=args.distance,
        isotope=args.isotope,
        scatter_fraction=args.scatter_fraction,
        printer=PrinterModel(polarity=args.polarity, gamma=args.gamma, dot_gain=args.dot_gain),
        ink=InkRecipe(args.solution_activity, radioactive, black, args.ink_volume),
        protocol=AcquisitionProtocol(args.min_peak_counts, args.start_time, args.time_step, args.max_time),
        low_counts=None if args.low_counts is None else CountLevel(peak_counts=args.low_counts),
        high_counts=None if args.high_counts is None else CountLevel(peak_counts=args.high_counts),
        crop_to_print=not args.no_crop,
        calibrate_to=args.calibrate,
        calibration=CalibrationConfig(std_target=args.std_target),
    )


def run(args: argparse.Namespace) -> int:
    if args.phantom_command == "calibrate":
        config = CalibrationConfig(bins=args.bins, match_moments=not args.no_moments, std_target=args.std_target)
        record = calibrate_files(args.teacher, args.measured, args.output, config)
        total = record["calibration"]["total_counts"]
        print(f"wrote {record['output']} and {record['output']}.json ({total:.0f} counts)")
        return 0
    records = build_paper_phantoms(args.input, args.output, paper_config(args), args.seed, args.format, args.slice)
    for record in records:
        low, high = record["phantom"]["low"], record["phantom"]["high"]
        print(
            f"{record['input']}: low {low['collimator']} peak {low['peak_counts']:.0f} / "
            f"total {low['total_counts']:.0f} counts, high {high['collimator']} peak {high['peak_counts']:.0f} / "
            f"total {high['total_counts']:.0f} counts"
        )
    print(f"wrote {len(records)} phantom(s) to {args.output}")
    return 0
