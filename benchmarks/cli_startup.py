"""Start-up time of the command line against a bare Python start that imports NumPy, same run.

    python benchmarks/cli_startup.py [--repeats 15] [--json results/cli-startup.json]

Times ``medrestore --help``, ``medrestore --version`` and ``medrestore evaluate --help`` (each a
new process), two whole small commands (``medrestore degrade --kind gaussian`` of a 256 × 256 image stored as
``.npy`` and as ``.nii.gz``) and ``python -c "import numpy"``; reports the medians and their ratios.
``--old-src SRC`` also times the two whole commands from an earlier tree's ``src`` folder
(``git archive COMMIT src | tar -x -C /tmp/old``), alternated with this tree's in the same run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def median_seconds(command: list[str], repeats: int, environment: dict[str, str] | None = None) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=environment)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def whole_commands(folder: Path, repeats: int, old_src: Path | None) -> dict[str, float]:
    """Median seconds of ``degrade`` on a 256² ``.npy`` and ``.nii.gz`` input, this tree (and ``old_src``) alternated."""
    from medrestore.core.image import Image
    from medrestore.io import write_image

    image = Image(np.random.default_rng(0).random((256, 256), dtype=np.float32), np.eye(4), 2, "mri")
    trees = {"": None} if old_src is None else {"": None, " (old src)": old_src}
    times: dict[str, list[float]] = {}
    for _ in range(repeats):
        for suffix in (".npy", ".nii.gz"):
            source = write_image(image, folder / f"in{suffix}")
            for label, src in trees.items():
                environment = {**os.environ, "PYTHONPATH": str(src)} if src is not None else None
                command = [sys.executable, "-m", "medrestore.cli.main", "degrade", str(source), "-o", str(folder / f"out{suffix}"),
                           "--kind", "gaussian", "--sigma", "0.1", "--overwrite"]  # fmt: skip
                times.setdefault(f"medrestore degrade 256² {suffix}{label}", []).append(median_seconds(command, 1, environment))
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--old-src", type=Path, default=None, help="an earlier tree's src folder: its whole commands too")
    args = parser.parse_args()
    executable = shutil.which("medrestore") or str(Path(sys.executable).with_name("medrestore"))
    baseline = median_seconds([sys.executable, "-c", "import numpy"], args.repeats)
    rows = {"python -c 'import numpy'": baseline}
    for words in (["--help"], ["--version"], ["evaluate", "--help"]):
        rows[f"medrestore {' '.join(words)}"] = median_seconds([executable, *words], args.repeats)
    with tempfile.TemporaryDirectory() as folder:
        rows.update(whole_commands(Path(folder), args.repeats, args.old_src))
    report = {name: {"seconds": round(value, 4), "ratio": round(value / baseline, 2)} for name, value in rows.items()}
    for name, entry in report.items():
        print(f"{name:45s} {entry['seconds']:.3f} s  ×{entry['ratio']:.2f}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
