"""HTML reports with before/after figures and metric tables."""

from medrestore.report.figures import save_comparison_png, to_display_uint8
from medrestore.report.html import Figure, Report, ReportSection, write_report

__all__ = ["Figure", "Report", "ReportSection", "save_comparison_png", "to_display_uint8", "write_report"]
