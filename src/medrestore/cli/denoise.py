"""``medrestore denoise``: restore an image file with a trained model (the modality's shipped default or any other).

Examples::

    medrestore denoise --modality oct bscan.tif -o bscan-denoised.tif
    medrestore denoise --modality oct bscan.tif -o out.tif --model srcnn-oct-duke
    medrestore denoise --modality oct bscan.tif -o out.tif --model resunet-oct-duke+cae-oct-duke   # mean of two
    medrestore denoise --modality oct test.tif -o out.tif --frames 1.tif 2.tif 3.tif 4.tif
    medrestore denoise --modality oct volume.tif -o out.tif --model results/oct-resunet/last.pt --device cpu
    medrestore denoise --modality mri brain.nii.gz -o brain-denoised.nii.gz --method auto --sigma auto
    medrestore denoise --modality mri fmri.nii.gz -o fmri-denoised.nii.gz --method nlm   # 4-D: volume by volume
    medrestore denoise --modality mri fmri.nii.gz -o fmri-mppca.nii.gz --method mppca    # 4-D: along the volume axis
    medrestore denoise --modality mri brain.nii.gz -o out.nii.gz --method unet3d-nlm --model results/mri-resunet3d/last.pt

The output has the input's dtype and intensity range; its extension picks the format. A 4-D MRI series also
gets ``OUTPUT.tsnr.nii.gz``: its temporal SNR map before and after denoising (two frames).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from medrestore import api
from medrestore.cli.batch import add_io_arguments, batch_device, default_image_ext, is_batch, run_io_command
from medrestore.cli.options import add_device_option, add_value_options
from medrestore.core.errors import ConfigError
from medrestore.core.memory import keep_freed_memory
from medrestore.tasks.denoise import DEFAULT_MODELS, MODALITIES
from medrestore.tasks.denoise_mri import METHODS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--modality M INPUT [INPUT ...] -o OUTPUT [--model NAME] [--frames F1 F2 ...] [--device D]``."""
    add_io_arguments(parser, "image file (TIFF, multi-page TIFF, PNG, NIfTI, DICOM, NumPy)", "output file; its extension picks the format")
    parser.add_argument("--modality", required=True, choices=MODALITIES, help="which workflow and default model")
    parser.add_argument(
        "--model",
        metavar="NAME",
        help=(
            "zoo model name (see `medrestore models`), a checkpoint .pt file, or several joined by '+' (their outputs "
            f"averaged); default for OCT: {DEFAULT_MODELS['oct']}. MRI: one zoo model or checkpoint (trained with "
            "`medrestore train`, data.layout: mri-denoise) in place of the network of --method unet, unet3d, unet3d-nlm, gan or srcnn"
        ),
    )
    parser.add_argument(
        "--frames",
        nargs="+",
        metavar="FRAME",
        help="neighbouring frames of the same location for a multi-frame model (same shape as INPUT)",
    )
    add_device_option(parser)
    parser.add_argument("--method", default="auto", choices=METHODS, help="MRI: non-local means (nlm; pri-nlm: pre-filtered; nlm-wiener: NLM then a collaborative Wiener filter, 3-D), a shipped network (unet, unet3d, gan, srcnn) or unet3d-nlm: NLM weighted by the 3-D networks' output, then a collaborative Wiener filter; 4-D series only: mppca "
                        "or patch2self (dipy), along the volume axis (default: auto = unet3d-nlm on near-isotropic volumes with voxels "
                        "<= 1.5 mm, nlm otherwise). A 4-D input also gets its temporal SNR map, before and after, in OUTPUT.tsnr.nii.gz")
    parser.add_argument("--sigma", default="auto", metavar="auto|VALUE", help="MRI: noise σ in image units (the input's intensity scale), or auto to estimate it per volume (default: auto)")
    add_value_options(parser)


def _report_mri(record: dict[str, Any]) -> None:
    sigmas = record["sigmas"]
    sigma = f"{sigmas[0]:.4g}" if len(set(sigmas)) == 1 else f"{min(sigmas):.4g}–{max(sigmas):.4g}"
    print(f"denoised {record['volumes']} volume(s) with {record['method']} ({record['model']}), sigma {sigma}: {record['output']}")
    print(f"  {record['seconds_per_volume']:.2f} s per volume")
    if record.get("output_dtype_note"):
        print(f"  {record['output_dtype_note']}")
    if record.get("noise_free_volumes"):
        print(f"  no noise measured in {record['noise_free_volumes']} volume(s) (sigma <= 1e-6 of the range): returned unchanged")
    before, after = record.get("tsnr_before"), record.get("tsnr_after")
    if record["volumes"] > 1 and record.get("tsnr_gain") is None:
        print("  temporal SNR not defined: the brain's voxels do not vary in time")
    elif before and after is not None:
        print(f"  temporal SNR {before:.2f} -> {after:.2f} (gain x{after / before:.2f})")


def run(args: argparse.Namespace) -> int:
    if args.frames and is_batch(args.input, "image"):
        raise ConfigError("--frames belong to one input; a batch denoises each input on its own")
    device = batch_device(args.device)
    keep_freed_memory()  # one job, then the process exits: reuse freed memory instead of faulting it in again

    def process(input_path: Path | str, output_path: Path | str, frames: list[str] | None = None) -> dict[str, Any]:
        return api.denoise(input_path, args.modality, args.method, args.model, args.sigma, device, args.nonfinite, frames,
                           output=output_path).record

    def single(input_path: str, output_path: str) -> int:
        _report(process(input_path, output_path, args.frames))
        return 0

    return run_io_command(args, "image", single, process, default_image_ext)


def _report(record: dict[str, Any]) -> None:
    if "volumes" in record:
        _report_mri(record)
        return
    frames = f", {record['frames']} frames stacked" if record["frames"] > 1 else ""
    print(f"denoised {record['images']} image(s) with {record['model']}{frames}: {record['output']}")
    print(f"  {record['seconds_per_image']:.3f} s per image")
    if record.get("classical_images"):
        print(f"  {record['classical_images']} image(s) nearly free of speckle (an averaged B-scan?), outside what the network "
              "learnt: restored by non-local means instead (OUT.json: domain)")
    if record.get("brightened_images"):
        print(f"  {record['brightened_images']} image(s) dimmer than the network's training B-scans: mapped onto their "
              "brightness for the network and back (OUT.json: domain)")
