"""Publish a finished run into the repository (results/<name>): everything its reports are made of,
nothing that is weights, Ray state or a machine's identity; then render the reports there.

    python -m reports.publish runs/cpu-fashion-mnist results/fashion-mnist-cpu

Copied: manifest.json (host name, user and machine paths removed), results.csv, search/, calibration/
(a bench.curve run the report's epochs figure and levelling read), and of each
trial its status.json, rows.json, metrics.csv, orientation.json and preview/ (the few images and
numbers the reports show, svae/preview.py; derived from samples/*.npz for a trial that predates
previews). Not copied: checkpoints, samples/ (arrays), ray/, mlflow/, wandb/, the lock. The reports are
then rendered from the copy alone, so what is committed is exactly what `python -m reports` makes of
the committed inputs (tests/test_committed_results.py checks that it stays so).
"""
if __name__ == "__main__":  # first, so that Ctrl-C while the imports below load is one line
    from svae.interrupt import quiet_until_main
    quiet_until_main()

import argparse
import json
import shutil
import sys
import uuid
from pathlib import Path

from reports.report import render
from reports.validate import validate_results
from svae.command import HelpFormatter, run_command
from svae.errors import HarnessError
from svae.interrupt import interrupts_raise
from svae.io import atomic_write_json
from svae.preview import load_preview, write_preview

TRIAL_FILES = ("status.json", "rows.json", "metrics.csv", "orientation.json", "sampler_facts.json")
PRIVATE_HOST = ("hostname", "user")
IDENTITY = ("run_id", "name", "created")  # a published run is the same run when these match
PATH_CONFIG = ("data_root", "fid_weights")  # machine paths; the command and the storage are relative or render-safe


def public_manifest(manifest: dict) -> dict:
    """The manifest without the machine's name, its user or absolute paths of this machine, marked
    published (reports.rundir.is_published)."""
    host = {k: v for k, v in manifest.get("host", {}).items() if k not in PRIVATE_HOST}
    config = {k: v for k, v in manifest.get("config", {}).items() if k not in PATH_CONFIG}
    sessions = [{k: v for k, v in s.items() if k != "host"} for s in manifest.get("sessions", [])]
    return {**manifest, "host": host, "config": config, "sessions": sessions, "published": True}


def publish(run_dir: Path, dest: Path) -> None:
    run_dir, dest = run_dir.resolve(), dest.absolute()
    if not (run_dir / "manifest.json").is_file() or not (run_dir / "results.csv").is_file():
        raise HarnessError(f"{run_dir} has no manifest.json and results.csv; pass a finished run directory")
    check_destination(run_dir, dest)
    files = public_files(run_dir)  # every file checked before anything is copied
    validate_results(run_dir)  # damaged results are refused before anything is copied
    # Built beside DEST, then put in its place: a republished run keeps no stale trial of before.
    staging = dest.parent / f".{dest.name}.publishing-{uuid.uuid4().hex[:8]}"
    try:
        for relative in files:
            (staging / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(run_dir / relative, staging / relative, follow_symlinks=False)
        for trial in _trials_without_preview(run_dir):  # made before previews: derived from its arrays
            preview = load_preview(trial)
            if preview is not None:
                write_preview(staging / trial.relative_to(run_dir), preview)
        atomic_write_json(staging / "manifest.json",
                          public_manifest(json.loads((run_dir / "manifest.json").read_text())))
        if dest.exists():
            previous = dest.parent / f".{dest.name}.replaced-{uuid.uuid4().hex[:8]}"
            dest.rename(previous)
            staging.rename(dest)
            shutil.rmtree(previous)
        else:
            staging.rename(dest)
    except OSError as e:
        raise HarnessError(f"cannot write {dest} ({e.strerror or type(e).__name__}); choose another DEST or "
                           f"fix its permissions") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    render(dest)


def check_destination(run_dir: Path, dest: Path) -> None:
    """DEST is a new folder, an empty one, or this run published before; never the run, a file, or another run."""
    if dest.resolve() == run_dir or dest.resolve().is_relative_to(run_dir) or run_dir.is_relative_to(dest.resolve()):
        raise HarnessError(f"DEST {dest} is, or holds, or lies inside the run directory {run_dir}; choose a "
                           f"folder outside it (e.g. results/<name>)")
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise HarnessError(f"DEST {dest} is a file or a link, not a folder; choose a new or empty folder")
    if not dest.exists() or not any(dest.iterdir()):
        return
    if not (dest / "manifest.json").is_file():
        raise HarnessError(f"{dest} exists and is not a published run; choose an empty or new folder")
    try:
        there = json.loads((dest / "manifest.json").read_text())
        here = json.loads((run_dir / "manifest.json").read_text())
        same = [there.get(k) for k in IDENTITY] == [here.get(k) for k in IDENTITY]
    except (OSError, ValueError, AttributeError):
        same = False
    if not same:
        raise HarnessError(f"{dest} holds another published run ({dest / 'manifest.json'}); choose another DEST, "
                           f"or delete that folder to replace it")


def public_files(run_dir: Path) -> list:
    """The run's files that are published, relative to it: regular files only, reached through no
    symbolic link (a link could copy a file from anywhere on the machine into the repository)."""
    files = [_own(run_dir / "results.csv"), *_files_under(run_dir / "search"), *_files_under(run_dir / "calibration")]
    trials = _own(run_dir / "trials")
    for trial in sorted(trials.iterdir()) if trials.is_dir() else []:
        _own(trial)
        files += [_own(trial / name) for name in TRIAL_FILES if (trial / name).exists() or (trial / name).is_symlink()]
        files += _files_under(trial / "preview")
        _files_under(trial / "samples")  # not copied, but a preview may be derived from it: no link either
    return [path.relative_to(run_dir) for path in files if path.is_file()]


def _trials_without_preview(run_dir: Path) -> list:
    trials = run_dir / "trials"
    return [t for t in sorted(trials.iterdir()) if not (t / "preview").exists()] if trials.is_dir() else []


def _files_under(folder: Path) -> list:
    """The files under folder (none if it is absent); a symbolic link anywhere is refused."""
    _own(folder)
    return [_own(p) for p in sorted(folder.rglob("*")) if p.is_symlink() or p.is_file()] if folder.is_dir() else []


def _own(path: Path) -> Path:
    if path.is_symlink():
        raise HarnessError(f"{path} is a symbolic link; publish copies only the run directory's own files: "
                           f"replace the link by what it points to, or delete it")
    return path


def main(argv=None) -> int:
    interrupts_raise()
    p = argparse.ArgumentParser(prog="python -m reports.publish", description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished run directory written by python -m bench.run")
    p.add_argument("dest", metavar="DEST", help="the folder to publish it into (new, empty, or a published run)")
    args = p.parse_args(argv)

    def body():
        publish(Path(args.run_dir), Path(args.dest))
        print(f"published {args.run_dir} to {args.dest}")
        return 0
    return run_command(body, f"interrupted; {args.dest} may be incomplete: run the same command again")


if __name__ == "__main__":
    sys.exit(main())
