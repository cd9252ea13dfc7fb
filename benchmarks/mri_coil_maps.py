"""Coil maps as users of BART expect them: eigenvalue crop, two map sets, coil compression, body-coil maps, 3-D.

Command (the tables of ``benchmarks/mri-coil-maps.md``)::

    python benchmarks/mri_coil_maps.py --threads 1 --output results/mri_coil_maps.json

``--tables espirit,crop,safety,compression,body,volume`` runs a subset. Needs
``../shared/data/mri-raw-pulseq`` (twixtools) and the ``bart`` command (BART v0.8).

Tables:

* ``espirit`` — our ESPIRiT with BART's settings (``BART_ESPIRIT``) and with ``recon``'s default
  against ``bart ecalib -m 1`` on BART's phantom (``bart phantom -k -s 8 -x 128``) and the real
  16-coil slice: Dice of the supports (pixels kept by the crop), per-pixel correlation
  ``|<S_ours, S_bart>|`` on the common support (1 = equal up to a phase), median ``‖ΔS‖``.
* ``crop`` — ``recon`` (the task behind ``medrestore recon``: ``undersample_file`` then
  ``reconstruct_file`` with a reference, as ``recon --ref`` scores: fastMRI PSNR/SSIM after a
  least-squares intensity fit) of the real slice and of BART's phantom with noise (``bart noise
  -n 500``), Poisson-disc, random and equispaced lines at 4× and 8× (centre fraction 0.08, seed
  0), ``sense`` and ``cs-wavelet`` (``auto``'s choice for undersampled data), with ESPIRiT maps
  uncropped (``--espirit-crop 0``), cropped at 0.8 (the default) and with two map sets
  (``--maps 2``); ``bart ecalib`` (its defaults, and with our kernel width ``-k``) + ``bart pics``
  beside them. Three scores: against the RSS of
  the fully sampled data (``full``); against that reference masked to its support — BART's
  eigenvalue support of the fully sampled data — (``ref-masked``: a reference with a clean
  background); and both masked (``inside``: the anatomy alone). Means over the six masks.
* ``safety`` — the crop's support on the real slice at 10–24-line centres (4× equispaced lines)
  and 4–24-sample square centres (2-D random sampling), with extra noise (0 and 3 times the
  data's own): the share of anatomy pixels (RSS above 6× the background) it cuts, ours and
  ``bart ecalib``'s.
* ``compression`` — 16 → N virtual coils (svd, geometric) on the real slice, 4× lines and
  Poisson: PSNR/SSIM change and seconds of ``recon`` (maps + solve; smallest of ``--repeats``);
  agreement of the virtual-coil k-space with ``bart cc -S``/``-G``.
* ``body`` — maps from the 2-channel body-coil scan of the same slice against ESPIRiT: Dice,
  correlation, and ``recon`` scores with either maps at 4× with 10- and 24-line centres.
* ``volume`` — BART's 3-D phantom (``bart phantom -3 -k -s 4 -x 32``): zero-filled against
  ``bart fft -i 7`` + ``bart rss 8``, and Poisson-undersampled (``bart poisson -y 2 -z 2 -C 10``)
  ``sense``/``cs-wavelet`` against ``bart pics`` with 3-D ``ecalib`` maps.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medrestore.core.fft import ifftc, rss
from medrestore.io import read_kspace, write_kspace
from medrestore.io.raw_bart import read_bart_array, read_cfl
from medrestore.physics.mri.body_coil import body_coil_maps
from medrestore.physics.mri.coil_compression import CoilCompression, compress_kspace, compression_matrices
from medrestore.physics.mri.espirit import BART_ESPIRIT, calibration_shape, espirit_maps, kernel_width_for
from medrestore.physics.mri.masks import MaskSpec, equispaced_line_mask
from medrestore.tasks.recon import CLASSICAL_ESPIRIT, ReconOptions, reconstruct_file, score_reconstruction, undersample_file

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mri-raw-pulseq"
BRAIN, BODY = DATA / "2024-02-06-164128.dat", DATA / "2024-02-06-164120.dat"
MASKS = [(kind, acceleration) for kind in ("poisson", "random", "equispaced") for acceleration in (4, 8)]
MAP_VARIANTS = {
    "crop 0": dataclasses.replace(CLASSICAL_ESPIRIT, crop=0.0),
    "crop 0.8": CLASSICAL_ESPIRIT,
    "crop 0.8, principal-component phase": dataclasses.replace(CLASSICAL_ESPIRIT, phase_reference="principal-component"),
    "crop 0.8, 2 sets": dataclasses.replace(CLASSICAL_ESPIRIT, maps=2),
}
BART_LAMBDA = 0.01
REPEATS = 3


def bart(folder: Path, *arguments: object) -> None:
    """One BART command in ``folder``."""
    subprocess.run(["bart", *map(str, arguments)], cwd=folder, check=True, capture_output=True)


def bart_maps(folder: Path, name: str, *flags: object) -> np.ndarray:
    """``bart ecalib FLAGS name name_maps`` → ``(sets, coils, ny, nx)`` (2-D)."""
    bart(folder, "ecalib", *flags, name, f"{name}_maps")
    values, dims = read_bart_array(folder / f"{name}_maps")
    return values.reshape(dims[4], dims[3], dims[1], dims[0])


def agreement(ours: np.ndarray, theirs: np.ndarray) -> dict[str, float]:
    """Support Dice, correlation ``|<ours, theirs>|`` (median, 1st percentile) and median ``‖Δ‖`` on the common support."""
    support_ours, support_theirs = np.abs(ours).sum(0) > 0, np.abs(theirs).sum(0) > 0
    common = support_ours & support_theirs
    correlation = np.abs((ours.conj() * theirs).sum(0))[common]
    return {
        "pixels ours": int(support_ours.sum()), "pixels bart": int(support_theirs.sum()),
        "dice": 2 * float(common.sum()) / float(support_ours.sum() + support_theirs.sum()),
        "correlation median": float(np.median(correlation)), "correlation p1": float(np.percentile(correlation, 1)),
        "difference median": float(np.median(np.linalg.norm(ours - theirs, axis=0)[common])),
    }


def espirit_table(work: Path) -> list[dict[str, Any]]:
    """Our maps against ``bart ecalib -m 1`` on the phantom and the real slice."""
    rows = []
    for name in ("phantom", "brain"):
        kspace = read_kspace(work / f"{name}.cfl")
        theirs = bart_maps(work, name, "-m", 1)[0]
        for label, options in (("BART_ESPIRIT", BART_ESPIRIT), ("recon default", CLASSICAL_ESPIRIT)):
            ours, _ = espirit_maps(kspace.data, None, options)
            rows.append({"data": name, "maps": label, **agreement(ours.numpy(), theirs)})
    return rows


def prepare_data(work: Path) -> None:
    """The k-space files every table reads: the real slice and body coil as BART files, BART's phantoms."""
    write_kspace(read_kspace(BRAIN), work / "brain.cfl")
    write_kspace(read_kspace(BODY), work / "body.cfl")
    bart(work, "phantom", "-k", "-s", 8, "-x", 128, "phantom")
    bart(work, "noise", "-s", 1, "-n", 500, "phantom", "phantom_noisy")


def references(work: Path, name: str) -> tuple[Path, Path, np.ndarray]:
    """RSS reference of the fully sampled ``name`` (``recon --method zero-filled``), the same masked to BART's support, and the support."""
    reference = work / f"{name}_reference.npy"
    reconstruct_file(work / f"{name}.cfl", reference, ReconOptions("zero-filled"))
    support = np.abs(bart_maps(work, name, "-m", 1)[0]).sum(0) > 0
    masked = work / f"{name}_reference_masked.npy"
    np.save(masked, np.load(reference) * support)
    return reference, masked, support


def scores(output: Path, reference: Path, masked: Path, support: np.ndarray) -> dict[str, float]:
    """``full``, ``ref-masked`` and ``inside`` PSNR/SSIM of a reconstruction (see the module notes)."""
    image = torch.from_numpy(np.load(output)).to(torch.float32)
    full, clean = torch.from_numpy(np.load(reference)), torch.from_numpy(np.load(masked))
    inside = torch.from_numpy(support.astype(np.float32))
    row = {}
    for label, (x, y) in {"full": (image, full), "ref-masked": (image, clean), "inside": (image * inside, clean)}.items():
        metrics = score_reconstruction(x, y)
        row[f"{label} psnr"], row[f"{label} ssim"] = metrics["psnr"], metrics["ssim"]
    return row


def bart_pics(work: Path, under: Path, method: str, sets: int, *ecalib_flags: object) -> Path:
    """``bart ecalib -m SETS FLAGS`` + ``bart pics`` (l1-wavelet λ 0.01, or 10 CG iterations for sense) + ``rss`` over the sets."""
    stem = under.with_suffix("").name
    bart(work, "ecalib", "-m", sets, *ecalib_flags, stem, f"{stem}_m{sets}")
    regulariser = ["-R", f"W:7:0:{BART_LAMBDA}"] if method == "cs-wavelet" else ["-l2", "-r", 0, "-i", 10]
    bart(work, "pics", "-S", *regulariser, stem, f"{stem}_m{sets}", f"{stem}_pics")
    bart(work, "rss", 16, f"{stem}_pics", f"{stem}_pics_rss")
    output = work / f"{stem}_bart_{method}_{sets}.npy"
    np.save(output, np.abs(read_cfl(work / f"{stem}_pics_rss")).astype(np.float32))
    return output


def our_kernel_width(under: Path) -> int:
    """The ESPIRiT kernel width ``recon`` picks for an undersampled file (for ``bart ecalib -k``)."""
    kspace = read_kspace(under)
    region = calibration_shape(kspace.mask, kspace.samples_shape, CLASSICAL_ESPIRIT.calibration_width)
    return kernel_width_for(CLASSICAL_ESPIRIT, region, kspace.n_coils)


def crop_rows(work: Path, name: str, kind: str, acceleration: int, references_: tuple[Path, Path, np.ndarray]) -> list[dict[str, Any]]:
    """All map variants and BART for one data set and mask."""
    under = work / f"{name}_{kind}{acceleration}.cfl"
    undersample_file(work / f"{name}.cfl", under, MaskSpec(kind, acceleration, 0.08, 0))
    rows = []
    for method in ("sense", "cs-wavelet"):
        for label, espirit in MAP_VARIANTS.items():
            output = work / f"out_{name}_{kind}{acceleration}_{method}.npy"
            report = reconstruct_file(under, output, ReconOptions(method, espirit=espirit))
            rows.append({"data": name, "mask": f"{kind} {acceleration}x", "method": method, "maps": label,
                         "seconds": report["seconds"], **scores(output, *references_)})
        width = our_kernel_width(under)
        for sets, flags, label in ((1, (), "BART pics, ecalib -m 1"), (2, (), "BART pics, ecalib -m 2"),
                                   (1, ("-k", width), "BART pics, ecalib -m 1 -k (our width)")):
            output = bart_pics(work, under, method, sets, *flags)
            rows.append({"data": name, "mask": f"{kind} {acceleration}x", "method": method, "maps": label, **scores(output, *references_)})
    return rows


def mean_rows(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """Means of the numeric columns over the rows sharing ``keys``."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row[key] for key in keys), []).append(row)
    means = []
    for group_key, members in groups.items():
        numeric = {name: float(np.mean([m[name] for m in members])) for name, value in members[0].items()
                   if isinstance(value, float) and all(name in m for m in members)}
        means.append({**dict(zip(keys, group_key)), **numeric})
    return means


def crop_table(work: Path) -> dict[str, Any]:
    """The crop's effect on ``recon``, per mask and averaged."""
    rows = []
    for name in ("brain", "phantom_noisy"):
        references_ = references(work, name)
        for kind, acceleration in MASKS:
            rows.extend(crop_rows(work, name, kind, acceleration, references_))
    return {"rows": rows, "means": mean_rows(rows, ("data", "method", "maps"))}


def safety_masks(shape: tuple[int, int]) -> dict[str, torch.Tensor]:
    """4× equispaced lines with 10–24-line centres, and 2-D random sampling (20 %) around 6–24-sample square centres."""
    masks = {f"lines, {lines}-line centre": equispaced_line_mask(shape, 4, lines / shape[0], 0, axis=-2) for lines in (10, 12, 16, 20, 24)}
    for side in (4, 6, 8, 12, 16, 24):
        mask = torch.rand(shape, generator=torch.Generator().manual_seed(0)) < 0.2
        top, left = shape[0] // 2 - side // 2, shape[1] // 2 - side // 2
        mask[top : top + side, left : left + side] = True
        masks[f"2-D, {side}x{side} centre"] = mask
    return masks


def bart_support(work: Path, kspace: torch.Tensor, mask: torch.Tensor) -> np.ndarray | None:
    """Support of ``bart ecalib -m 1`` maps of the masked k-space (``None`` when BART fails)."""
    from medrestore.core.kspace import KSpace

    write_kspace(KSpace(kspace * mask, tuple(kspace.shape[1:]), mask), work / "safety.cfl")
    try:
        return np.abs(bart_maps(work, "safety", "-m", 1)[0]).sum(0) > 0
    except subprocess.CalledProcessError:
        return None


def safety_table(work: Path) -> list[dict[str, Any]]:
    """Anatomy cut by the crop (ours and BART's) at small centres and low SNR on the real slice."""
    kspace = read_kspace(BRAIN).data
    reference = rss(ifftc(kspace), 0)
    anatomy = (reference > 6 * float(reference[:12, :12].mean())).numpy()
    noise = float(ifftc(kspace)[:, :12, :12].abs().pow(2).mean().sqrt())
    generator = torch.Generator().manual_seed(0)
    rows = []
    for extra in (0, 3):
        white = torch.complex(torch.randn(kspace.shape, generator=generator), torch.randn(kspace.shape, generator=generator))
        noisy = kspace + extra * noise * white / 2**0.5
        for label, mask in safety_masks(tuple(kspace.shape[1:])).items():
            maps, _ = espirit_maps(noisy * mask, mask, CLASSICAL_ESPIRIT)
            ours = (maps.abs().sum(0) > 0).numpy()
            theirs = bart_support(work, noisy, mask)
            rows.append({"extra noise": extra, "sampling": label, "support pixels": int(ours.sum()),
                         "anatomy cut %": 100 * float((anatomy & ~ours).sum() / anatomy.sum()),
                         "BART anatomy cut %": None if theirs is None else 100 * float((anatomy & ~theirs).sum() / anatomy.sum())})
    return rows


def timed_recon(under: Path, output: Path, options: ReconOptions) -> dict[str, Any]:
    """``reconstruct_file``'s report with the smallest ``seconds`` of ``REPEATS`` runs."""
    reports = [reconstruct_file(under, output, options) for _ in range(REPEATS)]
    return min(reports, key=lambda report: report["seconds"])


def compression_rows(work: Path, kind: str, acceleration: int, reference: Path, masked: Path, support: np.ndarray) -> list[dict[str, Any]]:
    """16 coils vs virtual coils on one mask: scores and seconds of ``recon`` (cs-wavelet and sense)."""
    under = work / f"brain_{kind}{acceleration}.cfl"
    undersample_file(work / "brain.cfl", under, MaskSpec(kind, acceleration, 0.08, 0))
    settings: dict[str, CoilCompression | None] = {"16 coils": None}
    for virtual in (4, 6, 8, 12):
        for compression in ("svd", "geometric"):
            settings[f"{compression} {virtual}"] = CoilCompression(compression, virtual)  # type: ignore[arg-type]
    settings["auto, energy 0.99"] = CoilCompression("auto", None, 0.99)
    rows = []
    for method in ("sense", "cs-wavelet"):
        for label, compression in settings.items():
            output = work / f"out_cc_{kind}{acceleration}_{method}.npy"
            try:
                report = timed_recon(under, output, ReconOptions(method, coil_compression=compression))
            except Exception as error:  # geometric compression refuses masks that vary along the readout
                rows.append({"mask": f"{kind} {acceleration}x", "method": method, "coils": label, "refused": str(error)})
                continue
            rows.append({"mask": f"{kind} {acceleration}x", "method": method, "coils": label,
                         "seconds": report["seconds"], **scores(output, reference, masked, support)})
    return rows


def bart_cc_agreement(work: Path) -> list[dict[str, Any]]:
    """Our virtual-coil k-space against ``bart cc -p N -S``/``-G`` on the real slice (fully sampled)."""
    kspace = read_kspace(work / "brain.cfl").data
    total = float((kspace.abs() ** 2).sum())
    rows = []
    for kind, flag in (("svd", "-S"), ("geometric", "-G")):
        for virtual in (4, 8):
            bart(work, "cc", "-p", virtual, flag, "brain", f"cc_{kind}_{virtual}")
            theirs = torch.from_numpy(read_cfl(work / f"cc_{kind}_{virtual}").reshape(virtual, *kspace.shape[1:]))
            ours = compress_kspace(kspace, compression_matrices(kspace, None, CoilCompression(kind, virtual)))  # type: ignore[arg-type]
            rows.append({"compression": kind, "virtual coils": virtual,
                         "energy kept ours": float((ours.abs() ** 2).sum()) / total,
                         "energy kept bart": float((theirs.abs() ** 2).sum()) / total,
                         "subspace residual": subspace_residual(ours, theirs, kind == "geometric")})
    return rows


def subspace_residual(ours: torch.Tensor, theirs: torch.Tensor, per_readout: bool) -> float:
    """``‖y_bart − U y_ours‖ / ‖y_bart‖`` with the best unitary ``U`` (per readout position in hybrid space for geometric).

    The virtual coils are defined up to a unitary mixing (the order and phases of equal-energy
    components, and the alignment's start), so this compares the spaces the two span.
    """
    a = ifftc(ours, 1).to(torch.complex128) if per_readout else ours.to(torch.complex128)[..., None]
    b = ifftc(theirs, 1).to(torch.complex128) if per_readout else theirs.to(torch.complex128)[..., None]
    a, b = a.reshape(a.shape[0], -1, a.shape[-1]).movedim(-1, 0), b.reshape(b.shape[0], -1, b.shape[-1]).movedim(-1, 0)
    left, _, right = torch.linalg.svd(b @ a.conj().transpose(-1, -2))
    residual = b - (left @ right) @ a
    return float(torch.linalg.vector_norm(residual) / torch.linalg.vector_norm(b))


def compression_table(work: Path) -> dict[str, Any]:
    """Virtual coils on the real slice: quality and time, and agreement with ``bart cc``."""
    reference, masked, support = references(work, "brain")
    rows = []
    for kind, acceleration in (("equispaced", 4), ("random", 4), ("poisson", 4)):
        rows.extend(compression_rows(work, kind, acceleration, reference, masked, support))
    return {"rows": rows, "bart cc": bart_cc_agreement(work)}


def body_table(work: Path) -> dict[str, Any]:
    """Body-coil referenced maps against ESPIRiT on the real pair, and ``recon`` with either (10- and 24-line centres)."""
    head, body = read_kspace(work / "brain.cfl"), read_kspace(work / "body.cfl")
    espirit, _ = espirit_maps(head.data, None, CLASSICAL_ESPIRIT)
    referenced = body_coil_maps(head.data, body.data)
    normalised = referenced / (referenced.abs() ** 2).sum(0).sqrt().clamp_min(1e-30)
    maps = agreement(normalised.numpy(), espirit.numpy())
    reference, masked, support = references(work, "brain")
    rows = []
    for centre in (0.08, 0.1875):
        for kind in ("equispaced", "random", "poisson"):
            under = work / f"brain_{kind}4_centre{centre}.cfl"
            undersample_file(work / "brain.cfl", under, MaskSpec(kind, 4, centre, 0))
            for method in ("sense", "cs-wavelet"):
                for label, source in (("ESPIRiT", "espirit"), ("body coil", str(work / "body.cfl"))):
                    output = work / f"out_body_{method}.npy"
                    reconstruct_file(under, output, ReconOptions(method, source))
                    rows.append({"centre lines": round(centre * 128), "mask": f"{kind} 4x", "method": method, "maps": label,
                                 **scores(output, reference, masked, support)})
    return {"maps (fully sampled, per-pixel unit norm) vs ESPIRiT": maps, "rows": rows,
            "means": mean_rows(rows, ("centre lines", "method", "maps"))}


def volume_table(work: Path) -> list[dict[str, Any]]:
    """BART's 3-D phantom: zero-filled against ``bart fft``/``rss``; undersampled against ``bart pics``."""
    bart(work, "phantom", "-3", "-k", "-s", 4, "-x", 32, "volume")
    bart(work, "fft", "-i", 7, "volume", "volume_coils")
    bart(work, "rss", 8, "volume_coils", "volume_rss")
    bart_zero_filled = torch.from_numpy(np.abs(read_cfl(work / "volume_rss")).astype(np.float32))
    reference = work / "volume_reference.npy"
    reconstruct_file(work / "volume.cfl", reference, ReconOptions("zero-filled"))
    ours = torch.from_numpy(np.load(reference))
    gain = float((ours * bart_zero_filled).sum() / (ours * ours).sum())
    rows = [{"case": "fully sampled", "method": "zero-filled vs bart fft -i 7 + rss 8",
             "relative difference": float(torch.linalg.vector_norm(gain * ours - bart_zero_filled) / torch.linalg.vector_norm(bart_zero_filled))}]
    bart(work, "poisson", "-Y", 32, "-Z", 32, "-y", 2, "-z", 2, "-C", 10, "-v", "-e", "-s", 1, "volume_pattern")
    bart(work, "fmac", "volume", "volume_pattern", "volume_under")
    for method in ("zero-filled", "sense", "cs-wavelet"):
        output = work / f"volume_{method}.npy"
        report = reconstruct_file(work / "volume_under.cfl", output, ReconOptions(method), reference)
        rows.append({"case": "poisson 2x2", "method": method, "seconds": report["seconds"],
                     "psnr": report["metrics"]["psnr"], "ssim": report["metrics"]["ssim"]})
    bart(work, "ecalib", "-m", 1, "volume_under", "volume_maps")
    start = time.perf_counter()
    bart(work, "pics", "-S", "-R", f"W:7:0:{BART_LAMBDA}", "volume_under", "volume_maps", "volume_pics")
    metrics = score_reconstruction(torch.from_numpy(np.abs(read_cfl(work / "volume_pics")).astype(np.float32)), ours)
    rows.append({"case": "poisson 2x2", "method": "BART ecalib + pics (3-D)", "seconds": time.perf_counter() - start,
                 "psnr": metrics["psnr"], "ssim": metrics["ssim"]})
    return rows


TABLES = {"espirit": espirit_table, "crop": crop_table, "safety": safety_table,
          "compression": compression_table, "body": body_table, "volume": volume_table}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", default=",".join(TABLES), help=f"comma-separated subset of {', '.join(TABLES)}")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--output", default="results/mri_coil_maps.json", help="JSON file of all tables")
    args = parser.parse_args()
    if shutil.which("bart") is None or not BRAIN.is_file():
        raise SystemExit("needs the bart command and ../shared/data/mri-raw-pulseq")
    torch.set_num_threads(args.threads)
    results: dict[str, Any] = {"machine": f"{platform.node()} {platform.processor() or platform.machine()}, {args.threads} thread(s)"}
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        prepare_data(work)
        for name in args.tables.split(","):
            start = time.perf_counter()
            results[name] = TABLES[name](work)
            print(f"{name}: {time.perf_counter() - start:.0f} s", flush=True)
            print(json.dumps(results[name], indent=1)[:4000], flush=True)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
