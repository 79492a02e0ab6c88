"""Publish a finished run into the repository (results/<name>): everything its reports are made of,
nothing that is weights, Ray state or a machine's identity; then render the reports there.

    python -m reports.publish runs/cpu-fashion-mnist results/fashion-mnist-cpu

Copied: manifest.json (host name, user and machine paths removed), results.csv, search/, and of each
trial its status.json, rows.json, metrics.csv, orientation.json and samples/ (64-image grids). Not
copied: checkpoints, ray/, mlflow/, the lock. The reports are then rendered from the copy alone,
so what is committed is exactly what `python -m reports` makes of the committed inputs
(tests/test_committed_results.py checks that it stays so).
"""
import json
import shutil
import sys
from pathlib import Path

from reports.report import render
from reports.validate import validate_results
from svae.errors import HarnessError
from svae.io import atomic_write_json

TRIAL_FILES = ("status.json", "rows.json", "metrics.csv", "orientation.json")
PRIVATE_HOST = ("hostname", "user")
PATH_CONFIG = ("data_root", "fid_weights")  # machine paths; the command and the storage are relative or render-safe


def public_manifest(manifest: dict) -> dict:
    """The manifest without the machine's name, its user or absolute paths of this machine, marked
    published (reports.rundir.is_published)."""
    host = {k: v for k, v in manifest.get("host", {}).items() if k not in PRIVATE_HOST}
    config = {k: v for k, v in manifest.get("config", {}).items() if k not in PATH_CONFIG}
    sessions = [{k: v for k, v in s.items() if k != "host"} for s in manifest.get("sessions", [])]
    return {**manifest, "host": host, "config": config, "sessions": sessions, "published": True}


def publish(run_dir: Path, dest: Path) -> None:
    if not (run_dir / "manifest.json").is_file() or not (run_dir / "results.csv").is_file():
        raise HarnessError(f"{run_dir} has no manifest.json and results.csv; pass a finished run directory")
    if dest.exists() and any(dest.iterdir()) and not (dest / "manifest.json").exists():
        raise HarnessError(f"{dest} exists and is not a published run; choose an empty or new folder")
    validate_results(run_dir)  # damaged results are refused before anything is copied
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(run_dir / "results.csv", dest / "results.csv")
    atomic_write_json(dest / "manifest.json", public_manifest(json.loads((run_dir / "manifest.json").read_text())))
    if (run_dir / "search").is_dir():
        shutil.copytree(run_dir / "search", dest / "search", dirs_exist_ok=True)
    for trial in sorted((run_dir / "trials").iterdir()):
        target = dest / "trials" / trial.name
        target.mkdir(parents=True, exist_ok=True)
        for name in TRIAL_FILES:
            if (trial / name).is_file():
                shutil.copy(trial / name, target / name)
        if (trial / "samples").is_dir():
            shutil.copytree(trial / "samples", target / "samples", dirs_exist_ok=True)
    render(dest)


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m reports.publish RUN_DIR DEST", file=sys.stderr)
        return 2
    try:
        publish(Path(args[0]), Path(args[1]))
    except HarnessError as e:
        print("error: " + " ".join(str(e).split()), file=sys.stderr)
        return 2
    print(f"published {args[0]} to {args[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
