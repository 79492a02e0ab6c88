"""Ctrl-C and SIGTERM at any moment of a command line: one line and exit status 130 (or the command's
own way of stopping), never a traceback from deep inside an import and never swallowed.

A command's module calls `quiet_until_main()` before its heavy imports, when run as __main__; its
main() calls `interrupts_raise()` first, so that from then on Ctrl-C is a KeyboardInterrupt that the
command handles (a resume hint, Ray stopped). Nothing has started while imports run, so the handler
exits at once.

Python cannot raise an exception out of some places (a finaliser, a garbage-collector callback, an
import machinery frame): a KeyboardInterrupt that lands there is printed as "Exception ignored in"
and dropped, and the command would run on as if no Ctrl-C had come. `interrupts_raise` therefore
delivers such an interrupt again, to the main thread's next line of ordinary code. A SIGTERM (a
scheduler's or `kill`'s stop) is handled as a Ctrl-C: whatever the command does on Ctrl-C it does
on SIGTERM too.
"""
import os
import signal
import sys
import threading
import warnings
from contextlib import contextmanager


def _exit_at_once(signum, frame):
    sys.stderr.write("interrupted; nothing was started\n")
    sys.stderr.flush()
    os._exit(130)  # not SystemExit: an import machinery frame could catch an exception


# A Cython extension printed this when a Ctrl-C landed while it was being imported (once, under load, in
# tests/test_interrupt.py's Ctrl-C while Ray starts): the interrupt itself is reported in one line.
INTERRUPTED_CYTHON_INIT = "Cython module failed to patch module with custom type"


def quiet_until_main() -> None:
    signal.signal(signal.SIGINT, _exit_at_once)
    signal.signal(signal.SIGTERM, _exit_at_once)
    warnings.filterwarnings("ignore", message=INTERRUPTED_CYTHON_INIT, category=RuntimeWarning)


def terminate_as_interrupt(signum, frame):
    """The SIGTERM handler: do what the present Ctrl-C handler does (Ray Tune's stops the sweep)."""
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        return handler(signal.SIGINT, frame)
    raise KeyboardInterrupt


REDELIVER_AFTER_S = 0.05  # long enough for the place that dropped it to be left


def _signal_main_thread():
    """A real SIGINT to the main thread: it also ends a blocking call (a sleep, a socket wait) there."""
    signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)


def redeliver_interrupts(hook):
    """A sys.unraisablehook that raises a dropped KeyboardInterrupt again in the main thread and hands
    every other unraisable exception to `hook`. Raised from another thread a moment later, so that it
    lands outside the hook (and outside the finaliser that dropped it); should it be dropped again,
    this hook delivers it again."""
    def unraisablehook(unraisable):
        if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
            threading.Timer(REDELIVER_AFTER_S, _signal_main_thread).start()
        else:
            hook(unraisable)
    unraisablehook.redelivers = True
    return unraisablehook


def interrupts_raise() -> None:
    if signal.getsignal(signal.SIGINT) is not _exit_at_once:  # only where quiet_until_main put it
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, terminate_as_interrupt)
    if not getattr(sys.unraisablehook, "redelivers", False):
        sys.unraisablehook = redeliver_interrupts(sys.unraisablehook)


@contextmanager
def keep_sigterm():
    """Keep the command's SIGTERM handler across a library call that installs its own (ray.init's
    exits at once, with no resume hint)."""
    handler = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, handler)
