"""Reports: the claims table, figures and numbers of run directories and sweeps as HTML and Markdown.

The names below are imported on first use, so printing the claim registry imports no torch.
"""

from __future__ import annotations

from droplab._lazy import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "droplab.reports.report": ("write_report",),
    "droplab.reports.runs": ("load_run", "expand_run_dirs", "RunRecord"),
    "droplab.reports.sweep": ("write_sweep_report", "aggregate_rows", "grid_claims"),
    "droplab.reports.registry": ("registry_markdown", "registry_text"),
    "droplab.reports.docs": ("results_table", "update_docs"),
})
