"""Make the documentation's before/after figures (``docs/figures/*.png``) with the public API.

Every figure runs one workflow the way a user's script would — ``medrestore.degrade`` to make the
input, the workflow's call with its defaults, ``medrestore.evaluate`` to score it — on the built-in
phantoms and on the shared data the demo uses (``../shared/data`` beside the project, or
``--data``)::

    python docs/make_figures.py                 # all figures, about 20 s on one CPU thread
    python docs/make_figures.py --only oct      # one of: recon-cartesian, recon-radial, denoise-mri, harmonize, superres-nm, oct

The PNGs are committed, so building the site never runs this script. Each panel title carries the
PSNR/SSIM of that image against the reference shown beside it; the inset magnifies the region where
the output differs most from the reference, and the last panel is that difference. Figures are
written atomically as 8-bit palette PNGs (a few tens of KB each).
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image as PILImage

import medrestore
from medrestore.core.files import atomic_write_bytes
from medrestore.core.image import affine_from_spacing
from medrestore.core.random import make_generator
from medrestore.data.nm_phantoms import bone_scan_phantom
from medrestore.data.phantoms import shepp_logan
from medrestore.io import read_image
from medrestore.physics.mri import MaskSpec, sample_mask
from medrestore.physics.mri.simulation import birdcage_coil_maps, simulate_kspace
from medrestore.physics.mri.trajectory import GradientDelay
from medrestore.report.figures import restoration_figure
from medrestore.tasks.radial import RadialSimulation, simulate_radial

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "docs" / "figures"
COLIN27 = ("brain-mri-ants", "ch2.nii.gz")
DUKE_SUBJECT = ("oct-duke-bioptigen", "9")
MAX_BYTES = 150_000
"""The largest figure file: the PNGs are committed to the repository."""


def _scores(image: medrestore.Image, reference: medrestore.Image, convention: str = "default") -> str:
    """``PSNR dB / SSIM`` of ``image`` against ``reference`` (whole image, ``convention``)."""
    metrics, _ = medrestore.evaluate(image, reference, convention)
    return f"{metrics['psnr']:.2f} dB / {metrics['ssim']:.3f}"


def _display(image: medrestore.Image | torch.Tensor, upright: bool = True) -> np.ndarray:
    """A 2-D float magnitude array for display; ``upright``: an anatomical ``(x, y)`` slice turned so y points up."""
    data = image.data if isinstance(image, medrestore.Image) else image
    array = data.detach().abs().double().cpu().numpy()
    return np.rot90(array) if upright else array


def _write(name: str, panels: list[tuple[str, np.ndarray]], output: np.ndarray, reference: np.ndarray) -> Path:
    """Render the panels with an inset and ``output − reference``, quantise to 8 bits, write ``FIGURES/name``."""
    png = restoration_figure(panels, ("output − reference", output - reference), window_index=len(panels) - 1)
    rendered = PILImage.open(io.BytesIO(png)).convert("RGB")
    for colors in (256, 128, 64):  # the most grey levels that keep the file under MAX_BYTES
        buffer = io.BytesIO()
        rendered.quantize(colors=colors).save(buffer, format="PNG", optimize=True)
        if buffer.tell() <= MAX_BYTES:
            break
    return atomic_write_bytes(FIGURES / name, buffer.getvalue())


def colin27_slice(data: Path, z: int = 90) -> medrestore.Image:
    """An axial slice of Colin27 ``(X, Y)``, cropped to its head, in its own intensity units."""
    volume = read_image(data.joinpath(*COLIN27))
    plane = volume.data[8:176, 8:208, z].to(torch.float32)
    return medrestore.Image(plane, affine_from_spacing((1.0, 1.0)), 2, "mri")


def recon_cartesian(data: Path) -> Path:
    """8-coil k-space of a Colin27 slice, equispaced 4× with an 8 % centre: zero-filled against ``auto``."""
    clean = colin27_slice(data)
    clean = clean.with_data(clean.data / clean.data.max())
    shape = tuple(clean.data.shape)
    maps = birdcage_coil_maps(shape, 8, 1.5)
    mask = sample_mask(MaskSpec("equispaced", 4, 0.08, 0), shape)
    samples = simulate_kspace(clean.data.to(torch.complex64), maps, 0.005, make_generator(1)) * mask
    kspace = medrestore.KSpace(samples, shape, mask)
    zero_filled, _ = medrestore.recon(kspace, method="zero-filled")
    image, record = medrestore.recon(kspace)
    panels = [(f"zero-filled, 4×: {_scores(zero_filled, clean)}", _display(zero_filled)),
              (f"recon ({record['method']}): {_scores(image, clean)}", _display(image)),
              ("fully sampled image", _display(clean))]
    return _write("recon-cartesian.png", panels, _display(image), _display(clean))


def recon_radial(data: Path) -> Path:
    """Golden-angle radial k-space (48 spokes, 8 coils) of the Shepp–Logan phantom with gradient delays."""
    del data  # built-in phantom
    clean = medrestore.Image(torch.from_numpy(shepp_logan(128)), affine_from_spacing((1.0, 1.0)), 2, "mri")
    options = RadialSimulation(spokes=48, delay=GradientDelay(0.7, -0.4), coils=8, seed=0)
    kspace = simulate_radial(clean, options)
    gridded, _ = medrestore.recon(kspace, method="zero-filled", delay_correction="none")
    image, record = medrestore.recon(kspace)  # what `medrestore recon` runs on radial k-space
    show = lambda image: _display(image, upright=False)  # noqa: E731  (the phantom is stored as displayed)
    panels = [(f"gridding, delays uncorrected: {_scores(gridded, clean)}", show(gridded)),
              (f"recon ({record['method']}): {_scores(image, clean)}", show(image)),
              ("phantom", show(clean))]
    return _write("recon-radial.png", panels, show(image), show(clean))


def denoise_mri(data: Path) -> Path:
    """A Colin27 block ``(128, 160, 48)`` with Rician noise of 5 % of its maximum, denoised by ``auto``.

    The block is the benchmark's ``z = 88…135``: its middle slice lies in the slab no shipped network saw.
    """
    volume = read_image(data.joinpath(*COLIN27))
    block = volume.data[26:154, 30:190, 88:136].to(torch.float32).contiguous()
    clean = medrestore.Image(block, affine_from_spacing((1.0, 1.0, 1.0)), 3, "mri")
    noisy, _ = medrestore.degrade(clean, "rician", sigma=0.05, relative=True, seed=0)
    denoised, record = medrestore.denoise(noisy, modality="mri")
    z = block.shape[2] // 2
    pick = lambda image: _display(image.data[:, :, z])  # noqa: E731  (the middle axial slice)
    panels = [(f"Rician σ = 5 %: {_scores(noisy, clean)}", pick(noisy)),
              (f"denoise ({record['method']}): {_scores(denoised, clean)}", pick(denoised)),
              ("Colin27 (27 scans averaged)", pick(clean))]
    return _write("denoise-mri.png", panels, pick(denoised), pick(clean))


def harmonize(data: Path) -> Path:
    """A Colin27 slice imaged by the simulated scanner b (3 T-like) harmonised to scanner a (1.5 T-like)."""
    clean = colin27_slice(data)
    scanner_a, _ = medrestore.degrade(clean, "scanner", scanner="a", seed=0)
    scanner_b, _ = medrestore.degrade(clean, "scanner", scanner="b", seed=0)
    harmonised, _ = medrestore.harmonize(scanner_b, model="cyclegan-sim", direction="b2a")
    panels = [(f"scanner b (3 T-like): {_scores(scanner_b, scanner_a)}", _display(scanner_b)),
              (f"harmonised b→a: {_scores(harmonised, scanner_a)}", _display(harmonised)),
              ("scanner a (1.5 T-like)", _display(scanner_a))]
    return _write("harmonize.png", panels, _display(harmonised), _display(scanner_a))


def superres_nm(data: Path) -> Path:
    """A simulated anterior bone scan (2.4-mm pixels) acquired ×4 coarser, super-resolved ×4 in counts."""
    del data  # built-in phantom
    activity = torch.from_numpy(bone_scan_phantom(256, make_generator(0))).to(torch.float32)
    original = medrestore.Image(activity * (200.0 / float(activity.max())), affine_from_spacing((2.4, 2.4)), 2, "nm")
    counts, _ = medrestore.degrade(original, "gamma-camera", total_counts=float(original.data.sum()), seed=0)
    restored, record = medrestore.superres(counts, scale=4)
    bicubic, _ = medrestore.superres(counts, scale=4, method="bicubic")
    show = lambda image: _display(image, upright=False)  # noqa: E731  (the phantom is stored as displayed)
    panels = [("acquired 64 × 64 (counts ÷ 16)", show(counts) / 16),
              (f"bicubic: {_scores(bicubic, original)}", show(bicubic)),
              (f"superres ({record['method']}): {_scores(restored, original)}", show(restored)),
              ("expected counts, 256 × 256", show(original))]
    return _write("superres-nm.png", panels, show(restored), show(original))


def oct_bscan(data: Path) -> Path:
    """One noisy Duke/Bioptigen B-scan (subject 9, a validation eye) against its registered average."""
    folder = data.joinpath(*DUKE_SUBJECT)
    noisy, average = read_image(folder / "test.tif"), read_image(folder / "average.tif")
    denoised, record = medrestore.denoise(noisy, modality="oct")
    crop = lambda image: image.data[100:356, 200:712].double().numpy()  # noqa: E731  (the retina, as stored)
    panels = [(f"noisy B-scan: {_scores(noisy, average, 'oct')}", crop(noisy)),
              (f"denoise ({record.get('model', 'default')}): {_scores(denoised, average, 'oct')}", crop(denoised)),
              ("average of the registered frames", crop(average))]
    return _write("oct.png", panels, crop(denoised), crop(average))


FIGURE_MAKERS: dict[str, Callable[[Path], Path]] = {
    "recon-cartesian": recon_cartesian, "recon-radial": recon_radial, "denoise-mri": denoise_mri,
    "harmonize": harmonize, "superres-nm": superres_nm, "oct": oct_bscan,
}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="the shared data folder (default: %(default)s)")
    parser.add_argument("--only", choices=sorted(FIGURE_MAKERS), action="append", help="make only these figures (repeatable)")
    arguments = parser.parse_args(argv)
    torch.set_num_threads(1)
    for name in arguments.only or FIGURE_MAKERS:
        start = time.perf_counter()
        path = FIGURE_MAKERS[name](arguments.data)
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size / 1024:.0f} KB in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
