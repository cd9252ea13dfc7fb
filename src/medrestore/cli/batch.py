"""Folder mode for the commands that turn one file into another, and the progress they show.

``medrestore denoise|superres|harmonize|recon|degrade`` take one input or several (files,
folders, glob patterns). One file (or one DICOM series folder) with ``-o FILE`` runs as before;
anything else is a batch: ``-o`` names a folder, each input gets an output of the same name
and relative path there (``--output-ext`` changes the format), outputs that exist are skipped
unless ``--overwrite``, a failing input is reported and the others go on, and a summary ends
the run (exit 1 when an input failed).

Progress: on a terminal a bar per batch (and one for a long job inside it); otherwise one
line per file, and a line every 10 % of a long job, so logs stay short.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from medrestore.core.progress import reporting
from medrestore.io.detect import DETACHED_HEADERS, READ_ONLY_FORMATS, format_from_extension
from medrestore.io.inventory import is_glob, is_series_folder
from medrestore.tasks.batch import BatchOutcome, Process, batch_device, plan_batch, run_batch  # batch_device: for the commands
from medrestore.training.distributed import context_from_environment

SingleRun = Callable[[str, str], int]
"""``run(input, output) -> exit status`` of one file, printing what the command prints."""


def add_io_arguments(parser: argparse.ArgumentParser, input_help: str, output_help: str) -> None:
    """``INPUT [INPUT ...] -o OUTPUT [--output-ext EXT] [--overwrite]`` (the batch-capable form)."""
    parser.add_argument("input", nargs="+", metavar="INPUT",
                        help=f"{input_help}; several files, folders or quoted glob patterns ('scans/**/*.nii.gz') run as a batch")  # fmt: skip
    parser.add_argument("-o", "--output", required=True, metavar="OUTPUT",
                        help=f"{output_help}; a folder for a batch (outputs keep the inputs' names and tree)")  # fmt: skip
    parser.add_argument("--output-ext", metavar="EXT", default=None,
                        help="batch: the outputs' extension, e.g. .nii.gz, .dcm, .tif (default: the input's format)")  # fmt: skip
    parser.add_argument("--overwrite", action="store_true", help="batch: redo inputs whose output exists (default: skip them)")


def is_batch(inputs: list[str], kind: str) -> bool:
    """Several inputs, a pattern, or a folder that is not one DICOM series make a batch."""
    if len(inputs) != 1 or is_glob(inputs[0]):
        return True
    path = Path(inputs[0])
    return path.is_dir() and (kind == "kspace" or not is_series_folder(path))


def run_io_command(
    args: argparse.Namespace, kind: str, single: SingleRun, process: Process, default_ext: Callable[[Path], str | None]
) -> int:
    """Run one file with ``single`` or a batch with ``process`` (see the module docstring)."""
    stream = sys.stderr
    if not is_batch(args.input, kind):
        if args.output_ext is not None:
            print("medrestore: --output-ext applies to batches; the output's own extension picks the format", file=stream)
        with reporting(JobProgress(stream)):
            return single(args.input[0], args.output)
    suffix_for = default_ext if args.output_ext is None else (lambda path: _dotted(args.output_ext))
    items, ignored = plan_batch(args.input, args.output, kind, suffix_for)
    reporter = make_reporter(stream)
    with reporting(JobProgress(stream, nested=True)):
        summary = run_batch(items, process, reporter, args.overwrite, ignored)
    if getattr(args, "json", False):
        print(json.dumps(summary.as_dict(), indent=2))
    rank = f"rank {summary.rank}/{summary.world_size}: " if summary.world_size > 1 else ""
    left_out = f"; {ignored} other files left out" if ignored else ""
    print(f"{rank}done {summary.count('done')}, skipped {summary.count('skipped')}, failed {summary.count('failed')} "
          f"of {len(summary.outcomes)} inputs → {args.output}{left_out}", file=stream)  # fmt: skip
    return summary.exit_code


def _dotted(extension: str) -> str:
    return extension if extension.startswith(".") else f".{extension}"


def make_reporter(stream: TextIO) -> LineReporter | BarReporter:
    """A bar on a terminal, one line per file otherwise."""
    return BarReporter(stream) if stream.isatty() else LineReporter(stream)


def _describe(outcome: BatchOutcome) -> str:
    if outcome.status == "done":
        return f"done    {outcome.item.label} → {outcome.item.output} ({outcome.seconds:.2f} s)"
    if outcome.status == "skipped":
        return f"skipped {outcome.item.label} ({outcome.message})"
    return f"FAILED  {outcome.item.label}: {outcome.message}"


class LineReporter:
    """One line per finished input (for logs and pipes)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream, self.total = stream, 0
        self.prefix = ""

    def start(self, total: int) -> None:
        self.total = total
        context = context_from_environment()
        self.prefix = f"[rank {context.rank}] " if context.enabled else ""

    def finished(self, index: int, outcome: BatchOutcome) -> None:
        print(f"{self.prefix}[{index + 1}/{self.total}] {_describe(outcome)}", file=self.stream, flush=True)

    def close(self) -> None:
        return None


class BarReporter:
    """A progress bar on a terminal; failures are printed above it."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.bar: Any = None

    def start(self, total: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="file", file=self.stream, dynamic_ncols=True, position=0)

    def finished(self, index: int, outcome: BatchOutcome) -> None:
        if outcome.status == "failed":
            self.bar.write(_describe(outcome), file=self.stream)
        self.bar.set_postfix_str(outcome.item.label[-40:], refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class JobProgress:
    """Shows the progress marked inside a long job (:func:`medrestore.core.progress.progress`)."""

    LOG_EVERY = 0.1

    def __init__(self, stream: TextIO, nested: bool = False) -> None:
        self.stream, self.nested = stream, nested
        self.bars: dict[str, Any] = {}
        self.logged: dict[str, float] = {}
        self.started: dict[str, float] = {}

    def begin(self, label: str, total: int | None) -> None:
        self.started[label] = time.perf_counter()
        self.logged[label] = 0.0
        if self.stream.isatty():
            from tqdm import tqdm

            self.bars[label] = tqdm(total=total, desc=label, file=self.stream, leave=False, dynamic_ncols=True,
                                    position=1 + len(self.bars) if self.nested else len(self.bars))  # fmt: skip

    def advance(self, label: str, done: int, total: int | None) -> None:
        bar = self.bars.get(label)
        if bar is not None:
            bar.update(1)
            return
        if not total or total < 2:
            return
        fraction = done / total
        if fraction - self.logged.get(label, 0.0) >= self.LOG_EVERY or done == total:
            self.logged[label] = fraction
            seconds = time.perf_counter() - self.started.get(label, time.perf_counter())
            print(f"  {label}: {done}/{total} ({seconds:.1f} s)", file=self.stream, flush=True)

    def end(self, label: str) -> None:
        bar = self.bars.pop(label, None)
        if bar is not None:
            bar.close()


def default_image_ext(path: Path) -> str | None:
    """A batch output's extension for an image input: the input's own, except formats the
    writers do not produce (JPEG → ``.png``, a MATLAB MAT-file → ``.tif`` (its frames are read as a TIFF's pages), Interfile, NIfTI/Analyze pairs, MGZ, MINC, PAR/REC and AFNI → ``.nii.gz``,
    a detached NRRD or MetaImage header → one file of its format, ``.nrrd`` / ``.mha``, gzip-compressed or
    extension-less DICOM → ``.dcm``);
    a DICOM series folder gives a series folder."""
    name = path.name.lower()
    if path.is_dir():
        return None
    if name.endswith((".jpg", ".jpeg")):
        return ".png"
    if name.endswith(tuple(DETACHED_HEADERS)):
        return DETACHED_HEADERS[name[name.rindex(".") :]]
    if name.endswith(".mat"):
        return ".tif"
    if name.endswith(".hdr") or format_from_extension(path) in READ_ONLY_FORMATS:  # Interfile, MGZ, MINC... are read, not written
        return ".nii.gz"
    if name.endswith(".gz") and not name.endswith(".nii.gz"):
        return ".dcm"
    if "." not in name.lstrip("."):
        return ".dcm"
    return None
