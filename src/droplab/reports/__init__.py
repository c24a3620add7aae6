"""Reports: the claims table, figures and numbers of run directories and sweeps as HTML and Markdown."""

from droplab.reports.docs import results_table, update_docs
from droplab.reports.registry import registry_markdown, registry_text
from droplab.reports.report import RunRecord, expand_run_dirs, load_run, write_report
from droplab.reports.sweep import aggregate_rows, grid_claims, write_sweep_report

__all__ = ["write_report", "load_run", "expand_run_dirs", "RunRecord",
           "write_sweep_report", "aggregate_rows", "grid_claims", "registry_markdown", "registry_text",
           "results_table", "update_docs"]
