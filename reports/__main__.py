"""python -m reports RUN_DIR: re-render a run directory's reports without retraining."""
import argparse
import sys

from svae.errors import HarnessError

from reports import render


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reports",
        description="Write table.md/.tex/.csv, claims.md, figures/ and report.md into RUN_DIR.")
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by python -m bench.run")
    args = parser.parse_args(argv)
    try:
        render(args.run_dir)
    except HarnessError as e:
        # One line whatever the message holds (a CSV parser's message may end in a newline).
        print("error: " + " ".join(str(e).split()), file=sys.stderr)
        return 2
    print(f"wrote the reports into {args.run_dir} (open report.md first)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
