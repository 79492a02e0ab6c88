"""What a sweep keeps in its storage besides Ray's own state, read and written through pyarrow so that
a path and s3://... are alike: the driver's marks of the trials it has collected, the trials'
checkpoint folders found by name, and what a file-system fault leaves there.

A file-system fault (a full disk, read-only or failing storage) is the sweep's, not a trial's: a retry
hits the same full disk, and Ray would print each attempt's traceback. So the trainable ends its trial
with the fault in its last result (`fault_result`) instead of raising, after removing the checkpoint
folder that the fault tore, which a resume would otherwise restore (`torn_checkpoint_removed`); the
driver stops the sweep and reports the fault as one line (bench/run.py).
"""
import contextlib
import os
import re
import time
import uuid

from bench.fs_faults import filesystem_error

EXPERIMENT = "sweep"
# the Ray experiments this project starts in a storage: the sweep's first, then one per resumed session
SESSION_EXPERIMENT = re.compile(rf"{EXPERIMENT}(-resumed-\d{{8}}T\d{{6}}-[0-9a-f]{{6}})?")
CHECKPOINT_FOLDER = re.compile(r"checkpoint_\d+")  # how Ray names a trial's checkpoint folders


def _filesystem(storage: str):
    import pyarrow.fs
    fs, root = pyarrow.fs.FileSystem.from_uri(storage)
    return fs, root.rstrip("/")


def _marker(storage: str, trial_id: str):
    """The storage's record that the driver holds a trial's results: visible to every node."""
    fs, root = _filesystem(storage)
    return fs, f"{root}/finished/{trial_id}"


def mark_finished(storage: str, trial_id: str) -> None:
    fs, path = _marker(storage, trial_id)
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(path) as f:
        f.write(b"collected\n")


def is_marked_finished(storage: str, trial_id: str) -> bool:
    import pyarrow.fs
    fs, path = _marker(storage, trial_id)
    return fs.get_file_info(path).type == pyarrow.fs.FileType.File


def _folders(fs, path: str) -> list:
    import pyarrow.fs
    infos = fs.get_file_info(pyarrow.fs.FileSelector(path, allow_not_found=True))
    return [i.base_name for i in infos if i.type == pyarrow.fs.FileType.Directory]


def session_experiment(resume: bool) -> str:
    """The name of this session's Ray experiment: a new one per resumed session, so that no session
    writes into (or reads) another's state; names sort by when the session started."""
    if not resume:
        return EXPERIMENT
    return f"{EXPERIMENT}-resumed-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:6]}"


def last_checkpoints(storage: str, trial_ids) -> dict:
    """trial id -> its newest checkpoint folder in the storage (a path or URI), for the trials that have
    one: found by the names Ray gives folders (<experiment>/<trial id>/checkpoint_<n>), in this project's
    experiments only, later sessions first; nothing is read from Ray's saved state."""
    fs, root = _filesystem(storage)
    names = sorted((e for e in _folders(fs, root) if SESSION_EXPERIMENT.fullmatch(e)),
                   key=lambda e: (e != EXPERIMENT, e))
    found = {}
    for experiment in reversed(names):
        for trial_id in set(trial_ids) - set(found):
            numbered = [c for c in _folders(fs, f"{root}/{experiment}/{trial_id}") if CHECKPOINT_FOLDER.fullmatch(c)]
            if numbered:
                newest = max(numbered, key=lambda c: int(c.split("_")[1]))
                found[trial_id] = f"{storage.rstrip('/')}/{experiment}/{trial_id}/{newest}"
    return found


def trial_storage(storage: str, experiment: str, trial_id: str) -> str:
    """Where Ray keeps a trial's checkpoints (the sweep names trial folders by trial id)."""
    return f"{storage.rstrip('/')}/{experiment}/{trial_id}"


@contextlib.contextmanager
def torn_checkpoint_removed(folder: str):
    """Around a report that persists a checkpoint into `folder` (a trial's storage): a file-system fault
    during the copy leaves a checkpoint folder with some files torn or missing; remove the folders that
    the report added before the fault goes on."""
    fs, path = _filesystem(folder)
    before = set(_folders(fs, path))
    try:
        yield
    except OSError as e:
        if filesystem_error(e) is not None:
            for name in set(_folders(fs, path)) - before:
                if CHECKPOINT_FOLDER.fullmatch(name):
                    fs.delete_dir(f"{path}/{name}")  # deleting frees space: it works on a full disk too
        raise


def fault_result(error: OSError, folder: str) -> dict:
    """A trial's last result when a file-system fault (filesystem_error) ended it: its errno and the
    file it names, else `folder` (pyarrow's errors name none)."""
    return {"done": True, "filesystem_fault": error.errno, "fault_file": error.filename or folder}


def fault_of(result: dict) -> OSError | None:
    """The file-system fault that a trial's last result reports, as the OSError it was, or None."""
    if result.get("filesystem_fault") is None:
        return None
    number = int(result["filesystem_fault"])
    return OSError(number, os.strerror(number), result["fault_file"])
