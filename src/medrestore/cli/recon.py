"""``medrestore recon``: reconstruct an image from raw (possibly undersampled) k-space.

Examples::

    medrestore recon 2024-02-06-164128.dat -o brain.nii.gz
    medrestore recon brain-4x.npz -o brain-4x.png --method cs-tv
    medrestore recon brain-8x.npz -o sense.npy --method sense --coil-maps maps.npy
    medrestore recon brain-8x.npz -o out.nii.gz --reference brain.nii.gz --json
    medrestore recon brain-4x.npz -o unrolled.nii.gz --method unrolled
    medrestore recon radial.npz -o radial.nii.gz --delay-correction ring
    medrestore recon k.cfl --trajectory t.cfl -o radial.nii.gz --delay 0.5 -0.3 0
    medrestore recon brain-4x.npz -o soft.nii.gz --maps 2 --virtual-coils 8
    medrestore recon brain-4x.npz -o body.nii.gz --method sense --coil-maps 2024-02-06-164120.dat
    medrestore recon volume.cfl -o volume.nii.gz

Methods: ``auto`` (fully sampled → zero-filled RSS; undersampled → CS L1-wavelet),
``zero-filled``, ``sense`` (CG-SENSE), ``cs-wavelet`` (L1-wavelet with random shifts, FISTA),
``cs-tv`` (total variation, FISTA), and the zoo's networks trained on simulated multi-coil
brain data: ``unet`` (U-Net on the zero-filled image), ``vgg-unet`` (VGG19-encoder U-Net) and
``unrolled`` (ISTA-Net+ stages with SENSE data consistency).
Radial (non-Cartesian) k-space: ``auto`` estimates and corrects gradient delays (RING checked
by AC-adaptive; no correction, with a warning, when they fail or disagree), then reconstructs
with TV on the NUFFT-SENSE operator;
``zero-filled`` is gridding; ``unet`` is
gridding followed by the zoo's radial U-Net (``unet-radial-brain``); ``unrolled`` is the zoo's
radial unrolled network (``unrolled-radial-brain``: NUFFT-SENSE data consistency in every stage);
both were trained on simulated radial brain data and run after the delay correction.
``vgg-unet`` is Cartesian only.
The CS regularisation weight is chosen per slice by k-space hold-out cross-validation (held-out
samples or phase-encode lines of Cartesian data, whole spokes of radial data; recorded as
``lambda_selection`` in ``--json``); ``--lam`` sets it absolutely.
With ``--reference`` the magnitude image is scaled by the least-squares intensity factor and scored
with fastMRI's metrics (NMSE, PSNR, SSIM).

Coil maps (Cartesian ``sense`` and CS): ESPIRiT with BART's eigenvalue crop (``--espirit-crop``,
default 0.8: the background outside the object comes out zero, as from BART's ``pics``; 0 keeps
the whole field of view), one or two map sets (``--maps 2``, ESPIRiT's soft-SENSE), a maps file,
or a body-coil scan of the same slice (``--coil-maps`` with a twix/ISMRMRD/``.npz`` k-space file,
or a BART k-space with fewer coils than the array). ``--virtual-coils N`` / ``--coil-energy F``
compress many coils first (BART ``cc``). 3-D Cartesian k-space ``(coils, kz, ky, kx)``, fully
sampled along the readout, is reconstructed per readout position into a volume.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from medrestore import api
from medrestore.cli.batch import add_io_arguments, batch_device, is_batch, run_io_command
from medrestore.cli.options import add_device_option, add_reference_option
from medrestore.core.errors import ConfigError
from medrestore.tasks.radial import DELAY_CORRECTIONS
from medrestore.tasks.recon import CLASSICAL_ESPIRIT, COMPRESSION_KINDS, RECON_METHODS, set_threads


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``INPUT -o OUTPUT [--method M] [--coil-maps espirit|FILE] [--lam L] [--iterations N] [--reference FILE] [--json]``."""
    add_io_arguments(parser, "raw k-space: twix .dat, fastMRI/ISMRMRD .h5, BART .cfl, .npy/.npz",
                     "magnitude image: .nii.gz, .dcm, .npy, .png, ... (batch default: .nii.gz), with its record (method, λ and how it was chosen, delay, decisions) in OUTPUT.json")
    parser.add_argument("--method", choices=RECON_METHODS, default="auto", help="reconstruction method (default auto)")
    parser.add_argument("--coil-maps", default="espirit", metavar="espirit|FILE", help="ESPIRiT (default) or a maps file")
    parser.add_argument("--maps", type=int, choices=(1, 2), default=1,
                        help="coil map sets: 2 = ESPIRiT soft-SENSE (one image per set, combined by root-sum-of-squares; "
                             "BART ecalib -m 2 + pics + rss); sense and CS methods")
    parser.add_argument("--espirit-crop", type=float, default=None, metavar="C",
                        help=f"zero the ESPIRiT maps where the eigenvalue is at most C (BART ecalib -c; 0 keeps the whole "
                             f"field of view; default {CLASSICAL_ESPIRIT.crop:g})")
    parser.add_argument("--virtual-coils", type=int, default=None, metavar="N",
                        help="compress the coils to N virtual coils before the maps and the solve (BART cc -p N)")
    parser.add_argument("--coil-energy", type=float, default=None, metavar="F",
                        help="compress to the fewest virtual coils keeping the fraction F of the calibration energy (e.g. 0.99)")
    parser.add_argument("--compression", choices=COMPRESSION_KINDS, default="auto",
                        help="coil compression: svd (BART cc -S), geometric along the readout (cc -G), or auto "
                             "(geometric when the lines are complete along the readout; default)")
    parser.add_argument("--lam", type=float, default=None, help="absolute regularisation weight (default: Cartesian CS chooses it per slice by k-space hold-out cross-validation; radial: holding out whole spokes)")
    parser.add_argument("--iterations", type=int, default=None, help="solver iterations (default: 10 SENSE; CS 100 with --lam, else the last solve after the weight's validation path: 50 Cartesian, 40 radial)")
    add_device_option(parser)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("--delay-correction", choices=DELAY_CORRECTIONS, default="auto",
                        help="radial data: gradient-delay estimator applied first (default auto = RING checked by AC-adaptive, falling back with a warning)")
    parser.add_argument("--delay", type=float, nargs="+", default=None, metavar="D",
                        help="radial data: known delay DX DY [DXY] in samples, instead of estimating (BART input: bart traj -q's axes)")
    parser.add_argument("--trajectory", default=None, metavar="TRAJ",
                        help="BART trajectory .cfl of non-Cartesian BART k-space [1, samples, spokes, coils]")
    parser.add_argument("--average", action="store_true",
                        help="average repeated acquisitions (averages counter / BART AVG) instead of one image each")
    add_reference_option(parser, "reference image (or fastMRI .h5) to score against (default: none, no scores)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    if args.threads is not None:
        set_threads(args.threads)
    if args.reference is not None and is_batch(args.input, "kspace"):
        raise ConfigError("--reference scores one reconstruction; score a batch with `medrestore evaluate --pred OUT_DIR --reference REF_DIR`")
    device = batch_device(args.device)

    def process(input_path: Path | str, output_path: Path | str, reference: str | None = None) -> dict[str, Any]:
        return api.recon(
            input_path, args.method, args.lam, args.iterations, args.coil_maps, device, args.trajectory, args.delay_correction,
            maps=args.maps, espirit_crop=args.espirit_crop, virtual_coils=args.virtual_coils, coil_energy=args.coil_energy,
            compression=args.compression, delay=args.delay, average=args.average, reference=reference, output=output_path,
        ).record  # fmt: skip

    def single(input_path: str, output_path: str) -> int:
        _print_report(process(input_path, output_path, args.reference), args.json)
        return 0

    return run_io_command(args, "kspace", single, process, lambda path: ".nii.gz")


def _print_report(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(report, indent=2))
        return
    lam = "" if report["lambda"] is None else f", lambda {report['lambda']:.4g}"
    print(f"{report['method']} ({report['iterations']} iterations{lam}) in {report['seconds']:.2f} s: {report['output']}")
    if "delay" in report:
        print(f"  gradient delay ({report['delay_correction']}): x {report['delay'][0]:.4f}, y {report['delay'][1]:.4f}, xy {report['delay'][2]:.4f} samples"
              f" ({report['delay_axes']} axes)")
    for name, value in report.get("metrics", {}).items():
        print(f"  {name:16s} {value:.6g}")
