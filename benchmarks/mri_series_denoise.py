"""4-D MRI denoising: tSNR on the real 3 T fMRI run, a simulated BOLD response, and the evaluation protocols.

Three parts (``--parts``), each through the CLI where the CLI does it:

* ``tsnr``: ``medrestore denoise --modality mri FMRI -o OUT --method M`` for every ``--methods`` entry on the
  Philips 3 T fMRI run (``../shared/data/mri-philips-3t/fmri/``, 63 × 96 × 96 voxels × 75 volumes, read from its
  DICOM files), each in its own process with ``--threads`` threads: the median tSNR in the brain before and after
  (the command's report) and the whole command's wall time, also as a ratio to ``nlm``'s in the same run.
* ``bold``: a block-design series (:func:`medrestore.data.bold.block_design_series`: the brain phantom, 60 volumes,
  blocks of 10, a 2 % and a 4 % response in a 10 × 10 × 8 region, Rician σ = 0.03 of a white-matter level of ~1: a
  median tSNR of about 21 in the phantom's tissue, the real run's is 32) denoised by each method; the fitted relative response
  (:func:`medrestore.metrics.repeated.design_response`) as a fraction of the true one, and the tSNR gain in the
  phantom's tissue.
* ``protocols``: ``medrestore denoise-eval leave-one-out`` and ``tissue`` on nibabel's ``example4d.nii.gz`` (2
  repetitions), on the fMRI run and on Colin27 with simulated Rician repetitions (σ = 5 % of its maximum); the means
  of the JSON records.

Usage::

    python benchmarks/mri_series_denoise.py [--parts tsnr,bold,protocols] [--methods nlm,patch2self,mppca] [--threads 1]
        [--workdir /tmp/mri-series] [--loo-repetitions 8]

The machine these numbers come from is shared; times are only compared as ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mri_denoise_volume import COLIN27, run_cli  # noqa: E402

from medrestore.data.bold import block_design_series  # noqa: E402
from medrestore.data.mri_phantom import brain_phantom  # noqa: E402
from medrestore.metrics.repeated import design_response, temporal_snr_map  # noqa: E402
from medrestore.models.series_denoise import mppca_series, patch2self_series  # noqa: E402
from medrestore.tasks.denoise_mri import bounded_sigma, denoise_image, series_mask, series_sigma_bound  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FMRI = ROOT.parent / "shared" / "data" / "mri-philips-3t" / "fmri"
EXAMPLE4D = Path(__import__("nibabel").__file__).parent / "tests" / "data" / "example4d.nii.gz"
TSNR = re.compile(r"temporal SNR ([\d.]+) -> ([\d.]+) \(gain x([\d.]+)\)")


def tsnr_part(methods: list[str], workdir: Path, threads: int) -> list[dict[str, float | str]]:
    """tSNR before/after and wall time of ``medrestore denoise`` per method on the fMRI run."""
    rows = []
    for method in methods:
        text, wall = run_cli(["denoise", "--modality", "mri", str(FMRI), "-o", str(workdir / f"fmri-{method}.nii.gz"), "--method", method,
                              "--device", "cpu"], threads)  # fmt: skip
        found = TSNR.search(text)
        if found is None:
            raise RuntimeError(f"no tSNR in the output of {method}: {text[-500:]}")
        rows.append({"method": method, "tsnr_before": float(found[1]), "tsnr_after": float(found[2]), "gain": float(found[3]), "wall_s": wall})
        print(f"  {method}: tSNR {found[1]} -> {found[2]} (x{found[3]}), {wall:.0f} s", flush=True)
    baseline = next((row["wall_s"] for row in rows if row["method"] == "nlm"), None)
    for row in rows:
        row["wall_vs_nlm"] = row["wall_s"] / baseline if baseline else float("nan")
    return rows


def bold_part() -> list[dict[str, float | str]]:
    """The simulated block-design response kept by each method (module docstring)."""
    torch.set_num_threads(1)
    shape = (48, 52, 40)
    clean = brain_phantom(shape, seed=3)[0]
    active = np.zeros(shape, bool)
    active[19:29, 21:31, 16:24] = True
    active &= clean > 0.3
    tissue = clean > 0.1
    rows = []
    for amplitude in (0.02, 0.04):
        series, noisy, design = block_design_series(clean, active, amplitude, 60, 10, 0.03, seed=4)
        volumes = torch.from_numpy(noisy).movedim(-1, 0)
        outputs = {"noisy": noisy}
        started = time.perf_counter()
        bound = series_sigma_bound(volumes)  # σ per volume as `medrestore denoise` takes it for a series
        outputs["nlm"] = torch.stack(
            [denoise_image(v, "nlm", bounded_sigma(v, None, bound), None, torch.device("cpu"))[0] for v in volumes]
        ).movedim(0, -1).numpy()
        seconds = {"nlm": time.perf_counter() - started}
        started = time.perf_counter()
        outputs["mppca"] = mppca_series(noisy, mask=series_mask(volumes))[0]
        seconds["mppca"] = time.perf_counter() - started
        started = time.perf_counter()
        outputs["patch2self"] = patch2self_series(noisy)
        seconds["patch2self"] = time.perf_counter() - started
        before = np.median(temporal_snr_map(noisy)[tissue])
        for name, output in outputs.items():
            kept = design_response(output, design, active) / amplitude
            gain = float(np.median(temporal_snr_map(output)[tissue & ~active]) / np.median(temporal_snr_map(noisy)[tissue & ~active]))
            rows.append({"amplitude": amplitude, "method": name, "response_kept": kept, "tsnr_gain_rest": gain, "tsnr_before": float(before),
                         "seconds": seconds.get(name, 0.0)})  # fmt: skip
            print(f"  {amplitude:.0%} {name}: response kept {kept:.3f}, tSNR gain outside the active region x{gain:.2f}", flush=True)
    return rows


def protocol_cases(loo_repetitions: int) -> list[tuple[str, list[str]]]:
    """(label, ``denoise-eval`` arguments) of the protocol runs."""
    limit = ["--repetitions", str(loo_repetitions)]
    return [
        ("example4d loo nlm", ["leave-one-out", str(EXAMPLE4D), "--method", "nlm"]),
        ("example4d tissue nlm", ["tissue", str(EXAMPLE4D), "--method", "nlm"]),
        ("fmri loo nlm", ["leave-one-out", str(FMRI), "--method", "nlm", *limit]),
        ("fmri halves mppca", ["leave-one-out", str(FMRI), "--method", "mppca"]),
        ("fmri halves patch2self", ["leave-one-out", str(FMRI), "--method", "patch2self"]),
        ("fmri tissue nlm", ["tissue", str(FMRI), "--method", "nlm"]),
        ("colin27 sim4 loo nlm", ["leave-one-out", str(COLIN27), "--method", "nlm", "--simulate", "4"]),
        ("colin27 sim2 tissue nlm", ["tissue", str(COLIN27), "--method", "nlm", "--simulate", "2"]),
    ]


def protocols_part(workdir: Path, threads: int, loo_repetitions: int, only: list[str] | None) -> list[dict[str, object]]:
    """Each protocol case through ``medrestore denoise-eval``; its JSON's means."""
    rows = []
    for label, arguments in protocol_cases(loo_repetitions):
        if only and not any(word in label for word in only):
            continue
        output = workdir / (label.replace(" ", "-") + ".json")
        _, wall = run_cli(["denoise-eval", *arguments, "-o", str(output), "--device", "cpu"], threads)
        record = json.loads(output.read_text())
        summary = record["mean"] if "mean" in record else record["jaccard"]
        rows.append({"case": label, "protocol": record["protocol"], "summary": summary, "wall_s": wall, "reference": record.get("reference")})
        print(f"  {label}: {json.dumps(summary)} ({wall:.0f} s)", flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default="tsnr,bold,protocols")
    parser.add_argument("--methods", default="nlm,patch2self,mppca")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mri-series"))
    parser.add_argument("--loo-repetitions", type=int, default=8)
    parser.add_argument("--cases", default=None, help="protocols: only the cases whose label holds one of these comma-separated words")
    arguments = parser.parse_args(argv)
    arguments.workdir.mkdir(parents=True, exist_ok=True)
    parts = arguments.parts.split(",")
    results: dict[str, object] = {"threads": arguments.threads}
    if "tsnr" in parts:
        print("tSNR on the 3 T fMRI run:", flush=True)
        results["tsnr"] = tsnr_part(arguments.methods.split(","), arguments.workdir, arguments.threads)
    if "bold" in parts:
        print("simulated block-design response:", flush=True)
        results["bold"] = bold_part()
    if "protocols" in parts:
        print("protocols:", flush=True)
        only = arguments.cases.split(",") if arguments.cases else None
        results["protocols"] = protocols_part(arguments.workdir, arguments.threads, arguments.loo_repetitions, only)
    target = arguments.workdir / f"results-{'-'.join(parts)}.json"
    target.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
