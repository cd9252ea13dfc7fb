"""Batch runs: one command over a folder, a glob or several inputs, one output per input.

The plan (:func:`plan_batch`) maps every input found by :func:`medrestore.io.find_inputs` to
an output of the same relative name under the output folder (the extension replaced when the
command writes another format). The run (:func:`run_batch`) processes each input in turn:
an input whose output exists is skipped unless ``overwrite``; a failing input is recorded and
the run goes on; models are loaded once for the whole run (:func:`medrestore.core.cache.load_once`).

Under ``torchrun`` (or any launcher setting ``RANK``/``WORLD_SIZE``), each process takes every
``WORLD_SIZE``-th input starting at its ``RANK`` (:func:`shard`), and uses the GPU
``LOCAL_RANK`` where the device is ``auto``/``cuda`` (:func:`batch_device`): N processes on N
GPUs share one folder without talking to each other.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import torch

from medrestore.core.cache import load_once
from medrestore.core.errors import InputError, MedrestoreError
from medrestore.io.detect import EXTENSIONS
from medrestore.io.inventory import KSPACE_SUFFIXES, InputEntry, find_inputs
from medrestore.training.distributed import context_from_environment

STATUSES = ("done", "skipped", "failed")
_KNOWN_SUFFIXES = tuple(sorted({*EXTENSIONS, *KSPACE_SUFFIXES, ".hdr"}, key=len, reverse=True))  # .hdr: Interfile, Analyze by content


@dataclasses.dataclass(frozen=True)
class BatchItem:
    """One input and the output it will get (``problem`` set when it cannot be processed)."""

    source: Path
    output: Path
    label: str
    problem: str | None = None


@dataclasses.dataclass(frozen=True)
class BatchOutcome:
    """What happened to one item."""

    item: BatchItem
    status: str
    seconds: float = 0.0
    message: str = ""
    record: Mapping[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"input": str(self.item.source), "output": str(self.item.output), "status": self.status,
                "seconds": round(self.seconds, 3), "message": self.message or None,
                "record": None if self.record is None else dict(self.record)}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class BatchSummary:
    """The outcomes of a run (this process's share under a launcher)."""

    outcomes: tuple[BatchOutcome, ...]
    rank: int = 0
    world_size: int = 1
    ignored: int = 0

    def count(self, status: str) -> int:
        return sum(outcome.status == status for outcome in self.outcomes)

    @property
    def exit_code(self) -> int:
        """0 when nothing failed, else 1."""
        return 1 if self.count("failed") else 0

    def as_dict(self) -> dict[str, Any]:
        counts = {status: self.count(status) for status in STATUSES}
        return {**counts, "rank": self.rank, "world_size": self.world_size, "ignored": self.ignored,
                "files": [outcome.as_dict() for outcome in self.outcomes]}  # fmt: skip


class BatchReporter(Protocol):
    """Told about each item as the run goes (the command line draws a bar or writes a log line)."""

    def start(self, total: int) -> None: ...

    def finished(self, index: int, outcome: BatchOutcome) -> None: ...

    def close(self) -> None: ...


Process = Callable[[Path, Path], Mapping[str, Any] | None]
"""``process(input, output)`` → a JSON-friendly record (or ``None``); raises on failure. It guards its
own output against its inputs (:func:`medrestore.core.files.guard_output`, as every task's ``*_file``
function does); the run adds only what one input cannot know: that the output is another input."""


def output_name(name: str, suffix: str | None) -> str:
    """``name`` with its known extension (``.nii.gz``, ``.dcm.gz``, ``.tif``...) replaced by ``suffix`` (kept when ``None``)."""
    if suffix is None:
        return name
    lowered = name.lower()
    for known in _KNOWN_SUFFIXES:
        if lowered.endswith(known) and len(name) > len(known):
            return name[: -len(known)] + suffix
    return name + suffix


def plan_batch(
    inputs: Sequence[str | Path], output_folder: str | Path, kind: str, suffix_for: Callable[[Path], str | None]
) -> tuple[list[BatchItem], int]:
    """Items for every input found, outputs mirroring the input tree under ``output_folder``.

    Args:
        inputs: files, folders and glob patterns.
        output_folder: where outputs go (never walked for inputs).
        kind: ``"image"`` or ``"kspace"`` (see :func:`medrestore.io.find_inputs`).
        suffix_for: the output extension for an input path (``None`` keeps the input's name).

    Returns:
        ``(items, ignored)``: the items in input order, and the number of files left out.

    Raises:
        InputError: ``output_folder`` is an existing file, an input is missing, nothing was
            found, or two inputs would get the same output.
    """
    folder = Path(output_folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(folder, "several inputs need an output folder, and this is a file")
    inventory = find_inputs(inputs, kind, exclude=folder)
    if not inventory.inputs:
        raise InputError(Path(str(inputs[0])), f"no {kind} inputs found ({inventory.ignored} other files left out)")
    items = [_item(entry, folder, suffix_for) for entry in inventory.inputs]
    seen: dict[Path, BatchItem] = {}
    for item in items:
        if item.output in seen:
            raise InputError(item.output, f"two inputs would write this output: {seen[item.output].source} and {item.source}")
        seen[item.output] = item
    return items, inventory.ignored


def _item(entry: InputEntry, folder: Path, suffix_for: Callable[[Path], str | None]) -> BatchItem:
    relative = entry.relative
    output = folder / relative.parent / output_name(relative.name, suffix_for(entry.path))
    return BatchItem(entry.path, output, str(relative), entry.problem)


def shard(items: Sequence[BatchItem], rank: int, world_size: int) -> list[BatchItem]:
    """This process's share: items ``rank, rank + world_size, ...``."""
    return list(items[rank::world_size])


def batch_device(device: str) -> str:
    """This process's device: under a launcher with several processes (``torchrun``), ``auto``/``cuda``
    become ``cuda:LOCAL_RANK`` when CUDA is there."""
    context = context_from_environment()
    if not context.enabled or device not in ("auto", "cuda"):
        return device
    if not torch.cuda.is_available():
        return device
    return f"cuda:{context.local_rank % max(1, torch.cuda.device_count())}"


def _run_one(item: BatchItem, process: Process, overwrite: bool, inputs: frozenset[str]) -> BatchOutcome:
    if item.problem is not None:
        return BatchOutcome(item, "failed", message=f"{item.source}: {item.problem}")
    if item.output.exists() and not overwrite:
        return BatchOutcome(item, "skipped", message="output exists (--overwrite redoes it)")
    started = time.perf_counter()
    try:
        if os.path.realpath(item.output) in inputs:
            raise InputError(item.output, "refusing to write the output: it is another input of this run")
        record = process(item.source, item.output)
    except MedrestoreError as error:
        return BatchOutcome(item, "failed", time.perf_counter() - started, str(error))
    except Exception as error:  # noqa: BLE001 - one bad file must not stop the run; the message names it
        return BatchOutcome(item, "failed", time.perf_counter() - started, f"{item.source}: {type(error).__name__}: {error}")
    return BatchOutcome(item, "done", time.perf_counter() - started, record=record)


def run_batch(
    items: Sequence[BatchItem], process: Process, reporter: BatchReporter, overwrite: bool = False, ignored: int = 0
) -> BatchSummary:
    """Process this process's share of ``items`` (see :func:`shard`), reporting each outcome."""
    context = context_from_environment()
    mine = shard(items, context.rank, context.world_size)
    every_input = frozenset(os.path.realpath(item.source) for item in items)
    outcomes = []
    reporter.start(len(mine))
    try:
        with load_once():
            for index, item in enumerate(mine):
                outcome = _run_one(item, process, overwrite, every_input)
                outcomes.append(outcome)
                reporter.finished(index, outcome)
    finally:
        reporter.close()
    return BatchSummary(tuple(outcomes), context.rank, context.world_size, ignored)
