"""python -m reports RUN_DIR: re-render a run directory's reports without retraining.

Holds the run directory's lock (svae/lock.py) while it writes, so it never renders a sweep that is
still running (a published folder, reports/publish.py, where nothing runs, is rendered without one,
so nothing is left behind); damaged results are refused (reports/validate.py) and the reports
there stay as they were.
"""
if __name__ == "__main__":  # first, so that Ctrl-C while the imports below load is one line
    from svae.interrupt import quiet_until_main
    quiet_until_main()

import argparse
import sys
from pathlib import Path

from svae.command import HelpFormatter, run_command
from svae.interrupt import interrupts_raise
from svae.lock import run_lock

from reports import render
from reports.rundir import is_published, load_run


def main(argv=None) -> int:
    interrupts_raise()
    parser = argparse.ArgumentParser(
        prog="python -m reports", formatter_class=HelpFormatter,
        description="Write table.md/.tex/.csv, claims.md, figures/ and report.md into RUN_DIR.")
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by python -m bench.run")
    args = parser.parse_args(argv)
    return run_command(lambda: render_locked(args.run_dir),
                       f"interrupted; every report file is whole but some may be old: run python -m reports "
                       f"{args.run_dir} again")


def render_locked(run_dir) -> int:
    if not Path(run_dir).is_dir():
        render(run_dir)  # names the problem: no such run directory
    if is_published(load_run(run_dir).manifest):  # nothing runs there: no lock file left behind
        render(run_dir)
    else:
        with run_lock(run_dir, "python -m reports"):
            render(run_dir)
    print(f"wrote the reports into {run_dir} (open report.md first)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
