"""One process at a time per run directory: RUN_DIR/.lock, held by bench.run, bench.rescore and reports.

The lock is an fcntl.flock on the file, so the kernel releases it whenever its holder ends, even by
SIGKILL; the file's content (pid, host, command, start time) only names the holder in the refusal.
A holder empties the file when it lets go, so content in a file that is free means its holder died:
on this host that is certain (the kernel released its flock) and the lock is taken over; a holder on
another host may still run where flock does not reach across machines (some NFS setups), so that is
refused until the user has checked and deleted the file.
"""
import fcntl
import json
import os
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from svae.errors import HarnessError

LOCK_FILE = ".lock"


def _holder(text: str) -> dict:
    try:
        holder = json.loads(text)
        return holder if isinstance(holder, dict) else {}
    except ValueError:
        return {}


def _describe(holder: dict) -> str:
    return (f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')} "
            f"({holder.get('command', '?')}, since {holder.get('started', '?')})")


def _in_use(run_dir, path: Path) -> HarnessError:
    holder = _holder(path.read_text(errors="replace"))
    return HarnessError(f"{run_dir} is in use by {_describe(holder)}; wait for it to end, or stop it (Ctrl-C) "
                        f"and run this again")


def check_not_in_use(run_dir) -> None:
    """HarnessError if another process holds RUN_DIR/.lock; creates nothing. For a command that reads the
    run directory before it locks it: a sweep still running is then named as such, not as damage."""
    path = Path(run_dir) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # no lock file: no process holds it
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        raise _in_use(run_dir, path) from None
    except OSError:
        pass  # no file locks here: run_lock names that
    finally:
        os.close(fd)


@contextmanager
def run_lock(run_dir, command: str):
    """Hold RUN_DIR/.lock for the block; HarnessError at once if another process holds it."""
    path = Path(run_dir) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise HarnessError(f"cannot open the lock file {path} ({e.strerror}); check the run directory's "
                           f"permissions") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _in_use(run_dir, path) from None
        except OSError as e:  # a filesystem without locks: one sweep per directory cannot be promised
            raise HarnessError(f"cannot lock {path} ({e.strerror}): the filesystem does not support file "
                               f"locks; put the run directory on a local or NFS filesystem") from None
        previous = _holder(os.pread(fd, 1 << 16, 0).decode(errors="replace"))
        host = socket.gethostname()
        if previous and previous.get("host") != host:
            raise HarnessError(f"{path} names {_describe(previous)}, which this host cannot check; if that "
                               f"process has ended, delete {path} and run this again")
        if previous:
            print(f"note: taking over the lock of {_describe(previous)}, which is no longer running",
                  file=sys.stderr)
        record = {"pid": os.getpid(), "host": host, "command": command,
                  "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        os.fsync(fd)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # free: an empty file (never unlinked, so every process locks one inode)
    finally:
        os.close(fd)  # releases the flock
