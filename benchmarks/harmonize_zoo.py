"""Ship the coupled dictionaries fitted on the simulated scanner pair as zoo model ``coupled-dictionary-sim``.

Commands (1 thread), from the project root::

    medrestore harmonize-data simulate ../shared/data/brain-mri-ants/ch2.nii.gz -o results/harmonize-sim --seed 0
    medrestore train --config configs/harmonize-coupled-dictionary-sim.yaml
    python benchmarks/harmonize_zoo.py publish results/harmonize-coupled-dictionary-sim --data results/harmonize-sim
    S=results/harmonize-sim/paired
    medrestore harmonize-eval --train-a $S/val/a --train-b $S/val/b --test-a $S/test/a --test-b $S/test/b \\
        --model coupled-dictionary-sim -o results/harmonize-zoo-eval
    python benchmarks/harmonize_zoo.py publish results/harmonize-coupled-dictionary-sim --data results/harmonize-sim \\
        --eval results/harmonize-zoo-eval/metrics.json

``publish`` writes the weights (the dictionaries and transfer curves) and the card into the packaged
zoo (``--zoo`` for another folder), replacing an earlier card of that name; with ``--eval`` the
card's metrics are the zoo model's own ``harmonize-eval`` scores. It also stores the reference
outputs of the fitted object (the run's ``harmonizer.pt``, not the zoo copy) on a fixed input in
``tests/reference/coupled_dictionary_sim.npz``, which the tests compare the zoo model against.
"""

from __future__ import annotations

import argparse
import io
import json
import math
from pathlib import Path

import numpy as np
import torch

from medrestore.core.files import atomic_write_bytes
from medrestore.data.harmonize import read_folder_slices
from medrestore.physics.scanner import robust_level
from medrestore.tasks.harmonize import harmonize_in_units
from medrestore.tasks.models import publish_harmonizer
from medrestore.training.harmonize import load_harmonizer
from medrestore.zoo import PACKAGED_ZOO

NAME = "coupled-dictionary-sim"
ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "reference" / "coupled_dictionary_sim.npz"
COMMAND = (
    "medrestore harmonize-data simulate ../shared/data/brain-mri-ants/ch2.nii.gz -o results/harmonize-sim --seed 0; "
    "OMP_NUM_THREADS=1 medrestore train --config configs/harmonize-coupled-dictionary-sim.yaml; "
    "python benchmarks/harmonize_zoo.py publish results/harmonize-coupled-dictionary-sim --data results/harmonize-sim"
)
CONVENTION = (
    "harmonize-eval on the simulated scanner pair: 4 held-out test subjects (40 slices per scanner), classifier trained "
    "on the 2 validation subjects (50 % = chance, 100 % before harmonisation); PSNR/SSIM inside the target's brain mask "
    "against the target-scanner slice of the same name; jaccard_input: tissue classes of output vs input over the whole "
    "brain at native resolution; hyperintensity_survival: contrast of an added posterior bump after / before (1 = kept)"
)
DESCRIPTION = (
    "Coupled dictionaries D_a, D_b (7x7 patches, 128 atoms, lambda 0.01) with one shared sparse code, plus monotone "
    "transfer curves of the patch means, fitted on paired slices of the simulator's 1.5 T-like (a) / 3 T-like (b) "
    "scanner pair; maps both directions (--direction a2b or b2a). Inputs in other units are rescaled by the recorded "
    "intensity reference. Limits: trained and scored only on simulated scanners made from one brain (Colin27) deformed "
    "into subjects; not validated on real scans of two scanners. Several times slower per slice than cyclegan-sim "
    "(patch-by-patch sparse coding). Numbers and the hyperintensity test: benchmarks/harmonize.md."
)


def fixed_input(size: int = 32) -> torch.Tensor:
    """``(size, size)`` float32 test slice: a bright disc (~1) with a darker core (~0.6) and seeded noise, zero outside."""
    grid = torch.linspace(-1.0, 1.0, size)
    y, x = torch.meshgrid(grid, grid, indexing="ij")
    radius = torch.sqrt(x**2 + (1.2 * y) ** 2)
    image = torch.where(radius < 0.85, 1.0, 0.0) - 0.4 * torch.exp(-((x - 0.15) ** 2 + y**2) / 0.08)
    noise = torch.randn(size, size, generator=torch.Generator().manual_seed(0))
    return (image.clamp_min(0.0) + 0.02 * noise * (radius < 0.85)).to(torch.float32)


def intensity_reference(data_root: Path) -> dict[str, float]:
    """``robust_level`` of the paired training slices of each scanner (what the dictionaries were fitted on)."""
    return {s: round(robust_level(read_folder_slices(data_root / "paired" / "train" / s)[1]), 4) for s in "ab"}


def eval_metrics(path: Path) -> dict[str, float]:
    """The zoo model's rows of a ``harmonize-eval`` ``metrics.json``, flattened as ``<metric>_<direction>``."""
    rows = json.loads(path.read_text(encoding="utf-8"))["sections"]["harmonize_eval"]["rows"]
    metrics: dict[str, float] = {}
    for direction in ("b2a", "a2b"):
        row = next(row for row in rows if row["method"] == NAME and row["direction"] == direction)
        for key in ("psnr", "ssim", "classifier_accuracy", "jaccard_input", "hyperintensity_survival"):
            value = row.get(key)
            if isinstance(value, int | float) and math.isfinite(value):
                metrics[f"{key}_{direction}"] = round(float(value), 4)
    return metrics


def write_reference(run_dir: Path, reference: dict[str, float]) -> None:
    """Outputs of the run's fitted harmoniser on :func:`fixed_input` (both directions, and b2a in other units)."""
    harmonizer = load_harmonizer(run_dir / "harmonizer.pt")
    image = fixed_input()[None]
    outputs = {direction: harmonizer.harmonize(image, direction)[0].numpy() for direction in ("a2b", "b2a")}
    harmonizer.intensity_reference = reference  # type: ignore[attr-defined]
    outputs["b2a_units"] = harmonize_in_units(image * 250.0, harmonizer, "b2a")[0].numpy()
    arrays = {"input": image[0].numpy(), **outputs}
    if REFERENCE.is_file():
        with np.load(REFERENCE) as stored:
            if set(stored.files) == set(arrays) and all(np.array_equal(stored[k], v) for k, v in arrays.items()):
                return  # unchanged: keep the file's bytes
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(REFERENCE, buffer.getvalue())


def publish(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    reference = intensity_reference(args.data)
    metrics: dict[str, object] = {"convention": CONVENTION}
    if args.eval is not None:
        metrics.update(eval_metrics(args.eval))
    training = {
        "data": "simulated 1.5 T-like (a) / 3 T-like (b) scanner pair from Colin27 (ANTs data, Apache-2.0): "
        "`medrestore harmonize-data simulate ../shared/data/brain-mri-ants/ch2.nii.gz -o results/harmonize-sim --seed 0`",
        "split": "paired: the 10 training subjects (100 slices per scanner, 20,000 random 7x7 patch pairs); validation 2 "
        "subjects; test 4 subjects (never fitted on)",
        "command": COMMAND,
        "threads": 1,
        "intensity_reference": reference,
    }
    card = publish_harmonizer(
        args.run_dir, name=NAME, modality="mri", training=training, metrics=metrics, description=DESCRIPTION, zoo_dir=args.zoo
    )
    write_reference(args.run_dir, reference)
    size = (args.zoo / card.weights_file).stat().st_size
    print(f"wrote {args.zoo / 'cards' / (NAME + '.json')} and {card.weights_file} ({size} bytes), {REFERENCE}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("publish", help="write the zoo card and weights from a training run folder")
    command.add_argument("run_dir", type=Path, help="run folder of `medrestore train` (harmonizer.pt, config.yaml, history.json)")
    command.add_argument("--data", type=Path, required=True, help="the simulated scanner pair (harmonize-data simulate output)")
    command.add_argument("--eval", type=Path, help="metrics.json of harmonize-eval run on the zoo model")
    command.add_argument("--zoo", type=Path, default=PACKAGED_ZOO, help="zoo folder (default: the packaged one)")
    args = parser.parse_args()
    publish(args)


if __name__ == "__main__":
    main()
