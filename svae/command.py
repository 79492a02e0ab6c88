"""What every command line shares: the help formatter, the wrapper that turns a user's error into one
line and exit status 2 and a Ctrl-C into one line and exit status 130, and the one-line error itself.

The entry points (bench.run, bench.rescore, bench.curve, bench.fid, the cost tools, reports,
reports.publish, and the `svae-bench` console script that dispatches to them) call `run_command`
around their work, so the error style is written once.
"""
import argparse
import sys
from collections.abc import Callable

from svae.errors import HarnessError

USER_ERROR = 2
INTERRUPTED = 130


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default once: a help text that states its own default gets none added."""

    def _get_help_string(self, action):
        if "default" in (action.help or "") or action.default in (None, False, [], argparse.SUPPRESS):
            return action.help
        return super()._get_help_string(action)


def error_line(error: BaseException) -> str:
    """The one line a user sees: a message that spans lines (a parser's) is joined."""
    return "error: " + " ".join(str(error).split())


def run_command(body: Callable[[], int], interrupted: str | Callable[[], str] = "interrupted",
                errors: tuple = (HarnessError,)) -> int:
    """body()'s exit status; an error of `errors` is one line and exit status 2, a Ctrl-C (or a SIGTERM
    that svae.interrupt turned into one) the line `interrupted` and exit status 130."""
    try:
        return body()
    except errors as e:
        print(error_line(e), file=sys.stderr)
        return USER_ERROR
    except KeyboardInterrupt:
        print(interrupted() if callable(interrupted) else interrupted, file=sys.stderr)
        return INTERRUPTED
