"""``medrestore report``: one HTML report on restored images the user already has.

Given one or many outputs (files, folders, glob patterns: the same inventory as the batch
commands, :func:`medrestore.io.find_inputs`), optionally their references and the inputs they
were made from, the report holds

* a summary table at the top: file, shape, the method and the decisions its command recorded
  in the sidecar ``OUT.json`` (when one lies beside the output), PSNR/SSIM against the reference
  (when given) and those of the input against the same reference (when the shapes agree), so the
  gain can be read off;
* per file: input beside output (and reference), each with a magnified inset of the region where
  the output differs most, a signed difference map (output − reference, else output − input),
  its metrics and decisions, and the sidecar record itself.

Metrics are :func:`medrestore.tasks.evaluate.evaluate_images`', i.e. exactly what
``medrestore evaluate --pred OUTPUT --reference REF`` prints for the same pair and convention.
Volumes are shown by their middle slice along the last spatial axis, series by their first frame.

References and inputs are matched to the outputs either by name (one folder holding a file of
the same relative path, or of the same name) or by order (as many files as outputs). The HTML is
one self-contained file (figures embedded, :mod:`medrestore.report.html`), written atomically
after :func:`medrestore.core.files.guard_output` made sure it overwrites none of the files read.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medrestore.core.errors import InputError
from medrestore.core.files import guard_output, sidecar_path
from medrestore.core.image import Image
from medrestore.io import find_inputs, read_image
from medrestore.io.inventory import is_series_folder
from medrestore.report.figures import restoration_figure
from medrestore.report.html import Figure, Report, ReportSection, write_html
from medrestore.tasks.evaluate import evaluate_images

__all__ = ["SUMMARY_COLUMNS", "ReportItem", "plan_report", "record_decisions", "report_files"]

SUMMARY_COLUMNS = ("file", "shape", "method", "PSNR (dB)", "SSIM", "input PSNR (dB)", "input SSIM", "decisions")
"""Columns of the summary table (PSNR/SSIM against the reference; ``—`` without one)."""

DECISION_WORDS = ("decision", "fallback", "guard", "selection", "requested", "clipped", "nonfinite")
"""Record keys holding a word of these are shown as the command's decisions."""
_TEXT_LIMIT = 160


@dataclasses.dataclass(frozen=True)
class ReportItem:
    """One output to report on.

    Attributes:
        output: the restored image (file or DICOM series folder).
        label: its name in the report (path relative to where it was found).
        reference: the image to score it against, or ``None``.
        input: the image it was made from, or ``None``.
    """

    output: Path
    label: str
    reference: Path | None = None
    input: Path | None = None


def _is_image_folder(path: Path) -> bool:
    return path.is_dir() and not is_series_folder(path)


def _match(outputs: Sequence[tuple[Path, Path]], given: Sequence[str | Path], role: str) -> list[Path | None]:
    """One ``role`` file per output: from one folder by relative path (else by name), or in order."""
    if not given:
        return [None] * len(outputs)
    if len(given) == 1 and _is_image_folder(Path(given[0])):
        folder = Path(given[0])
        matched: list[Path | None] = []
        for output, relative in outputs:
            candidates = [folder / relative, folder / output.name]
            found = next((path for path in candidates if path.exists()), None)
            if found is None:
                raise InputError(output, f"no {role} of the same name in {folder}")
            matched.append(found)
        return matched
    files = [entry.path for entry in find_inputs(list(given)).inputs]
    if len(files) != len(outputs):
        raise InputError(
            Path(given[0]),
            f"{len(files)} {role} file(s) for {len(outputs)} output(s); give one per output in the same order, "
            f"or one folder holding files of the outputs' names",
        )
    return list(files)


def plan_report(
    outputs: Sequence[str | Path], references: Sequence[str | Path] = (), inputs: Sequence[str | Path] = ()
) -> list[ReportItem]:
    """The outputs named by ``outputs`` (files, folders, globs) with their references and inputs.

    Raises:
        InputError: a path that does not exist, no image found, or references/inputs that cannot
            be matched (the message names the output or the first file given).
    """
    inventory = find_inputs(list(outputs))
    problems = [entry for entry in inventory.inputs if entry.problem is not None]
    if problems:
        raise InputError(problems[0].path, problems[0].problem or "cannot be read")
    if not inventory.inputs:
        raise InputError(Path(outputs[0]), "holds no image file to report on")
    found = [(entry.path, entry.relative) for entry in inventory.inputs]
    matched_references = _match(found, references, "reference")
    matched_inputs = _match(found, inputs, "input")
    return [
        ReportItem(path, str(relative), reference, source)
        for (path, relative), reference, source in zip(found, matched_references, matched_inputs, strict=True)
    ]


def read_record(output: Path) -> dict[str, Any] | None:
    """The sidecar ``OUT.json`` a command wrote beside ``output``, or ``None`` when there is none.

    Raises:
        InputError: a sidecar that is not a JSON object (the message names it).
    """
    path = sidecar_path(output)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(path, f"the record beside {output.name} is not valid JSON ({error})") from None
    if not isinstance(record, dict):
        raise InputError(path, f"the record beside {output.name} is not a JSON object")
    return record


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= _TEXT_LIMIT else text[: _TEXT_LIMIT - 1] + "…"


def _layers(record: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """The record and the mappings one level inside it (``degradation``, ``harmonization``...)."""
    return [("", record), *((f"{key}.", value) for key, value in record.items() if isinstance(value, Mapping))]


def record_decisions(record: Mapping[str, Any] | None) -> tuple[str | None, list[tuple[str, str]]]:
    """``(method, [(key, text), ...])`` of a sidecar record: the method (or degradation kind) it
    names, and its entries that say what was decided (:data:`DECISION_WORDS`), null ones left out."""
    if record is None:
        return None, []
    method = None
    decisions: list[tuple[str, str]] = []
    for prefix, layer in _layers(record):
        for key, value in layer.items():
            if method is None and key in ("method", "kind") and isinstance(value, str):
                method = value
            if value is not None and any(word in key for word in DECISION_WORDS):
                decisions.append((prefix + key, _short(value)))
    return method, decisions


def _plane(image: Image) -> np.ndarray:
    """A 2-D float64 view: the first frame of a series, the middle slice along the last spatial axis of a volume."""
    array = image.data.detach().cpu()
    array = array.abs() if array.is_complex() else array
    values = array.to(dtype=array.dtype if array.is_floating_point() else None).numpy().astype(np.float64)
    while values.ndim > image.spatial_ndim:
        values = values[..., 0]
    if values.ndim == 3:
        values = values[:, :, values.shape[2] // 2]
    return values


def _read(path: Path, nonfinite: str, role: str) -> Image:
    try:
        return read_image(path, nonfinite=nonfinite)
    except InputError:
        raise
    except (OSError, ValueError) as error:
        raise InputError(path, f"cannot read the {role} image ({error})") from None


def _shape(image: Image) -> str:
    return "×".join(str(n) for n in image.shape)


def _score(prediction: Image, reference: Image, prediction_path: Path, reference_path: Path, convention: str) -> dict[str, float]:
    """:func:`~medrestore.tasks.evaluate.evaluate_images` (what ``medrestore evaluate`` computes), errors naming both files."""
    try:
        return evaluate_images(prediction, reference, convention)
    except InputError as error:
        if error.path is not None:
            raise
        raise InputError(prediction_path, f"{error.problem} (reference {reference_path})") from None


def _figure(item: ReportItem, output: Image, source: Image | None, reference: Image | None) -> Figure:
    """Input | output | reference with the zoomed inset, and the difference map (against the reference, else the input)."""
    panels: list[tuple[str, np.ndarray]] = []
    if source is not None and item.input is not None:
        panels.append((f"input {item.input.name}", _plane(source)))
    panels.append((f"output {item.output.name}", _plane(output)))
    difference = None
    if reference is not None and item.reference is not None:
        panels.append((f"reference {item.reference.name}", _plane(reference)))
        difference = ("output − reference", panels[-2][1] - panels[-1][1])
    elif source is not None and source.shape == output.shape:
        difference = ("output − input", panels[1][1] - panels[0][1])
    png = restoration_figure(panels, difference, window_index=len(panels) - 1)  # the reference's window, else the output's
    caption = f"Grey window of the {'reference' if reference is not None else 'output'}; the inset magnifies the outlined box"
    caption += ", placed where the output differs most." if difference is not None else "."
    if output.spatial_ndim == 3:
        caption += " Volumes: middle slice along the last axis."
    return Figure(f"{item.label}.png", caption, png)


def _item_section(
    item: ReportItem, index: int, convention: str, nonfinite: str
) -> tuple[ReportSection, list[Any], dict[str, Any]]:
    """One file's section, its summary row and its JSON entry."""
    output = _read(item.output, nonfinite, "output")
    record = read_record(item.output)
    method, decisions = record_decisions(record)
    source = None if item.input is None else _read(item.input, nonfinite, "input")
    reference = None if item.reference is None else _read(item.reference, nonfinite, "reference")
    metrics = input_metrics = None
    if reference is not None and item.reference is not None:
        metrics = _score(output, reference, item.output, item.reference, convention)
        if source is not None and item.input is not None and source.shape == reference.shape:
            input_metrics = _score(source, reference, item.input, item.reference, convention)

    def score(values: Mapping[str, float] | None, name: str) -> float | None:
        return None if values is None else float(values[name])

    row = [item.label, _shape(output), method, score(metrics, "psnr"), score(metrics, "ssim"),
           score(input_metrics, "psnr"), score(input_metrics, "ssim"), "; ".join(f"{k}: {v}" for k, v in decisions) or None]  # fmt: skip
    described = [f"Output {item.output} ({_shape(output)}, {output.modality})."]
    if source is not None:
        described.append(f"Input {item.input} ({_shape(source)}).")
    if item.reference is not None:
        described.append(f"Scored against {item.reference} with the {convention} convention.")
    section = ReportSection(
        key=f"file-{index + 1}",
        title=item.label,
        description=" ".join(described),
        figures=(_figure(item, output, source, reference),),
        columns=("metric", "output", "input") if metrics else (),
        rows=[[name, value, score(input_metrics, name)] for name, value in (metrics or {}).items()],
        seconds=None,
        details=(("method", method),) * (method is not None) + tuple(decisions),
        record=None if record is None else json.dumps(record, indent=2),
    )
    entry = {"file": item.label, "output": str(item.output), "reference": None if item.reference is None else str(item.reference),
             "input": None if item.input is None else str(item.input), "shape": list(output.shape), "method": method,
             "metrics": metrics, "input_metrics": input_metrics, "decisions": dict(decisions)}  # fmt: skip
    return section, row, entry


def report_files(
    outputs: Sequence[str | Path],
    html_path: str | Path,
    references: Sequence[str | Path] = (),
    inputs: Sequence[str | Path] = (),
    convention: str = "default",
    nonfinite: str = "refuse",
    title: str = "medrestore report",
) -> dict[str, Any]:
    """Write the HTML report on ``outputs`` to ``html_path``; return what its summary shows.

    Args:
        outputs: restored images: files, folders (walked) or glob patterns.
        html_path: the report file to write (refused when it is one of the files read).
        references: one folder matched by name, or one file per output in order (or none).
        inputs: the same for the images the outputs were made from (or none).
        convention: metric convention (``default``, ``fastmri``, ``oct``), as ``medrestore evaluate``'s.
        nonfinite: NaN/±Inf policy of the readers (``refuse`` or ``zero``).
        title: the report's heading.

    Returns:
        ``{"report": path, "convention", "files": [{"file", "output", "reference", "input", "shape",
        "method", "metrics", "input_metrics", "decisions"}, ...]}``.

    Raises:
        InputError: unreadable or unmatched files, shapes that differ from the reference, or an
            output path that would overwrite a file read (each message names the file).
    """
    items = plan_report(outputs, references, inputs)
    read = [path for item in items for path in (item.output, sidecar_path(item.output), item.reference, item.input)]
    guard_output(html_path, read)
    sections, rows, entries = [], [], []
    for index, item in enumerate(items):
        section, row, entry = _item_section(item, index, convention, nonfinite)
        sections.append(section)
        rows.append(row)
        entries.append(entry)
    summary = ReportSection(
        key="summary",
        title="Summary",
        description=f"{len(items)} output(s). PSNR (dB) and SSIM against the reference under the {convention} convention "
        "(as medrestore evaluate computes them); input columns: the input scored against the same reference. "
        "Method and decisions: from the record the command wrote beside each output (OUT.json), when there is one.",
        columns=SUMMARY_COLUMNS,
        rows=rows,
        seconds=None,
    )
    report = Report(title, [summary, *sections], (("convention", convention),))
    written = write_html(report, html_path)
    return {"report": str(written), "convention": convention, "files": entries}
