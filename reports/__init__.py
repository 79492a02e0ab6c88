"""Reports rendered from a run directory: tables, claim checks, figures and report.md.

`render(run_dir)` writes them all; `python -m reports RUN_DIR` does the same from a shell.
"""

__all__ = ["render"]


def __getattr__(name):
    # Imported on first use (pandas, matplotlib: seconds), so `python -m reports` can set up its
    # Ctrl-C handling (reports/__main__.py) before they load.
    if name == "render":
        from reports.report import render
        return render
    raise AttributeError(f"module 'reports' has no attribute {name!r}")
