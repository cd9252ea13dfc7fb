"""``medrestore denoise-eval``: the MRI denoising evaluation protocols, each writing OUT.json and OUT.png.

Examples::

    medrestore denoise-eval leave-one-out fmri/ -o loo-nlm.json --method nlm                 # a 4-D series
    medrestore denoise-eval leave-one-out fmri.nii.gz -o loo-mppca.json --method mppca       # interleaved halves
    medrestore denoise-eval leave-one-out ch2.nii.gz -o loo-sim.json --simulate 4 --relative-sigma 0.05
    medrestore denoise-eval tissue ch2.nii.gz -o tissue.json --simulate 2 --method nlm       # HMRF labels, Jaccard

See :mod:`medrestore.tasks.denoise_protocols` for what each protocol scores against what.
"""

from __future__ import annotations

import argparse

from medrestore.cli.options import add_device_option
from medrestore.tasks.denoise_mri import METHODS
from medrestore.tasks.denoise_protocols import PROTOCOLS, ProtocolSettings, figure_path, leave_one_out_file, tissue_agreement_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``PROTOCOL INPUT -o OUT.json [--method M] [--simulate R --relative-sigma S --seed N] [--repetitions N] [--device D]``."""
    parser.add_argument("protocol", choices=PROTOCOLS, help="leave-one-out: each repetition against the mean of the others; "
                        "tissue: HMRF grey/white/CSF labels of the noisy and denoised repetition against the reference's, Jaccard")  # fmt: skip
    parser.add_argument("input", help="a 4-D series of repetitions (NIfTI, DICOM folder, ...), or a clean 3-D volume with --simulate")
    parser.add_argument("-o", "--output", required=True, help="the JSON record; the figure goes beside it as .png")
    parser.add_argument("--method", default="nlm", choices=METHODS, help="the MRI denoising method (as `medrestore denoise --method`; default nlm)")
    parser.add_argument("--simulate", type=int, default=0, metavar="R", help="make R Rician repetitions of a clean 3-D INPUT (default: 0, INPUT is a series)")
    parser.add_argument("--relative-sigma", type=float, default=0.05, metavar="S", help="σ of the simulated noise, as a fraction of the maximum (default 0.05)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated noise (default 0)")
    parser.add_argument("--repetitions", type=int, default=None, metavar="N", help="leave-one-out: score N evenly spaced repetitions (default: all)")
    add_device_option(parser)


def run(args: argparse.Namespace) -> int:
    settings = ProtocolSettings(method=args.method, simulate=args.simulate, relative_sigma=args.relative_sigma, seed=args.seed,
                                repetitions=args.repetitions, device=args.device)
    runner = leave_one_out_file if args.protocol == "leave-one-out" else tissue_agreement_file
    record = runner(args.input, args.output, settings)
    if args.protocol == "leave-one-out":
        for key in ("noisy", "denoised"):
            mean = record["mean"][key]
            similarity = "n/a (slices smaller than its window)" if mean["ssim"] is None else f"{mean['ssim']:.4f}"
            print(f"{key:>8}: PSNR {mean['psnr']:.2f} dB, SSIM {similarity}, MSE {mean['mse']:.4g} (mean of {len(record['scores'])}, {record['protocol']})")
    else:
        for key in ("noisy", "denoised"):
            scores = record["jaccard"][key]
            print(f"{key:>8}: Jaccard CSF {scores['1']:.3f}, GM {scores['2']:.3f}, WM {scores['3']:.3f}, mean {scores['mean']:.3f}")
    print(f"wrote {args.output} and {figure_path(args.output)}")
    return 0
