"""Start-up time of the command line against a bare Python start that imports NumPy, same run.

    python benchmarks/cli_startup.py [--repeats 15] [--json results/cli-startup.json]

Times ``medrestore --help``, ``medrestore --version`` and ``medrestore evaluate --help`` (each a
new process) and ``python -c "import numpy"``; reports the medians and their ratios.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def median_seconds(command: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    executable = shutil.which("medrestore") or str(Path(sys.executable).with_name("medrestore"))
    baseline = median_seconds([sys.executable, "-c", "import numpy"], args.repeats)
    rows = {"python -c 'import numpy'": baseline}
    for words in (["--help"], ["--version"], ["evaluate", "--help"]):
        rows[f"medrestore {' '.join(words)}"] = median_seconds([executable, *words], args.repeats)
    report = {name: {"seconds": round(value, 4), "ratio": round(value / baseline, 2)} for name, value in rows.items()}
    for name, entry in report.items():
        print(f"{name:32s} {entry['seconds']:.3f} s  ×{entry['ratio']:.2f}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
