"""Gradient-delay estimation across sources: our estimators beside BART's ``estdelay`` on the same data.

Sources (every data set is written as a BART k-space + trajectory pair and read back with
``medrestore.io.read_kspace(path, trajectory=...)``, so our estimators and BART's read the same
numbers; delays are compared in BART's ``traj -q`` axes):

* ``bart`` — BART's simulator: ``bart traj -x X -y Y -r -G -o 2 -c [-O] -q DX:DY:DXY`` (the
  actual trajectory; the nominal one without ``-q``), ``bart phantom -k -s C -t``, and
  ``bart noise -s SEED -n VAR`` with ``VAR = (noise · max|k|)²``. ``-O`` moves every sample by
  the whole vector ``S n`` (per-axis delays, the physical model); without it only the part
  along the spoke moves.
* ``bart-extra`` — the same with 4 coils (BART's phantom simulates at most 8), uniform ordering
  (``-r`` without ``-G``: spokes over 180°, and ``-D``: over 360°), no readout oversampling
  (``-o 1``), and 2 or 8 coils at noise far above real scans' (0.05, 0.1).
* ``ours`` — :func:`medrestore.tasks.radial.simulate_radial` of the real brain slices
  ``brain-mri-ants/r*slice.jpg`` (block-averaged to 128²; 8 birdcage coils, 2× oversampling,
  the whole vector ``S n``, noise relative to ``max|y|``), also with 4 and 16 coils.
* ``failures`` — data where an estimator must fail: pure noise, two spokes, delays beyond
  RING's search window, uniform spokes over 180° (no antiparallel pairs).
* ``noise`` — the noise of real scans relative to their largest k-space magnitude
  (``mri-raw-pulseq``, :func:`~medrestore.physics.mri.kspace_noise.kspace_noise_std`): the
  basis of ``simulate-radial``'s default noise.

Per row: RMS error (samples, over x, y, xy, the delays and the noise seeds) of our RING,
AC-adaptive and the default (``auto``: RING checked by AC-adaptive, with its fallbacks; "no
correction" counts as the error of the delay itself), BART's ``estdelay`` (AC-adaptive) and
``estdelay -R`` (RING), and the mean seconds per data set (one thread each: torch and
``OMP_NUM_THREADS=1``). The quality lines give the extreme fit-quality numbers over the valid
data (the thresholds of :data:`medrestore.physics.mri.delay_estimation.DEFAULT_CHECK`).

Usage::

    python benchmarks/radial_delays.py [--sections bart bart-extra ours failures noise] [--quick] [--json results.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from medrestore.core.image import Image
from medrestore.io import read_image, read_kspace
from medrestore.io.raw_bart import read_cfl, write_cfl
from medrestore.physics.mri.delay_estimation import DEFAULT_CHECK, DelayEstimate, decide_delay, estimate_delay
from medrestore.physics.mri.kspace_noise import kspace_noise_std
from medrestore.physics.mri.trajectory import GradientDelay
from medrestore.tasks.radial import RadialSimulation, delay_in_input_axes, simulate_radial

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "brain-mri-ants"
RAW = DATA.parent / "mri-raw-pulseq"
SCANS = {"2024-02-06-164128.dat": "brain, 16-channel head coil", "2024-02-06-160052.dat": "phantom, 16-channel head coil",
         "2024-02-06-164120.dat": "brain, 2-channel body coil", "2024-02-06-160115.dat": "phantom, 2-channel body coil"}
DELAYS = ("0.5:-0.3:0", "0.3:-0.2:0.15", "-0.6:-0.6:0", "1:-0.5:0.3")
"""Delays in BART's axes (DX:DY:DXY, samples): anisotropic, with a cross term, isotropic, large."""
ESTIMATORS = ("ring", "ac-adaptive", "auto", "bart", "bart-R")
ENVIRONMENT = {**os.environ, "OMP_NUM_THREADS": "1"}


@dataclasses.dataclass(frozen=True)
class Case:
    """One row: how the data are made (``source`` ``bart`` or ``ours``), and the delays and seeds it averages over."""

    source: str
    matrix: int = 128
    spokes: int = 64
    ordering: str = "golden"  # golden, uniform (180°), uniform-360
    transverse: bool = True  # BART -O: every sample moves by S n
    coils: int = 8
    noise: float = 0.0
    oversampling: int = 2
    delays: tuple[str, ...] = DELAYS
    seeds: int = 1

    def label(self) -> str:
        model = "-O" if self.transverse else "no -O"
        return (f"{self.source} {self.matrix}² {self.spokes} {self.ordering} {model if self.source == 'bart' else 'S n'} "
                f"{self.coils} coils noise {self.noise:g} os {self.oversampling}")


def bart(folder: Path, *arguments: object) -> str:
    return subprocess.run(["bart", *map(str, arguments)], cwd=folder, check=True, capture_output=True, text=True,
                          env=ENVIRONMENT).stdout


def _traj_options(case: Case, spokes: int) -> list[object]:
    ordering = {"golden": ["-G"], "uniform": [], "uniform-360": ["-D"]}[case.ordering]
    return ["-x", case.matrix, "-y", spokes, "-r", *ordering, "-o", case.oversampling, "-c"]


def bart_dataset(folder: Path, case: Case, delay: str, seed: int, spokes: int | None = None) -> None:
    """``k``/``t`` in ``folder``: BART's phantom on BART's delayed trajectory, BART's noise."""
    options = _traj_options(case, spokes or case.spokes)
    bart(folder, "traj", *options, "t")
    bart(folder, "traj", *options, *(["-O"] if case.transverse else []), "-q", delay, "t_actual")
    bart(folder, "phantom", "-k", "-s", case.coils, "-t", "t_actual", "k_clean")
    peak = float(np.abs(read_cfl(folder / "k_clean")).max())
    if case.noise > 0:
        bart(folder, "noise", "-s", seed + 1, "-n", (case.noise * peak) ** 2, "k_clean", "k")
    else:
        bart(folder, "copy", "k_clean", "k")


def write_bart_pair(folder: Path, data: torch.Tensor, trajectory: torch.Tensor) -> None:
    """Our ``(coils, spokes, readout)`` data and ``(spokes, readout, (ky, kx))`` trajectory as BART ``k``/``t``.

    BART's coordinate 0 is our ``kx``, coordinate 1 our ``ky`` (grid units both).
    """
    coordinates = torch.stack([trajectory[..., 1], trajectory[..., 0], torch.zeros_like(trajectory[..., 0])], dim=-1)
    write_cfl(coordinates.numpy().astype(np.complex64), folder / "t")  # [3, readout, spokes]
    write_cfl(data.numpy().astype(np.complex64)[..., None], folder / "k")  # [1, readout, spokes, coils]


def brain_images() -> list[Image]:
    images = []
    for path in sorted(DATA.glob("r*slice.jpg")):
        pixels = torch.nn.functional.avg_pool2d(read_image(path).data.to(torch.float32)[None, None], 2)[0, 0]
        images.append(Image.from_array(pixels / pixels.max(), modality="mri"))
    return images


def ours_dataset(folder: Path, case: Case, image: Image, delay: str, seed: int) -> None:
    """``k``/``t`` in ``folder``: :func:`simulate_radial` of ``image`` with ``delay`` given in BART's axes."""
    dx, dy, dxy = (float(value) for value in delay.split(":"))
    options = RadialSimulation(case.spokes, case.ordering == "golden", False, float(case.oversampling),
                               GradientDelay(dy, dx, dxy), case.coils, case.noise, seed)
    kspace = simulate_radial(image, options)
    write_bart_pair(folder, kspace.data, kspace.trajectory)


def _ours(data: torch.Tensor, trajectory: torch.Tensor, method: str) -> tuple[DelayEstimate | str, float]:
    start = time.perf_counter()
    try:
        result: DelayEstimate | str = estimate_delay(data, trajectory, method)
    except ValueError as error:
        result = str(error)
    return result, time.perf_counter() - start


def _bart_estimate(folder: Path, ring: bool) -> tuple[GradientDelay | None, float]:
    start = time.perf_counter()
    try:
        text = bart(folder, "estdelay", *(["-R"] if ring else []), "t", "k").strip().splitlines()[-1]
        values = [float(value) for value in text.split(":")]
        result = GradientDelay(*values) if all(math.isfinite(value) for value in values) else None
    except (subprocess.CalledProcessError, ValueError):
        result = None
    return result, time.perf_counter() - start


def evaluate(folder: Path, truth: GradientDelay) -> dict[str, object]:
    """Errors (BART axes), seconds and fit quality of every estimator on ``folder``'s ``k``/``t``."""
    kspace = read_kspace(folder / "k.cfl", trajectory=folder / "t.cfl")
    to_bart = lambda delay: delay_in_input_axes(kspace.metadata, delay)  # noqa: E731
    ring, ring_seconds = _ours(kspace.data, kspace.trajectory, "ring")
    ac, ac_seconds = _ours(kspace.data, kspace.trajectory, "ac-adaptive")
    decision = decide_delay(ring, ac, DEFAULT_CHECK)
    applied = GradientDelay() if decision.applied is None else to_bart(decision.applied.delay)
    result: dict[str, object] = {"seconds": {"ring": ring_seconds, "ac-adaptive": ac_seconds, "auto": ring_seconds + ac_seconds},
                                 "errors": {"auto": applied.error(truth)}, "fallback": decision.fallback,
                                 "applied": "none" if decision.applied is None else decision.applied.method, "quality": {}}
    for name, estimate in (("ring", ring), ("ac-adaptive", ac)):
        if isinstance(estimate, DelayEstimate):
            result["errors"][name] = to_bart(estimate.delay).error(truth)  # type: ignore[index]
            result["quality"][name] = {"mismatch": estimate.mismatch, "uncertainty": estimate.uncertainty,  # type: ignore[index]
                                       "model": estimate.model}
    if decision.disagreement is not None:
        result["quality"]["ratio"] = decision.disagreement / decision.threshold  # type: ignore[index, operator]
    for name, ring_flag in (("bart", False), ("bart-R", True)):
        estimate, seconds = _bart_estimate(folder, ring_flag)
        result["seconds"][name] = seconds  # type: ignore[index]
        if estimate is not None:
            result["errors"][name] = estimate.error(truth)  # type: ignore[index]
    return result


def run_case(case: Case, images: list[Image]) -> dict[str, object]:
    """Every delay × seed of ``case``: RMS errors, mean seconds, fallbacks and the extreme fit quality."""
    results = []
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        for delay in case.delays:
            truth = GradientDelay(*(float(value) for value in delay.split(":")))
            for seed in range(case.seeds):
                if case.source == "bart":
                    bart_dataset(folder, case, delay, seed)
                else:
                    ours_dataset(folder, case, images[seed % len(images)], delay, seed)
                results.append(evaluate(folder, truth))
    return {"case": dataclasses.asdict(case), "label": case.label(), **summarise(results)}


def summarise(results: list[dict]) -> dict[str, object]:
    """RMS error and mean seconds per estimator, fallback count, extreme fit quality over ``results``."""
    rms, seconds, failed = {}, {}, {}
    for name in ESTIMATORS:
        errors = [result["errors"][name] for result in results if name in result["errors"]]
        rms[name] = math.sqrt(float(np.mean(np.square(errors)))) if errors else None
        failed[name] = len(results) - len(errors)
        seconds[name] = float(np.mean([result["seconds"].get(name, 0.0) for result in results]))
    quality: dict[str, float] = {}
    for result in results:
        for method in ("ring", "ac-adaptive"):
            for key in ("mismatch", "uncertainty"):
                value = result["quality"].get(method, {}).get(key)
                if value is not None:
                    quality[f"{method} {key}"] = max(quality.get(f"{method} {key}", 0.0), value)
        if "ratio" in result["quality"]:
            quality["disagreement/threshold"] = max(quality.get("disagreement/threshold", 0.0), result["quality"]["ratio"])
    models = sorted({result["quality"]["ring"]["model"] for result in results if "ring" in result["quality"]})
    applied = {name: sum(result["applied"] == name for result in results) for name in ("ring", "ac-adaptive", "none")}
    return {"datasets": len(results), "rms": rms, "seconds": seconds, "failed": failed, "fallbacks": sum(r["fallback"] for r in results),
            "applied": applied, "quality": quality, "ring_models": models}


def bart_cases(quick: bool) -> list[Case]:
    """The main grid on BART's simulator: matrix × spokes × delay model × noise."""
    cases = []
    for matrix in (128,) if quick else (128, 256):
        for spokes in (16, 32, 64):
            for transverse in (False, True):
                for noise in (0.0, 0.005, 0.02):
                    cases.append(Case("bart", matrix, spokes, transverse=transverse, noise=noise,
                                      delays=DELAYS[:2] if quick else DELAYS, seeds=1 if noise == 0 or quick else 2))
    return cases


def extra_cases(quick: bool) -> list[Case]:
    """Coils, orderings and no readout oversampling on BART's simulator."""
    delays = DELAYS[:2] if quick else DELAYS
    cases = [Case("bart", 128, 32, coils=coils, transverse=transverse, noise=0.005, delays=delays, seeds=1 if quick else 2)
             for coils in (4,) for transverse in (False, True)]  # BART's phantom simulates at most 8 coils
    cases += [Case("bart", 128, 64, ordering, transverse=transverse, noise=0.005, delays=delays)
              for ordering in ("uniform", "uniform-360") for transverse in (False, True)]
    cases += [Case("bart", 128, spokes, transverse=transverse, noise=noise, oversampling=1, delays=delays)
              for spokes in (32, 64) for transverse in (False, True) for noise in (0.0, 0.005)]
    cases += [Case("bart", 128, 32, coils=coils, noise=noise, delays=delays)  # far noisier than real scans
              for coils in (2, 8) for noise in (0.05, 0.1)]
    return cases


def ours_cases(quick: bool) -> list[Case]:
    """Our simulator on the brain slices (``seeds`` = slices used, one noise draw each)."""
    delays = DELAYS[:2] if quick else DELAYS
    cases = [Case("ours", 128, spokes, noise=noise, delays=delays, seeds=2 if quick else 3)
             for spokes in (16, 32, 64) for noise in (0.005, 0.02)]
    cases += [Case("ours", 128, 32, coils=coils, noise=0.005, delays=delays, seeds=2 if quick else 3) for coils in (4, 16)]
    cases.append(Case("ours", 128, 64, "uniform", noise=0.005, delays=delays, seeds=2 if quick else 3))
    return cases


def _noise_only(folder: Path) -> None:
    """BART's nominal golden-angle trajectory (128², 64 spokes) with 8 coils of pure complex noise."""
    bart(folder, "traj", "-x", 128, "-y", 64, "-r", "-G", "-o", 2, "-c", "t")
    generator = torch.Generator().manual_seed(0)
    noise = torch.complex(torch.randn(8, 64, 256, generator=generator), torch.randn(8, 64, 256, generator=generator))
    write_cfl(noise.numpy().astype(np.complex64)[..., None], folder / "k")


FAILURES = (
    ("pure noise (no signal)", "0:0:0", lambda folder: _noise_only(folder)),
    ("2 spokes", "0.5:-0.3:0", lambda folder: bart_dataset(folder, Case("bart", 128, 2, noise=0.005), "0.5:-0.3:0", 0)),
    ("delay beyond RING's ±4-sample window", "5:4:0",
     lambda folder: bart_dataset(folder, Case("bart", 128, 64, noise=0.005), "5:4:0", 0)),
    ("delay beyond RING's window, wrong crossings (our simulator, brain)", "-5:-6:0",
     lambda folder: ours_dataset(folder, Case("ours", 128, 64, noise=0.005), brain_images()[0], "-5:-6:0", 0)),
    ("uniform spokes over 180° (no antiparallel pairs)", "0.5:-0.3:0",
     lambda folder: bart_dataset(folder, Case("bart", 128, 32, "uniform", noise=0.005), "0.5:-0.3:0", 0)),
    ("no readout oversampling, isotropic", "0.4:0.4:0",
     lambda folder: bart_dataset(folder, Case("bart", 128, 64, oversampling=1), "0.4:0.4:0", 0)),
)


def failure_rows() -> list[dict[str, object]]:
    """Data where an estimator must fail: what each estimator says and what ``auto`` decides."""
    rows = []
    for label, delay, make in FAILURES:
        with tempfile.TemporaryDirectory() as name:
            folder = Path(name)
            make(folder)
            truth = GradientDelay(*(float(value) for value in delay.split(":")))
            kspace = read_kspace(folder / "k.cfl", trajectory=folder / "t.cfl")
            ring, _ = _ours(kspace.data, kspace.trajectory, "ring")
            ac, _ = _ours(kspace.data, kspace.trajectory, "ac-adaptive")
            decision = decide_delay(ring, ac, DEFAULT_CHECK)
            applied = GradientDelay() if decision.applied is None else delay_in_input_axes(kspace.metadata, decision.applied.delay)
            bart_ac, _ = _bart_estimate(folder, False)
            bart_ring, _ = _bart_estimate(folder, True)

            def describe(item: DelayEstimate | str) -> str:
                if isinstance(item, str):
                    return f"refused: {item}"
                return (f"error {delay_in_input_axes(kspace.metadata, item.delay).error(truth):.3f} (mismatch "
                        f"{item.mismatch:.3g}, s.e. {item.uncertainty:.3g})")

            rows.append({"label": label, "truth": delay, "ring": describe(ring), "ac-adaptive": describe(ac),
                         "auto": "none" if decision.applied is None else decision.applied.method, "reason": decision.reason,
                         "auto_error": applied.error(truth), "fallback": decision.fallback,
                         "bart": None if bart_ac is None else bart_ac.error(truth),
                         "bart-R": None if bart_ring is None else bart_ring.error(truth)})
    return rows


def noise_rows() -> list[dict[str, object]]:
    """σ̂ of the complex noise (outer k-space, MAD) over the largest k-space magnitude of the real Cartesian scans."""
    rows = []
    for name, label in SCANS.items():
        kspace = read_kspace(RAW / name)
        sigma = kspace_noise_std(kspace.data)
        peak = float(kspace.data.abs().max())
        rows.append({"scan": name, "label": label, "shape": list(kspace.data.shape), "sigma": sigma, "max": peak,
                     "ratio": None if sigma is None else sigma / peak})
    return rows


def _number(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def markdown_rows(rows: list[dict]) -> str:
    """One markdown table of ``rows`` from :func:`run_case`."""
    lines = ["| data | RING | AC-adaptive | default (auto) | bart estdelay | bart estdelay -R | s RING | s AC | s bart | s bart -R | auto applied (ring/ac/none) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        rms, seconds, applied = row["rms"], row["seconds"], row["applied"]
        lines.append(f"| {row['label']} | " + " | ".join(_number(rms[name]) for name in ESTIMATORS) + " | "
                     + " | ".join(_number(seconds[name], 2) for name in ("ring", "ac-adaptive", "bart", "bart-R"))
                     + f" | {applied['ring']}/{applied['ac-adaptive']}/{applied['none']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="+", default=["bart", "bart-extra", "ours", "failures", "noise"],
                        choices=["bart", "bart-extra", "ours", "failures", "noise"])
    parser.add_argument("--quick", action="store_true", help="128² only, fewer delays and seeds")
    parser.add_argument("--json", default=None, help="write every row to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(1)
    images = brain_images() if "ours" in args.sections else []
    builders = {"bart": bart_cases, "bart-extra": extra_cases, "ours": ours_cases}
    results: dict[str, object] = {}
    for section in args.sections:
        if section in ("failures", "noise"):
            results[section] = failure_rows() if section == "failures" else noise_rows()
            for row in results[section]:  # type: ignore[union-attr]
                print(json.dumps(row), flush=True)
            continue
        rows = []
        for case in builders[section](args.quick):
            rows.append(run_case(case, images))
            print(json.dumps(rows[-1]), flush=True)
        results[section] = rows
        print(markdown_rows(rows), flush=True)
    if args.json is not None:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
