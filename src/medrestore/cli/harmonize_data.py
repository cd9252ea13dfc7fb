"""``medrestore harmonize-data``: make scanner-harmonisation datasets (simulated pair, IXI by field strength)."""

from __future__ import annotations

import argparse

from medrestore.tasks.harmonize import IXI_BASE_URL, SimulationPlan, organise_ixi_archives, simulate_scanner_pair
from medrestore.tasks.harmonize_prepare import prepare_pair


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``simulate BRAIN -o DIR [...]``, ``ixi ARCHIVES_DIR -o DIR [--download]`` or ``register MOVING STATIC -o DIR``."""
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    simulate = actions.add_parser("simulate", help="paired and unpaired slices of simulated scanners a and b")
    simulate.add_argument("brain", metavar="BRAIN", help="clean RAS+ brain volume (e.g. Colin27 ch2.nii.gz)")
    simulate.add_argument("-o", "--output", metavar="DIR", required=True, help="dataset folder")
    simulate.add_argument("--subjects", type=int, default=16, help="simulated subjects (default 16)")
    simulate.add_argument("--slices-per-subject", type=int, default=10, help="axial slices per subject (default 10)")
    simulate.add_argument("--size", type=int, default=128, help="slice side in pixels (default 128)")
    simulate.add_argument("--seed", type=int, default=0, help="seed of everything (default 0)")
    ixi = actions.add_parser("ixi", help="sort IXI tar archives into 1.5T (Guys, IOP) and 3T (HH) folders")
    ixi.add_argument("archives", metavar="ARCHIVES_DIR", help="folder holding IXI-T1.tar, IXI-T2.tar, ...")
    ixi.add_argument("-o", "--output", metavar="DIR", required=True, help="output folder")
    ixi.add_argument("--download", action="store_true", help="download the archives into ARCHIVES_DIR first")
    ixi.add_argument("--base-url", default=IXI_BASE_URL, help="where the archives are served")
    register = actions.add_parser(
        "register", help="one scanner's volume registered (affine, dipy) to another's, both brain-masked and intensity-normalised"
    )
    register.add_argument("moving", metavar="MOVING", help="volume to register (e.g. the 3 T scan; file or DICOM series folder)")
    register.add_argument("static", metavar="STATIC", help="volume whose grid is the common space (e.g. the 1.5 T scan)")
    register.add_argument("-o", "--output", metavar="DIR", required=True, help="folder for moving.nii.gz, static.nii.gz, prepare.json")
    register.add_argument("--no-mask", action="store_true", help="STATIC is not skull-stripped: do not mask by its non-zero voxels")


def run(args: argparse.Namespace) -> int:
    if args.action == "simulate":
        plan = SimulationPlan(subjects=args.subjects, slices_per_subject=args.slices_per_subject, size=args.size, seed=args.seed)
        manifest = simulate_scanner_pair(args.brain, args.output, plan)
        splits = ", ".join(f"{name} {len(members)}" for name, members in manifest["splits"].items())
        print(f"wrote {args.output} (subjects: {splits}; manifest.json)")
        return 0
    if args.action == "register":
        record = prepare_pair(args.moving, args.static, args.output, mask=not args.no_mask)
        print(f"wrote {args.output}: moving.nii.gz, static.nii.gz, prepare.json (registration {record['registration_seconds']} s)")
        return 0
    manifest = organise_ixi_archives(args.archives, args.output, args.download, args.base_url)
    print(f"wrote {args.output}: {manifest['counts']} files ({manifest['skipped']} skipped); manifest.json")
    return 0
