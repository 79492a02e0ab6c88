"""Reports rendered from a run directory: tables, claim checks, figures and report.md.

`render(run_dir)` writes them all; `python -m reports RUN_DIR` does the same from a shell.
"""
from reports.report import render

__all__ = ["render"]
