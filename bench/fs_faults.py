"""File-system faults (a full disk, a read-only or failing storage) that a user fixes outside the
program: one line that names the cause, the file or folder and the fix, instead of a traceback. Every
file a command writes is written atomically (svae/io.py), so what it leaves stays readable and the
command can be run again (resumed) once the cause is gone.
"""
import contextlib
import errno
import os
from collections.abc import Callable

from svae.errors import HarnessError

FILESYSTEM_FAULTS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
                     errno.EROFS: "the file system is read-only", errno.EACCES: "permission is denied",
                     errno.EIO: "the storage reported an input/output error"}


def filesystem_error(error: BaseException) -> OSError | None:
    """The first file-system fault in an exception's chain (Ray wraps the driver's own errors), or None."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in FILESYSTEM_FAULTS:
            return error
        error = error.__cause__ or error.__context__
    return None


def filesystem_fault(error: BaseException):
    """(cause, file) of the first file-system fault in an exception's chain, or None when it holds none."""
    error = filesystem_error(error)
    if error is None:
        return None
    temporary = os.environ.get("TMPDIR", "\0").rstrip("/")  # Ray's session files go there, unbeknown to many
    where = f" in TMPDIR={temporary} (set TMPDIR to a writable folder)" \
        if str(error.filename).startswith(temporary + "/") else ""
    return FILESYSTEM_FAULTS[error.errno] + where, error.filename


@contextlib.contextmanager
def faults_as_errors(where: Callable[[], str], then: str):
    """Turns a file-system fault in an error's chain into one line: the cause, the file it names (else
    `where()`, asked once the fault has happened: pyarrow's errors name no file), and the fix: free
    space or fix the storage, then `then` (what to run again). Other errors go on as they are."""
    try:
        yield
    except HarnessError:
        raise
    except Exception as e:
        fault = filesystem_fault(e)
        if fault is None:
            raise
        cause, file = fault
        raise HarnessError(f"{cause} ({file or where()}); free space or fix the storage, then {then}") from None
