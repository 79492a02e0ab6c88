"""Atomic file writes (a temporary name in the same folder, then rename), the one reader of a
trial's status.json, a value computed once across processes (cached), and the checks of the files and
folders a user names.

A crash or kill during a write leaves the previous version of the file whole, never a torn one.
"""
import io
import json
import os
import tempfile
import warnings
from pathlib import Path

import torch
from filelock import FileLock

from svae.errors import HarnessError


def writable_folder(path, what: str, fix: str) -> Path:
    """path, if it is a folder that takes new files or could be made where it is named; checked before
    any work that would write there, creating nothing. Else a HarnessError naming `what` (e.g. "--out")
    and `fix`."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise HarnessError(f"{what} {path} is a file, not a folder; {fix}")
    existing = next(p for p in [path, *path.absolute().parents] if p.exists())
    if not existing.is_dir():
        raise HarnessError(f"{what} {path} cannot be made: {existing} is a file; {fix}")
    if not os.access(existing, os.W_OK | os.X_OK):  # access(2) also answers for a read-only file system
        raise HarnessError(f"cannot write to {what} {path} ({existing} is read-only or not ours); {fix}")
    return path


def writable_file(path, what: str, fix: str) -> Path:
    """path, if a file can be written there (checked before the work that makes it; nothing is created)."""
    path = Path(path)
    if path.is_dir():
        raise HarnessError(f"{what} {path} is a folder; {fix}")
    writable_folder(path.parent, f"the folder of {what}", fix)
    return path


def readable_file(path, what: str, fix: str) -> Path:
    """path, if it is a regular file (or absent: the reader names a missing file in its own words).
    A FIFO or a device in place of a data file would block a reader forever; a folder would fail
    with an obscure error."""
    path = Path(path)
    if path.exists() and not path.is_file():
        kind = "a folder" if path.is_dir() else "not a regular file (a pipe or a device)"
        raise HarnessError(f"{what} {path} is {kind}; {fix}")
    return path


def read_status(folder):
    """A trial folder's status.json as a dict, or None when it is absent or unreadable."""
    try:
        return json.loads((Path(folder) / "status.json").read_text())
    except (OSError, ValueError):
        return None


def atomic_write_bytes(path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; results on shared storage must be readable by others
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and e.filename is None:  # a write to an open file names none: name it
            raise OSError(e.errno, e.strerror, str(path)) from e
        raise


def atomic_write_text(path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def atomic_torch_save(obj, path) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def cached(path, compute, save, load):
    """The value stored at path, computed and published once even when processes ask together:
    the first takes the lock and computes, the others wait and read. An unreadable file is recomputed."""
    if path is None:
        return compute()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{path}.lock"):
        if path.exists():
            try:
                return load(path)
            except Exception as e:  # a torn or foreign file: np.load and torch.load raise many kinds
                warnings.warn(f"cache file {path} is corrupt ({type(e).__name__}: {e}); recomputing it", stacklevel=2)
        value = compute()
        save(value, path)  # atomic: a reader never sees half a file, even without the lock
        return value
