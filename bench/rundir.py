"""The run directory's writer (docs/run_directory.md): storage and its owner record, the lock, the
manifest and the sessions; reports/rundir.py is its reader.

A run directory is self-contained and held by one process at a time (svae/lock.py): storage inside
it is recorded relative to it, storage outside it (--storage) by its full name, and the storage
keeps an owner record (owner.json: run id and run directory) that --resume checks, so a copy of a
run directory never trains into, or reads, the original's state.
"""
import getpass
import json
import os
import platform
import shlex
import socket
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

from bench.models import MODELS
from bench.more_seeds import seeds_added
from bench.scoring_fix import corrected_sweep, scoring_only
from bench.sweep_storage import EXPERIMENT
from bench.trial import TrialSpec, settings_json
from reports.validate import trial_rows
from svae.contract import REAL_FID
from svae.data import SPECS
from svae.errors import HarnessError
from svae.io import atomic_write_json, read_status
from svae.samplers import COMPONENT_RULE, SAMPLERS

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S%z"  # a session's started and last_seen

# The settings that define a sweep's results; a run directory holds one sweep, so these must match
# on --resume. Paths and resources (where things are, how fast they run) may change.
DEFINING = ("datasets", "models", "seeds", "preset", "fid_samples", "fid_backbone", "gmm_fit_on", "search",
            "overrides", "reference_split", "amp")


# what manifests written before these keys meant
ADDED_LATER = {"gmm_fit_on": None, "search": None, "overrides": {}, "reference_split": "test", "amp": False}


# what a session killed before it wrote the manifest leaves in a new run directory
OWN_LEFTOVERS = {".lock", ".write-probe"}
OWNER_FILE = "owner.json"  # in the storage: which sweep (run id) and run directory it belongs to


def check_same_data(old: dict, now: dict, fix: str = "point --data-root at the original files, or start a new "
                                                    "sweep in another --out") -> None:
    """On --resume or a re-score: the files read now must be those the sweep started with (paths relative
    to their root, sizes and sha256)."""
    strip = lambda records: [(r["path"], r["size"], r["sha256"]) for r in records]  # noqa: E731
    for dataset, splits in now.items():
        for split, records in splits.items():
            before = old.get(dataset, {}).get(split)
            if before is not None and strip(before) != strip(records):
                changed = sorted(set(strip(records)) ^ set(strip(before)))[0][0]
                raise HarnessError(f"{dataset} {split} data differ from those this sweep started with "
                                   f"(first: {changed}; see manifest.json data); {fix}")


def check_run_dir(run_dir: Path, config: dict, resume: bool):
    """A run directory holds one sweep: refuse another configuration, and refuse to overwrite.
    Return the manifest of the sweep to resume (None for a new sweep)."""
    manifest = run_dir / "manifest.json"
    if manifest.exists():
        try:
            whole = json.loads(manifest.read_text())
            old = whole["config"]
            if not isinstance(old, dict):
                raise TypeError("config is not a mapping")
        except (OSError, ValueError, KeyError, TypeError):
            raise HarnessError(f"{manifest} is unreadable; choose another --out") from None
        changed = [k for k in DEFINING
                   if old.get(k, ADDED_LATER.get(k)) != config[k] and not seeds_added(k, old, config, resume)]
        if changed and not (resume and scoring_only(changed, old, config)):
            diffs = ", ".join(f"{k}: {old.get(k, ADDED_LATER.get(k))!r} there, {config[k]!r} now" for k in changed)
            raise HarnessError(f"{run_dir} holds a different sweep ({diffs}); choose another --out")
        if not resume:
            raise HarnessError(f"{run_dir} already holds this sweep; pass --resume to continue it, "
                               f"or choose another --out")
        if not isinstance(old.get("settings"), dict) or not isinstance(whole.get("grid"), list):
            raise HarnessError(f"{manifest} lacks the sweep's settings or grid (config.settings, grid); restore it "
                               f"from a copy of the run, or choose another --out")
        resumed = corrected_sweep(run_dir, whole, config, changed) if changed else whole
        for spec in map(grid_trial, whole["grid"]):  # a finished trial's figures go into results.csv again
            if (read_status(run_dir / "trials" / spec.trial_id) or {}).get("status") == "finished":
                trial_rows(run_dir / "trials" / spec.trial_id)
        return resumed
    if resume:
        raise HarnessError(f"nothing to resume in {run_dir} (no manifest.json); drop --resume to start the sweep")
    if run_dir.is_dir() and any(p.name not in OWN_LEFTOVERS for p in run_dir.iterdir()):
        # an ordinary folder: its report.md, results.csv and figures would be overwritten
        raise HarnessError(f"--out {run_dir} is a folder with files but not a run directory (no manifest.json); "
                           f"choose a new or empty folder for --out")
    if run_dir.exists() and not run_dir.is_dir():
        raise HarnessError(f"--out {run_dir} is a file, not a folder; choose a new or empty folder for --out")
    return None


def grid_trial(entry: dict) -> TrialSpec:
    """A trial of a manifest's grid, its names from the registries: its id becomes a folder name
    (trials/<id>), so a crafted entry must not lead out of the run directory."""
    try:
        spec = TrialSpec(entry["dataset"], entry["model"], entry["seed"])
        valid = spec.dataset in SPECS and spec.model in MODELS and type(spec.seed) is int \
            and entry["trial_id"] == spec.trial_id
    except (KeyError, TypeError):
        valid = False
    if not valid:
        raise HarnessError(f"manifest.json has a grid entry that is not a trial of known names: {entry!r}; "
                           f"restore the manifest from a copy of the run")
    return spec


def storage_name(run_dir: Path, storage: str) -> str:
    """How the manifest names the storage: relative to the run directory when inside it, else in full."""
    if "://" in storage:
        return storage
    path = Path(storage).resolve()
    return str(path.relative_to(run_dir)) if path.is_relative_to(run_dir) else str(path)


def storage_location(run_dir: Path, name: str) -> str:
    """The storage a manifest's name stands for, from this run directory."""
    return name if "://" in name or Path(name).is_absolute() else str(run_dir / name)


def bucket_missing(fs, bucket: str) -> bool:
    """Whether an object store (S3, GCS) says the bucket does not exist; False where it cannot be asked
    (credentials for a prefix only): reading the owner record then decides."""
    import pyarrow.fs
    stores = tuple(getattr(pyarrow.fs, name) for name in ("S3FileSystem", "GcsFileSystem") if hasattr(pyarrow.fs, name))
    if not isinstance(fs, stores):
        return False
    try:
        return fs.get_file_info(bucket).type == pyarrow.fs.FileType.NotFound
    except OSError:
        return False


def read_owner(storage: str):
    """The storage's owner record, or None when it has none (new or empty storage)."""
    import pyarrow.fs
    try:
        fs, root = pyarrow.fs.FileSystem.from_uri(storage)
        bucket = root.split("/")[0]
        if bucket_missing(fs, bucket):
            # else a mistyped bucket would read as new, empty storage (and a resume would start over)
            raise HarnessError(f"--storage {storage}: there is no bucket {bucket!r} (or these credentials "
                               f"cannot see it); create it or fix the name")
        with fs.open_input_stream(f"{root.rstrip('/')}/{OWNER_FILE}") as f:
            return json.loads(f.read())
    except FileNotFoundError:
        return None
    except (OSError, ValueError, pyarrow.ArrowException) as e:
        raise HarnessError(f"cannot read {storage}/{OWNER_FILE} ({' '.join(str(e).split())}); check --storage "
                           f"and its credentials") from None


def write_owner(storage: str, run_id: str, run_dir: Path) -> None:
    import pyarrow.fs
    try:
        fs, root = pyarrow.fs.FileSystem.from_uri(storage)
        fs.create_dir(root, recursive=True)
        with fs.open_output_stream(f"{root.rstrip('/')}/{OWNER_FILE}") as f:
            f.write(json.dumps({"run_id": run_id, "run_dir": str(run_dir), "host": socket.gethostname()}).encode())
    except (OSError, ValueError, pyarrow.ArrowException) as e:
        raise HarnessError(f"cannot write to --storage {storage} ({' '.join(str(e).split())}); check the path "
                           f"or bucket and its credentials") from None


def choose_storage(given, run_dir: Path, old) -> tuple:
    """(storage, whether its Ray state was written from another path): --storage, else <run_dir>/ray for
    a new sweep, else the sweep's own; checked to be empty (new sweep) or this sweep's (resume). Storage
    inside a run directory that was copied or moved holds Ray state that names the old path."""
    if old is None:
        storage = given or str(run_dir / "ray")
        owner = read_owner(storage)
        if owner is not None:
            raise HarnessError(f"--storage {storage} already holds the sweep of {owner.get('run_dir')}; pass "
                               f"an empty location")
        return storage, False
    storage = given or storage_location(run_dir, old["config"]["storage"])
    if not old.get("run_id"):  # manifests written before run ids carry no owner record
        return storage, False
    inside = "://" not in storage and Path(storage).resolve().is_relative_to(run_dir)
    owner = check_owner(storage, old["run_id"], run_dir, inside=inside, explicit=given is not None)
    return storage, inside and owner is not None and owner.get("run_dir") != str(run_dir)


def set_aside_ray_state(storage: str) -> None:
    """A copied or moved run directory: Ray's restore of its saved state would send the unfinished
    trials' checkpoints to the old path (the original's storage). That state is renamed, not deleted,
    and the unfinished trials start again from their beginning; finished trials are kept."""
    experiment = Path(storage) / EXPERIMENT
    if not experiment.exists():
        return
    aside = experiment.with_name(f"{EXPERIMENT}-before-move-{uuid.uuid4().hex[:8]}")
    try:
        experiment.rename(aside)
    except OSError as e:
        raise HarnessError(f"cannot set aside {experiment} ({e.strerror}); "
                           "check the run directory's permissions") from None
    print(f"this run directory was copied or moved, and Ray's saved state names the old place: unfinished trials "
          f"start again from their beginning (finished trials are kept); that state is kept, unused, in {aside}",
          flush=True)


def check_owner(storage: str, run_id: str, run_dir: Path, inside: bool, explicit: bool):
    """On --resume: the storage must be this sweep's; storage outside the run directory must not
    belong to another copy of it that still exists (both would train into one Ray state). Returns
    the owner record (None for new, empty storage named on purpose)."""
    owner = read_owner(storage)
    if owner is None:
        if explicit:
            return None  # a new, empty storage named on purpose: unfinished trials start again from scratch
        raise HarnessError(f"the sweep's storage {storage} holds no record of it ({OWNER_FILE}); mount or "
                           f"restore it, or pass --storage with an empty location to rerun unfinished trials "
                           f"from scratch")
    if owner.get("run_id") != run_id:
        raise HarnessError(f"--storage {storage} belongs to another sweep (run id {owner.get('run_id')}, "
                           f"{owner.get('run_dir')}); pass this sweep's storage or an empty location")
    original = Path(owner.get("run_dir", ""))
    if not inside and original != run_dir and (original / "manifest.json").exists():
        try:
            same_sweep = json.loads((original / "manifest.json").read_text()).get("run_id") == run_id
        except (OSError, ValueError):
            same_sweep = False
        if same_sweep:
            raise HarnessError(f"{run_dir} is a copy of {original}, whose storage {storage} it names; resume "
                               f"{original}, or resume the copy with --storage and an empty location")
    return owner


def check_writable(run_dir: Path) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-probe"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise HarnessError(f"cannot write to run directory {run_dir} ({e.strerror}); choose another --out "
                           f"or fix its permissions") from None


def manifest_for(args, config: dict, grid: list, storage: str, gpus: float, weights_hash, data: dict) -> dict:
    import torch
    settings = config["settings"]
    return {
        "name": Path(args.out).name,
        "run_id": uuid.uuid4().hex,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": {**{k: config[k] for k in DEFINING}, "seeds_list": list(range(args.seeds)),
                   "settings": {d: settings_json(s) for d, s in settings.items()},
                   "storage": storage, "data_root": args.data_root, "fid_weights": args.fid_weights,
                   "cpus_per_trial": args.cpus_per_trial, "gpus_per_trial": gpus,
                   "max_concurrent": args.max_concurrent, "tracker": args.tracker,
                   "command": "python -m bench.run " + " ".join(shlex.quote(a) for a in sys.argv[1:])},
        "grid": [{"trial_id": s.trial_id, "dataset": s.dataset, "model": s.model, "seed": s.seed} for s in grid],
        # The files read, relative to their root: "data-root" (--data-root, or the default root when none
        # was given) or "system" (Debian's Fashion-MNIST, used only when no --data-root was given).
        "data": data,
        "protocol": protocol_for(args, settings, weights_hash),
        "registry": registry_facts(),
        "versions": _versions(),
        "git_commit": _git_commit(),
        "host": {"hostname": socket.gethostname(), "user": getpass.getuser(), "platform": platform.platform(),
                 "cpus": os.cpu_count(), "cpu_model": _cpu_model(),
                 "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]},
    }


def protocol_for(args, settings: dict, weights_hash) -> dict:
    """How the sweep scores: the same for every dataset but the fd_domain network."""
    first = next(iter(settings.values()))

    def network(backbone):
        return REAL_FID if backbone == "inception" else "domain-<dataset>"
    return {"fid_backbone": network(first.fid_backbone),
            # the networks that score the claims' outputs too (Settings.beside_backbones)
            "beside": {"networks": [network(b) for b in first.beside_backbones if b != first.fid_backbone],
                       "outputs": "each model at its own sampler (compared_at), every output"},
            "weights_hash": weights_hash or "per dataset: see results.csv",
            "n_samples": first.fid_samples, "reference_split": args.reference_split, "reference_n": first.fid_samples,
            "quantize": True, "components": COMPONENT_RULE,
            "resize": "Inception: bilinear to 299 inside the network" if "inception" in first.backbones() else "none",
            "samplers": {"gmm": settings_json(first)["gmm"]}}


def registry_facts() -> dict:
    """The registries' names and facts as lists in registry order (JSON objects are written with
    sorted keys): reports read labels, outputs, samplers and orders from here."""
    return {"datasets": [{"name": name, "label": s.label} for name, s in SPECS.items()],
            "models": [{"name": name, "label": m.label, "compared_at": m.compared_at, "outputs": list(m.outputs),
                        "literature": list(m.literature), "purely_variational": m.purely_variational}
                       for name, m in MODELS.items()],
            "samplers": [{"name": name, "title": s.title, "description": s.description,
                          "models": None if s.models is None else list(s.models)} for name, s in SAMPLERS.items()]}


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version
    out = {"python": platform.python_version()}
    for package in ("torch", "torchvision", "ray", "pytorch-fid", "numpy", "scipy", "scikit-learn", "pandas"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = None
    return out


def _cpu_model():
    try:
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]
    except OSError:
        names = []
    return names[0] if names else None


def _git_commit():
    try:
        root = Path(__file__).resolve().parent.parent
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain"], capture_output=True, text=True,
                               timeout=10).stdout.strip()
        return (out.stdout.strip() + ("+dirty" if dirty else "")) if out.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired):
        return None


# A manifest's kinds of session -> the totals over them: bench.run's sessions (training and the cheap
# metrics) and bench.rescore's (figures added later, e.g. Inception FID on a cpu study).
SESSION_TOTALS = {"sessions": ("wall_time_s", "sessions_unmeasured"),
                  "rescores": ("rescore_wall_s", "rescores_unmeasured")}


def open_session(manifest: dict, kind: str = "sessions", **facts) -> dict:
    """The manifest with this invocation added to its sessions of this kind (facts: what it does), its wall
    time still unknown (null): a session killed outright stays null, so a study's recorded time never
    silently leaves it out."""
    session = {"started": time.strftime(TIME_FORMAT), "wall_s": None,
               "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
               "cpu_model": _cpu_model(), **facts}
    return with_totals({**manifest, kind: manifest.get(kind, []) + [session]}, kind)


def note_progress(run_dir: Path, kind: str = "sessions") -> None:
    """Record that this session was alive now (its last_seen): a session killed outright then still
    counts, at least up to its last finished trial, in its kind's total."""
    _update_sessions(run_dir, kind, last_seen=time.strftime(TIME_FORMAT))


def close_session(run_dir: Path, seconds: float, kind: str = "sessions") -> None:
    """Record the session's wall time (bench.run: from the command's start to the sweep's end; rendering
    the reports is not counted) and its kind's total over sessions: the study's cost."""
    _update_sessions(run_dir, kind, wall_s=round(seconds, 1))


def _update_sessions(run_dir: Path, kind: str, **facts) -> None:
    """The last session's facts set, and the totals over its kind."""
    path = run_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest[kind][-1].update(facts)
    atomic_write_json(path, with_totals(manifest, kind))


def with_totals(manifest: dict, kind: str) -> dict:
    """The manifest with its totals over the sessions of a kind: a session without a wall time (running,
    or killed outright) counts from its start to its last_seen, so where some are unmeasured the total
    is the least possible time."""
    sessions = manifest[kind]
    total, unmeasured = SESSION_TOTALS[kind]
    return {**manifest, total: round(sum(session_seconds(s) for s in sessions), 1),
            unmeasured: sum(s["wall_s"] is None for s in sessions)}


def session_seconds(session: dict) -> float:
    """A session's wall time; for one killed outright, from its start to its last_seen (0 without one)."""
    if session["wall_s"] is not None:
        return session["wall_s"]
    if not session.get("last_seen"):
        return 0.0
    seen, started = (datetime.strptime(session[k], TIME_FORMAT) for k in ("last_seen", "started"))
    return max(0.0, (seen - started).total_seconds())
