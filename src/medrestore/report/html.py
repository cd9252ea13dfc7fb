"""A self-contained HTML report: a verdict, sections of text, figures and metric tables.

Every figure is embedded in the HTML as a base64 PNG (``data:image/png;base64,...``), so a
report is one file that can be mailed or archived alone. A figure is either PNG bytes made in
memory (:attr:`Figure.png`, what ``medrestore report`` makes) or a PNG file relative to the
report's folder (:attr:`Figure.path`, what the demo's sections write and keep beside it).
:func:`write_html` writes one HTML file atomically; :func:`write_report` writes ``report.html``
and ``metrics.json`` into a folder. ``medrestore demo``, ``medrestore report`` and
``medrestore harmonize-eval`` all render through :func:`render_html`.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import html
import json
from collections.abc import Sequence
from pathlib import Path

from medrestore.core.errors import InputError
from medrestore.core.files import atomic_write_text

Cell = str | int | float | None


@dataclasses.dataclass(frozen=True)
class Figure:
    """A PNG figure with a caption.

    Attributes:
        path: PNG file relative to the report's folder (read when the report is rendered), or
            only a name when ``png`` is given.
        caption: text under the figure (also its ``alt`` text).
        png: the PNG bytes themselves (``None``: read ``path``).
    """

    path: str
    caption: str
    png: bytes | None = dataclasses.field(default=None, repr=False)


@dataclasses.dataclass(frozen=True)
class ReportSection:
    """One workflow's (or one file's) part of the report.

    Attributes:
        key: short identifier used in ``metrics.json`` and as the HTML anchor (e.g. ``"denoise"``).
        title: heading.
        description: paragraph(s) of plain text explaining what was run.
        figures: before/after figures.
        columns: metric table header.
        rows: metric table rows (same length as ``columns``).
        seconds: wall time of the section (``None``: not shown).
        verdict: one line on whether the default beats its baseline here (listed at the top).
        details: ``(name, text)`` pairs shown as a definition list (e.g. a record's decisions).
        record: a JSON text shown folded under the section (e.g. the output's ``OUT.json``).
    """

    key: str
    title: str
    description: str
    figures: Sequence[Figure] = ()
    columns: Sequence[str] = ()
    rows: Sequence[Sequence[Cell]] = ()
    seconds: float | None = 0.0
    verdict: str | None = None
    details: Sequence[tuple[str, str]] = ()
    record: str | None = None


@dataclasses.dataclass(frozen=True)
class Report:
    """A titled list of sections plus free-form provenance (version, command, machine)."""

    title: str
    sections: Sequence[ReportSection]
    provenance: Sequence[tuple[str, str]] = ()


def _format_cell(value: Cell) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.2f}"
    return html.escape(str(value))


def _figure_source(figure: Figure, folder: Path | None) -> str:
    """The figure as a ``data:`` URI (its bytes, or its file under ``folder``)."""
    payload = figure.png
    if payload is None:
        path = Path(figure.path) if folder is None else folder / figure.path
        if not path.is_file():
            raise InputError(path, "figure of the report not found")
        payload = path.read_bytes()
    return "data:image/png;base64," + base64.b64encode(payload).decode("ascii")


def _table_html(columns: Sequence[str], rows: Sequence[Sequence[Cell]]) -> str:
    header = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_format_cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"


def _section_html(section: ReportSection, folder: Path | None) -> str:
    parts = [f'<section id="{html.escape(section.key)}"><h2>{html.escape(section.title)}</h2>']
    parts += [f"<p>{html.escape(paragraph)}</p>" for paragraph in section.description.split("\n\n") if paragraph]
    for figure in section.figures:
        parts.append(
            f'<figure><img src="{_figure_source(figure, folder)}" alt="{html.escape(figure.caption)}" '
            f'data-name="{html.escape(figure.path)}"><figcaption>{html.escape(figure.caption)}</figcaption></figure>'
        )
    if section.columns:
        parts.append(_table_html(section.columns, section.rows))
    if section.details:
        parts.append("<dl>" + "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in section.details) + "</dl>")
    if section.record is not None:
        parts.append(f"<details><summary>record</summary><pre>{html.escape(section.record)}</pre></details>")
    if section.seconds is not None:
        parts.append(f'<p class="time">Section time: {section.seconds:.1f} s</p>')
    parts.append("</section>")
    return "\n".join(parts)


_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{border-bottom:2px solid #446}h2{margin-top:2em;color:#335}
figure{margin:1em 0}img{max-width:100%;border:1px solid #ccc}figcaption{font-size:.9em;color:#555}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:.3em .7em;text-align:right}
th{background:#eef}td:first-child,th:first-child{text-align:left}.time{font-size:.8em;color:#777}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em;font-size:.9em}dt{font-weight:bold}
.verdict{background:#f4f6fb;border-left:4px solid #446;padding:.5em 1em}pre{font-size:.8em;overflow-x:auto}
"""


def render_html(report: Report, folder: str | Path | None = None) -> str:
    """The report as one HTML document: styles inline, every figure embedded (files read under ``folder``)."""
    base = None if folder is None else Path(folder)
    toc = "".join(f'<li><a href="#{html.escape(s.key)}">{html.escape(s.title)}</a></li>' for s in report.sections)
    provenance = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in report.provenance)
    verdicts = [f'<li><a href="#{html.escape(s.key)}">{html.escape(s.title)}</a>: {html.escape(s.verdict)}</li>'
                for s in report.sections if s.verdict]  # fmt: skip
    verdict = f'<div class="verdict"><h2>Verdict</h2><ul>{"".join(verdicts)}</ul></div>' if verdicts else ""
    sections = "\n".join(_section_html(s, base) for s in report.sections)
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(report.title)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(report.title)}</h1>"
        f"{verdict}<dl>{provenance}</dl><ol>{toc}</ol>{sections}</body></html>\n"
    )


def metrics_record(report: Report) -> dict[str, object]:
    """JSON-serialisable content of the report's tables: ``{section key: [{column: value}, ...]}``."""
    return {
        "title": report.title,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "provenance": dict(report.provenance),
        "sections": {
            s.key: {
                "title": s.title,
                "seconds": None if s.seconds is None else round(s.seconds, 3),
                "verdict": s.verdict,
                "rows": [dict(zip(s.columns, row, strict=True)) for row in s.rows],
            }
            for s in report.sections
        },
    }


def write_html(report: Report, path: str | Path, folder: str | Path | None = None) -> Path:
    """Write the report as one self-contained HTML file at ``path`` (atomically); figure files are read under ``folder``."""
    return atomic_write_text(path, render_html(report, folder))


def write_report(report: Report, out_dir: str | Path) -> Path:
    """Write ``report.html`` and ``metrics.json`` into ``out_dir`` (figure files read from there); return the HTML path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "metrics.json", json.dumps(metrics_record(report), indent=2) + "\n")
    return write_html(report, out_dir / "report.html", out_dir)
