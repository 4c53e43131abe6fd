"""Reports: tables, plots and picture grids of a benchmark or a training run, as HTML + Markdown.

``build_report(source, out, ReportOptions(...))`` is what `ifkd report` and `ifkd demo` call.
"""

from ifkd.report.build import ReportOptions, ReportResult, build_report

__all__ = ["ReportOptions", "ReportResult", "build_report"]
