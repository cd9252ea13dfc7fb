"""The OCT default on B-scans unlike its training B-scans: brighter or dimmer exports, other pixel grids, less or more
speckle — and where its domain check (``medrestore.inference.oct_domain``) sends them.

The shipped networks learnt single B-scans of the Duke/Bioptigen device. No other OCT device's data is at hand, so
each validation eye (9–12) is varied in the ways another device's or another export's B-scans differ, each variant
scored against the eye's registered average varied the same way (``oct`` convention):

* less speckle: the mean of the aligned ``test``, ``1``…``4`` frames (2 and 5 frames), and the average itself;
* more speckle: ``test + (f1 − f2)/√2`` (another frame pair's difference: real speckle, not simulated);
* other display windows: ×0.5, ×0.7, ×1.3, ×1.6 (clipped), +30, ×0.6 + 40 (log-compressed data mapped onto
  0–255 with another dB window: an affine map of the display values);
* other pixel grids: bilinear ×2 on both axes, ×1.5 axially, ÷2 laterally.

Methods: the input itself, the shipped network run unchecked (what the command did before the check), non-local
means with the benchmark's parameters (the classical method the check falls back to), and the default as the
command runs it (checked). A second table gives the statistics the check reads, per variant, beside the training
frames' (subjects 1–8, all five frames each).

    OMP_NUM_THREADS=2 python benchmarks/oct_domain.py --json results/oct_domain.json     # about 2 min
    python benchmarks/oct_domain.py --tables-only --json results/oct_domain.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from medrestore.data.oct import DUKE_TRAIN_SUBJECTS, DUKE_VALIDATION_SUBJECTS, FrameGroup, align_frames, read_duke_subjects
from medrestore.inference.oct_domain import OCT_DOMAIN, check_bscan, classical_bscan, speckle_level
from medrestore.io import cast_to_dtype
from medrestore.metrics import evaluate
from medrestore.tasks.denoise import DEFAULT_MODELS, load_denoiser, restore_bscans

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "oct-duke-bioptigen"
Variant = tuple[str, torch.Tensor, np.ndarray]
"""``(label, input (H, W), reference (H, W))`` on 0–255."""


def _resized(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(image[None, None].float(), size=size, mode="bilinear", align_corners=False)[0, 0]


def variants(group: FrameGroup) -> Iterator[Variant]:
    """The B-scan of one eye as other devices and exports would give it (module docstring), with its reference."""
    frames = align_frames(group.frames).float()
    assert group.reference is not None
    average = group.reference.float()
    one = frames[0]
    height, width = one.shape

    def window(scale: float, offset: float) -> Callable[[torch.Tensor], torch.Tensor]:
        return lambda image: (image * scale + offset).clamp(0, 255)

    yield "single B-scan (as trained)", one, average.numpy()
    yield "2 frames averaged", frames[:2].mean(0), average.numpy()
    yield "5 frames averaged", frames.mean(0), average.numpy()
    yield "the registered average itself", average, average.numpy()
    yield "more speckle: + (f1 − f2)/√2", (one + (frames[1] - frames[2]) / math.sqrt(2)).clamp(0, 255), average.numpy()
    for label, scale, offset in (("× 0.5", 0.5, 0.0), ("× 0.7", 0.7, 0.0), ("× 1.3", 1.3, 0.0), ("× 1.6", 1.6, 0.0), ("+ 30", 1.0, 30.0),
                                 ("× 0.6 + 40", 0.6, 40.0)):  # fmt: skip
        mapped = window(scale, offset)
        yield f"display window {label}", mapped(one).round(), mapped(average).numpy()
    for label, size in (("pixels × 2 (both axes)", (2 * height, 2 * width)), ("pixels × 1.5 axially", (int(1.5 * height), width)),
                        ("pixels ÷ 2 laterally", (height, width // 2))):  # fmt: skip
        yield label, _resized(one, size).round(), _resized(average, size).numpy()


def score(restored: torch.Tensor, reference: np.ndarray) -> tuple[float, float]:
    values = cast_to_dtype(restored.detach().numpy().astype(np.float64), "uint8")
    metrics = evaluate(values, reference, convention="oct")
    return float(metrics["psnr"]), float(metrics["ssim"])


def run(data: Path) -> dict[str, object]:
    runner, label = load_denoiser(None, "oct", multi_frame=False, device="cpu")
    training = read_duke_subjects(data, DUKE_TRAIN_SUBJECTS)
    train_stats = [check_bscan(frame.float()) for group in training for frame in group.frames]
    rows: dict[str, dict[str, list[tuple[float, float]]]] = {}
    stats: dict[str, list[tuple[float, float, float, str]]] = {}
    with torch.inference_mode():
        for group in read_duke_subjects(data, DUKE_VALIDATION_SUBJECTS):
            for name, bscan, reference in variants(group):
                check = check_bscan(bscan)
                stats.setdefault(name, []).append((check.high, speckle_level(bscan.numpy()), check.gain, "network" if check.network else "nlm"))
                outputs = {
                    "input": bscan,
                    "network, unchecked": runner.predict(bscan[None]).reshape(bscan.shape),
                    "non-local means": classical_bscan(bscan),
                    "default (checked)": restore_bscans(runner, bscan[None, None], guarded=True)[0][0],
                }
                for method, restored in outputs.items():
                    rows.setdefault(name, {}).setdefault(method, []).append(score(restored, reference))
                print(f"{Path(group.name).name} {name}: " + ", ".join(f"{m} {v[-1][0]:.2f}" for m, v in rows[name].items()), file=sys.stderr)
    return {
        "model": label,
        "domain": {"bright_min": OCT_DOMAIN.bright_min, "speckle_min": OCT_DOMAIN.speckle_min},
        "training_frames": {"p99_5": [min(c.high for c in train_stats), max(c.high for c in train_stats)],
                            "speckle_level": [min(c.speckle for c in train_stats), max(c.speckle for c in train_stats)]},
        "rows": rows, "stats": stats,
    }  # fmt: skip


def tables(result: dict[str, object]) -> str:
    rows = result["rows"]
    assert isinstance(rows, dict)
    methods = ("input", "network, unchecked", "non-local means", "default (checked)")
    lines = ["| B-scans | " + " | ".join(methods) + " | default − unchecked, − NLM: worst eye (dB) |", "|---|" + "---|" * (len(methods) + 1)]
    for name, by_method in rows.items():
        cells = []
        for method in methods:
            values = np.array(by_method[method])
            cells.append("∞" if not np.isfinite(values[:, 0]).all() else f"{values[:, 0].mean():.2f} ({values[:, 0].min():.2f}) / {values[:, 1].mean():.3f}")
        default = np.array(by_method["default (checked)"])[:, 0]
        worst = [float((default - np.array(by_method[other])[:, 0]).min()) for other in ("network, unchecked", "non-local means")]
        cells.append(f"{worst[0]:+.2f}, {worst[1]:+.2f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    stats = result["stats"]
    assert isinstance(stats, dict)
    training = result["training_frames"]
    assert isinstance(training, dict)
    lines += ["", "| B-scans | smoothed 99.5th percentile | speckle level (before the mapping) | gain | restored by |", "|---|---|---|---|---|",
              f"| training frames (subjects 1–8, 40) | {training['p99_5'][0]:.0f}–{training['p99_5'][1]:.0f} | "
              f"{training['speckle_level'][0]:.1f}–{training['speckle_level'][1]:.1f} | 1 | network |"]  # fmt: skip
    for name, values in stats.items():
        high = [v[0] for v in values]
        level = [v[1] for v in values]
        gains = [v[2] for v in values]
        routes = sorted({v[3] for v in values})
        lines.append(f"| {name} | {min(high):.0f}–{max(high):.0f} | {min(level):.1f}–{max(level):.1f} | {min(gains):.2f}–{max(gains):.2f} | "
                     f"{' / '.join(routes)} ({sum(v[3] == 'network' for v in values)} of {len(values)} by the network) |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--json", type=Path, help="write the results here (and read them with --tables-only)")
    parser.add_argument("--tables-only", action="store_true")
    arguments = parser.parse_args(argv)
    if arguments.tables_only:
        result = json.loads(arguments.json.read_text())
    else:
        if not arguments.data.is_dir():
            sys.exit(f"the Duke/Bioptigen set is not at {arguments.data}")
        result = run(arguments.data)
        if arguments.json is not None:
            arguments.json.parent.mkdir(parents=True, exist_ok=True)
            arguments.json.write_text(json.dumps(result, indent=1))
    print(f"default: {DEFAULT_MODELS['oct']}\n")
    print(tables(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
