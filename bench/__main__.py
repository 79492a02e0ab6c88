"""svae-bench: the harness's one command line (also python -m bench).

Each subcommand is a module's own command line, run with the arguments that follow it, so
`svae-bench run ...` and `python -m bench.run ...` are the same command."""
import argparse
import importlib
import sys

from svae.command import HelpFormatter
from svae.errors import did_you_mean
from svae.interrupt import quiet_until_main

SUBCOMMANDS = {  # name -> (module whose main() it runs, what it does)
    "run": ("bench.run", "train and score every (dataset, model, seed) on Ray Tune, then render the reports"),
    "fid": ("bench.fid", "FID (KID, precision/recall) between two image sets or statistics files"),
    "rescore": ("bench.rescore", "score a finished run again (another extractor, more metrics), no retraining"),
    "report": ("reports.__main__", "render a run directory's tables, claims, figures and report.md again"),
    "as-published": ("reports.as_published", "two runs of one config, searched and --no-search, side by side"),
    "publish": ("reports.publish", "copy a finished run's reports and inputs into the repository"),
    "plan": ("bench.cost.projection", "what the paper grid costs on GPUs (bench.run --dry-run plans one sweep)"),
    "simulate": ("bench.cost.simulate", "the paper grid on a simulated multi-node GPU cluster, measured"),
    "perf": ("bench.cost.perf", "benchmarks of every stage of a sweep"),
    "curve": ("bench.curve", "quality against epochs: one seed per model, scored every few epochs"),
    "reproduce": ("bench.reproduce", "train one finished trial again and compare every figure it stored"),
}


class _Formatter(HelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Keeps the subcommand table's lines as written."""


def parse_args(argv):
    table = "\n".join(f"  {name:<12} {what} (python -m {module.removesuffix('.__main__')})"
                      for name, (module, what) in SUBCOMMANDS.items())
    p = argparse.ArgumentParser(prog="svae-bench", formatter_class=_Formatter,
                                description=f"{__doc__.splitlines()[0]}\n\ncommands:\n{table}",
                                epilog="svae-bench COMMAND --help shows a command's own options")
    p.add_argument("command", metavar="COMMAND", help="one of the commands above")
    p.add_argument("args", nargs=argparse.REMAINDER, help="the command's own arguments")
    return p.parse_args(argv)


def main(argv=None) -> int:
    as_program = argv is None
    if as_program:  # Ctrl-C while the command's module loads: one line (svae/interrupt.py)
        quiet_until_main()
    args = parse_args(sys.argv[1:] if as_program else argv)
    if args.command not in SUBCOMMANDS:
        print(f"error: unknown command {args.command!r}{did_you_mean(args.command, SUBCOMMANDS)}; choose from "
              f"{', '.join(SUBCOMMANDS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[args.command][0])
    if as_program:  # what the command records and prints as itself (a resume hint) holds its own arguments
        sys.argv = [f"{sys.argv[0]} {args.command}", *args.args]
    return module.main(args.args) or 0


if __name__ == "__main__":
    sys.exit(main())
