"""A denoised copy of Colin27 as the training target of ``configs/mri-resunet3d-clean-target.yaml``.

Colin27 (``ch2.nii.gz``) averages 27 scans; it keeps residual noise. Its size is estimated from the
volume itself: the robust (median absolute deviation) estimate of the finest 3-D Haar detail band
(``ddd``, :func:`~medrestore.physics.noise_estimation.wavelet_sigma`) over the brain (> 30 grey
levels, so the zero background does not count): σ ≈ 1.05 of the maximum 133 (0.8 %).
BM4D (``bm4d`` 4.2.5, the reference denoiser of the benchmarks) at σ = 1 grey level then removes it
(σ is rounded down: a denoiser told too much noise smooths real structure). The background stays 0
and negative values are clipped; affine and header are kept.

Usage::

    python benchmarks/make_clean_target.py -o results/ch2-bm4d.nii.gz      # ~5 min on 2 cores
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import bm4d
import nibabel as nib
import numpy as np

from medrestore.core.files import atomic_path
from medrestore.physics.noise_estimation import wavelet_sigma

ROOT = Path(__file__).resolve().parents[1]
VOLUME = ROOT.parent / "shared" / "data" / "brain-mri-ants" / "ch2.nii.gz"
BRAIN_LEVEL = 30.0


def residual_sigma(volume: np.ndarray, brain_level: float = BRAIN_LEVEL) -> float:
    """Donoho's MAD estimate on the finest 3-D Haar detail band, over the voxels above ``brain_level``."""
    return wavelet_sigma(volume, volume > brain_level, wavelet="haar")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volume", type=Path, default=VOLUME)
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--sigma", type=float, default=1.0, help="BM4D's σ in grey levels (default 1)")
    args = parser.parse_args()
    image = nib.load(args.volume)
    volume = np.asarray(image.dataobj, dtype=np.float32)
    print(f"{args.volume}: residual σ ≈ {residual_sigma(volume):.3f} grey levels of max {volume.max():g}; BM4D at σ = {args.sigma:g}")
    start = time.perf_counter()
    clean = np.asarray(bm4d.bm4d(volume, sigma_psd=args.sigma), dtype=np.float32)
    clean = np.where(volume > 0, np.maximum(clean, 0.0), 0.0).astype(np.float32)
    print(f"BM4D: {time.perf_counter() - start:.0f} s; RMS change inside the brain {np.sqrt(np.mean((clean - volume)[volume > BRAIN_LEVEL] ** 2)):.3f}")
    header = image.header.copy()
    header.set_data_dtype(np.float32)
    with atomic_path(args.output) as temporary:
        nib.save(nib.Nifti1Image(clean, image.affine, header), temporary)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
