"""Ctrl-C while a command line is still importing its modules (torch, Ray: seconds): one line and exit
status 130, not a traceback from deep inside an import.

A command's module calls `quiet_until_main()` before its heavy imports, when run as __main__; its
main() calls `interrupts_raise()` first, so that from then on Ctrl-C is a KeyboardInterrupt that the
command handles (a resume hint, Ray stopped). Nothing has started while imports run, so the handler
exits at once.
"""
import os
import signal
import sys


def _exit_at_once(signum, frame):
    sys.stderr.write("interrupted; nothing was started\n")
    sys.stderr.flush()
    os._exit(130)  # not SystemExit: an import machinery frame could catch an exception


def quiet_until_main() -> None:
    signal.signal(signal.SIGINT, _exit_at_once)


def interrupts_raise() -> None:
    if signal.getsignal(signal.SIGINT) is _exit_at_once:  # only where quiet_until_main put it
        signal.signal(signal.SIGINT, signal.default_int_handler)
