"""A self-contained HTML report: sections of text, figures (PNG beside the HTML) and metric tables.

``write_report`` writes ``report.html`` and ``metrics.json`` atomically into the output folder;
figures are referenced by relative path so the folder can be moved or zipped as a whole.
"""

from __future__ import annotations

import dataclasses
import datetime
import html
import json
from collections.abc import Sequence
from pathlib import Path

from medrestore.core.files import atomic_write_text

Cell = str | int | float | None


@dataclasses.dataclass(frozen=True)
class Figure:
    """A PNG figure (path relative to the report folder) with a caption."""

    path: str
    caption: str


@dataclasses.dataclass(frozen=True)
class ReportSection:
    """One workflow's part of the report.

    Attributes:
        key: short identifier used in ``metrics.json`` (e.g. ``"denoise"``).
        title: heading.
        description: paragraph(s) of plain text explaining what was run.
        figures: before/after figures.
        columns: metric table header.
        rows: metric table rows (same length as ``columns``).
        seconds: wall time of the section.
    """

    key: str
    title: str
    description: str
    figures: Sequence[Figure] = ()
    columns: Sequence[str] = ()
    rows: Sequence[Sequence[Cell]] = ()
    seconds: float = 0.0


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


def _section_html(section: ReportSection) -> str:
    parts = [f'<section id="{html.escape(section.key)}"><h2>{html.escape(section.title)}</h2>']
    parts += [f"<p>{html.escape(paragraph)}</p>" for paragraph in section.description.split("\n\n") if paragraph]
    for figure in section.figures:
        parts.append(
            f'<figure><img src="{html.escape(figure.path)}" alt="{html.escape(figure.caption)}">'
            f"<figcaption>{html.escape(figure.caption)}</figcaption></figure>"
        )
    if section.columns:
        header = "".join(f"<th>{html.escape(c)}</th>" for c in section.columns)
        body = "".join("<tr>" + "".join(f"<td>{_format_cell(v)}</td>" for v in row) + "</tr>" for row in section.rows)
        parts.append(f"<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>")
    parts.append(f'<p class="time">Section time: {section.seconds:.1f} s</p></section>')
    return "\n".join(parts)


_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{border-bottom:2px solid #446}h2{margin-top:2em;color:#335}
figure{margin:1em 0}img{max-width:100%;border:1px solid #ccc}figcaption{font-size:.9em;color:#555}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:.3em .7em;text-align:right}
th{background:#eef}td:first-child,th:first-child{text-align:left}.time{font-size:.8em;color:#777}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em;font-size:.9em}dt{font-weight:bold}
"""


def render_html(report: Report) -> str:
    """The report as one HTML document (figures linked, styles inline)."""
    toc = "".join(f'<li><a href="#{html.escape(s.key)}">{html.escape(s.title)}</a></li>' for s in report.sections)
    provenance = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in report.provenance)
    sections = "\n".join(_section_html(s) for s in report.sections)
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(report.title)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(report.title)}</h1>"
        f"<dl>{provenance}</dl><ol>{toc}</ol>{sections}</body></html>\n"
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
                "seconds": round(s.seconds, 3),
                "rows": [dict(zip(s.columns, row, strict=True)) for row in s.rows],
            }
            for s in report.sections
        },
    }


def write_report(report: Report, out_dir: str | Path) -> Path:
    """Write ``report.html`` and ``metrics.json`` into ``out_dir``; return the HTML path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "metrics.json", json.dumps(metrics_record(report), indent=2) + "\n")
    return atomic_write_text(out_dir / "report.html", render_html(report))
