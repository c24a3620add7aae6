"""Reports: the claims table, figures and numbers of run directories as HTML and Markdown."""

from droplab.reports.report import RunRecord, expand_run_dirs, load_run, write_report

__all__ = ["write_report", "load_run", "expand_run_dirs", "RunRecord"]
