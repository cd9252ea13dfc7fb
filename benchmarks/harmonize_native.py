"""The shipped harmoniser on a whole volume at native resolution and in raw units, through the CLI.

Colin27 (``ch2.nii.gz``: 1 mm, 181 × 217 × 181, raw intensities) is imaged by the simulator's
scanner b (``medrestore degrade --kind scanner --scanner b``) and harmonised back with
``medrestore harmonize --model cyclegan-sim --direction b2a`` (at native resolution, and with
``--grid 128``, the training grid). The occipital hyperintensity's contrast ``C``
(:func:`~medrestore.metrics.harmonization.hyperintensity_contrast`, against the noise-free
scanner-a rendering of the same slices) is measured on axial slices 70–110 before and after.

Usage::

    python benchmarks/harmonize_native.py [--model cyclegan-sim] [--workdir results/harmonize-native]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import torch

from medrestore.core.random import make_generator
from medrestore.data.harmonize import read_slices
from medrestore.metrics.harmonization import hyperintensity_contrast, hyperintensity_regions
from medrestore.physics.degradations import ScannerAppearance

ROOT = Path(__file__).resolve().parents[1]
COLIN27 = ROOT.parent / "shared" / "data" / "brain-mri-ants" / "ch2.nii.gz"
AXIAL = slice(70, 111)


def display_slices(path: Path) -> torch.Tensor:
    """Axial slices 70–110 of a RAS+ volume file in display orientation (as the simulator and harmoniser see them)."""
    return read_slices(path)[AXIAL].float()


def cli(*arguments: str) -> None:
    subprocess.run([sys.executable, "-m", "medrestore.cli.main", *arguments], check=True, stdout=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cyclegan-sim")
    parser.add_argument("--volume", type=Path, default=COLIN27)
    parser.add_argument("--workdir", type=Path, default=ROOT / "results" / "harmonize-native")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    scanner_b = args.workdir / "b.nii.gz"
    cli("degrade", "--kind", "scanner", "--scanner", "b", str(args.volume), "-o", str(scanner_b))
    outputs = {"native": args.workdir / "b2a.nii.gz", "grid 128": args.workdir / "b2a-grid128.nii.gz"}
    cli("harmonize", str(scanner_b), "-o", str(outputs["native"]), "--model", args.model, "--direction", "b2a")
    cli("harmonize", str(scanner_b), "-o", str(outputs["grid 128"]), "--model", args.model, "--direction", "b2a", "--grid", "128")
    clean = display_slices(args.volume)
    reference = ScannerAppearance(scanner="a", noise_sigma=0.0)(clean, make_generator(0))
    region, control = hyperintensity_regions(clean, ScannerAppearance(scanner="b").hyperintensity_width)
    before = hyperintensity_contrast(display_slices(scanner_b), reference, region, control)
    print(f"scanner b: C = {before:.3f}")
    for name, path in outputs.items():
        after = hyperintensity_contrast(display_slices(path), reference, region, control)
        print(f"{args.model} b2a, {name}: C = {after:.3f}, removal {1 - abs(after) / abs(before):.1%}")


if __name__ == "__main__":
    main()
