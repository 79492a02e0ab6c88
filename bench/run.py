"""python -m bench.run: train and score every (dataset, model, seed) on Ray Tune, then render the reports.

Everything that can be checked is checked before Ray starts: names, numbers, data files, the FID
weights, the run directory; then, once, the cluster's address and resources. Bad input is one line
on stderr and exit status 2; an incomplete sweep lists the missing trials, says how to resume, and
exits 1; Ctrl-C at any moment is one line (with the resume command once there is a sweep to
resume) and exit status 130.

A run directory is self-contained and held by one process at a time (svae/lock.py): storage inside
it is recorded relative to it, storage outside it (--storage) by its full name, and the storage
keeps an owner record (owner.json: run id and run directory) that --resume checks, so a copy of a
run directory never trains into, or reads, the original's state.
"""
if __name__ == "__main__":  # first, so that Ctrl-C while the imports below load is one line
    from svae.interrupt import quiet_until_main
    quiet_until_main()

import argparse
import getpass
import json
import math
import os
import platform
import shlex
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from bench.cli import HelpFormatter, add_options
from bench.config_file import save_config, with_config_file
from bench.dryrun import dry_run
from bench.models import MODELS
from bench.overrides import parse_overrides, typed_overrides
from bench.plan import confirm, make_plan
from bench.presets import PRESETS, Settings, sweep_settings
from bench.tracking import check_tracker, log_reports
from bench.trial import CHECKPOINT_EVERY_S, FAULT_ENV, Evaluation, TrialSpec, settings_json
from svae.contract import REAL_FID
from svae.data import DEBIAN_FASHION_MNIST, SPECS, default_data_root, load_images, provenance
from svae.errors import HarnessError, choose
from svae.lock import run_lock
from svae.interrupt import interrupts_raise
from svae.io import atomic_write_json
from svae.samplers import COMPONENT_RULE, SAMPLERS

# The settings that define a sweep's results; a run directory holds one sweep, so these must match
# on --resume. Paths and resources (where things are, how fast they run) may change.
DEFINING = ("datasets", "models", "seeds", "preset", "fid_samples", "fid_backbone", "gmm_fit_on", "search",
            "overrides", "reference_split", "amp")
# what manifests written before these keys meant
ADDED_LATER = {"gmm_fit_on": None, "search": None, "overrides": {}, "reference_split": "test", "amp": False}
GRID_CONFIRM = 1000  # a grid of more trials is likely a typo (--seeds 500): ask before starting it
ADDRESS_TIMEOUT_S = 5  # a cluster address that does not answer within this is an error, not a wait
OWNER_FILE = "owner.json"  # in the storage: which sweep (run id) and run directory it belongs to
SHARED_FILESYSTEMS = ("nfs", "nfs4", "cifs", "smb3", "lustre", "gpfs", "beegfs", "ceph", "glusterfs", "9p")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--datasets", nargs="*", default=["mnist", "cifar10", "celeba"],
                   help=f"datasets, from: {', '.join(SPECS)}")
    p.add_argument("--seeds", type=int, default=5, help="number of seeds per cell (seeds 0..N-1)")
    p.add_argument("--models", nargs="*", default=list(MODELS), help=f"models, from: {', '.join(MODELS)}")
    p.add_argument("--preset", default="paper", help=f"preset, from: {', '.join(PRESETS)}")
    p.add_argument("--out", default=None, help="run directory (default: runs/<preset>-<datasets>)")
    p.add_argument("--address", default=os.environ.get("RAY_ADDRESS"),
                   help="address of an existing Ray cluster (RAY_ADDRESS is honoured); none: a local cluster")
    p.add_argument("--storage", default=None,
                   help="shared storage for trial checkpoints: a path mounted on every node, or s3://... "
                        "(default: <out>/ray, for a local cluster only; on --resume: the sweep's own)")
    p.add_argument("--cpus-per-trial", type=float, default=1, help="CPUs per trial (also its torch threads)")
    p.add_argument("--gpus-per-trial", type=float, default=None,
                   help="GPUs per trial, fractions allowed (default: 1 if the cluster has GPUs, else 0)")
    p.add_argument("--max-concurrent", type=int, default=None,
                   help="at most this many trials at once (default: as many as resources allow)")
    p.add_argument("--checkpoint-every", type=float, default=CHECKPOINT_EVERY_S, metavar="SECONDS",
                   help="seconds between a training trial's checkpoints to the storage, besides each stage's "
                        f"last epoch (default {CHECKPOINT_EVERY_S:g}; 0: every epoch): the work a failed trial "
                        "redoes, against the storage's traffic")
    p.add_argument("--fid-samples", type=int, default=None,
                   help="generated images per FID, and test images in the reference (default: the preset's; "
                        "paper 10000)")
    p.add_argument("--fid-backbone", choices=["inception", "domain"], default=None,
                   help="inception: real FID; domain: the offline fd_domain stand-in (default: the preset's)")
    p.add_argument("--fid-weights", default=None,
                   help="path to pt_inception-2015-12-05-6726825d.pth (default: the torch hub cache)")
    p.add_argument("--amp", action="store_true",
                   help="train in bfloat16 autocast on GPUs (the preset's amp setting; no effect on CPUs)")
    p.add_argument("--data-root", default=None,
                   help="folder holding the datasets; only it is read (default: $SVAE_BENCH_DATA or ./data, "
                        f"and for fashion-mnist also Debian's {DEBIAN_FASHION_MNIST})")
    p.add_argument("--download", action="store_true", help="download missing datasets through torchvision")
    p.add_argument("--resume", action="store_true", help="continue an interrupted sweep in --out")
    p.add_argument("--yes", action="store_true",
                   help=f"start without asking: a grid of more than {GRID_CONFIRM} trials, or days on CPUs")
    p.add_argument("--gmm-fit-on", choices=["train", "test"], default=None,
                   help="fit the GMM sampler on training images (leak-free), or on the FID reference (test) "
                        "images as the SVAE authors did (default: the preset's, train)")
    p.add_argument("--probe", action="store_true",
                   help="with --dry-run: cost the plan by timing a few batches of every model here (minutes)")
    p.add_argument("--search", action=argparse.BooleanOptionalAction, default=None,
                   help="tune each searched baseline's knob on a validation split first (bench/search.py) "
                        "(default: the preset's; paper on, smoke off)")
    p.add_argument("--config", metavar="FILE.yaml",
                   help="read the sweep's settings from a YAML file (configs/ has one per preset); flags given "
                        "here win, and --set adds to its set:")
    p.add_argument("--save-config", metavar="FILE.yaml",
                   help="write this sweep's defining config (preset, datasets, models, seeds, --set) to a file")
    add_options(p)
    try:
        return p.parse_args(with_config_file(sys.argv[1:] if argv is None else list(argv)))
    except HarnessError as e:
        print("error: " + " ".join(str(e).split()), file=sys.stderr)
        raise SystemExit(2) from None


def check_args(args) -> dict:
    """Validate what needs no Ray and no files; return the sweep's defining config."""
    if not args.datasets:
        raise HarnessError(f"--datasets is empty; name at least one of {', '.join(SPECS)}")
    for name in args.datasets:
        choose("dataset", name, SPECS)
    if not args.models:
        raise HarnessError(f"--models is empty; name at least one of {', '.join(MODELS)}")
    for name in args.models:
        choose("model", name, MODELS)
    choose("preset", args.preset, PRESETS)
    if args.seeds < 1:
        raise HarnessError(f"--seeds must be at least 1 (got {args.seeds})")
    if not 0 < args.cpus_per_trial < math.inf:
        raise HarnessError(f"--cpus-per-trial must be positive and finite (got {args.cpus_per_trial})")
    if args.gpus_per_trial is not None and not 0 <= args.gpus_per_trial < math.inf:
        raise HarnessError(f"--gpus-per-trial must be finite and not negative (got {args.gpus_per_trial})")
    if args.max_concurrent is not None and args.max_concurrent < 1:
        raise HarnessError(f"--max-concurrent must be at least 1 (got {args.max_concurrent})")
    if not args.checkpoint_every >= 0:
        raise HarnessError(f"--checkpoint-every must be 0 or more seconds (got {args.checkpoint_every:g})")
    if os.environ.get(FAULT_ENV, "").startswith("kill:") and args.checkpoint_every != 0:
        raise HarnessError(f"{FAULT_ENV}=kill:... kills a trial right after an epoch's checkpoint: it needs "
                           f"--checkpoint-every 0")
    if args.fid_samples is not None and args.fid_samples < 2:
        raise HarnessError(f"--fid-samples must be at least 2 (got {args.fid_samples})")
    if args.address and not args.storage:
        raise HarnessError("--address needs --storage: a path mounted on every node, or s3://...")
    check_tracker(args.tracker)
    overrides = typed_overrides(parse_overrides(args.overrides), Settings)
    datasets = list(dict.fromkeys(args.datasets))
    models = list(dict.fromkeys(args.models))
    config = {"datasets": datasets, "models": models, "seeds": args.seeds, "preset": args.preset,
              "fid_samples": args.fid_samples, "fid_backbone": args.fid_backbone, "gmm_fit_on": args.gmm_fit_on,
              "search": args.search, "overrides": overrides, "reference_split": args.reference_split,
              "amp": args.amp}
    return {**config, "settings": {d: sweep_settings(config, d) for d in datasets}}


def check_data(args, settings: dict) -> dict:
    """Every dataset readable and its reference split large enough, before any trial starts; return
    the files read, per dataset and split (svae.data.provenance), for the manifest."""
    files = {}
    for dataset, s in settings.items():
        train = load_images(dataset, "train", args.data_root, args.download)
        test = load_images(dataset, args.reference_split, args.data_root, args.download)
        if s.fid_samples > len(test.images):
            raise HarnessError(f"--fid-samples {s.fid_samples} is larger than {dataset}'s {args.reference_split} "
                               f"split ({len(test.images)} images), the FID reference; pass --fid-samples "
                               f"{len(test.images)} or less")
        files[dataset] = {"train": provenance(train, args.data_root),
                          args.reference_split: provenance(test, args.data_root)}
    return files


def check_same_data(old: dict, now: dict) -> None:
    """On --resume: the files read now must be those the sweep started with (paths relative to their root)."""
    strip = lambda records: [(r["path"], r["size"], r["sha256"]) for r in records]  # noqa: E731
    for dataset, splits in now.items():
        for split, records in splits.items():
            before = old.get(dataset, {}).get(split)
            if before is not None and strip(before) != strip(records):
                changed = sorted(set(strip(records)) ^ set(strip(before)))[0][0]
                raise HarnessError(f"{dataset} {split} data differ from those this sweep started with "
                                   f"(first: {changed}; see manifest.json data); point --data-root at the "
                                   f"original files, or start a new sweep in another --out")


def confirm_grid(n: int, yes: bool) -> None:
    """A grid over GRID_CONFIRM trials starts only when the user says so: --yes, or y at the prompt."""
    if n <= GRID_CONFIRM or yes:
        return
    question = f"the grid has {n} trials (datasets x models x seeds), more than {GRID_CONFIRM}"
    if not sys.stdin or not sys.stdin.isatty():
        raise HarnessError(f"{question}; check --seeds, --datasets and --models, or pass --yes to start it")
    try:
        answer = input(f"{question}; start them all? [y/N] ")
    except EOFError:
        answer = ""
    if answer.strip().lower() not in ("y", "yes"):
        raise HarnessError(f"not started: {question}; check --seeds, --datasets and --models, or pass --yes")


def check_run_dir(run_dir: Path, config: dict, resume: bool):
    """A run directory holds one sweep: refuse another configuration, and refuse to overwrite.
    Return the manifest of the sweep to resume (None for a new sweep)."""
    manifest = run_dir / "manifest.json"
    if manifest.exists():
        try:
            whole = json.loads(manifest.read_text())
            old = whole["config"]
        except (OSError, ValueError, KeyError, TypeError):
            raise HarnessError(f"{manifest} is unreadable; choose another --out") from None
        changed = [k for k in DEFINING if old.get(k, ADDED_LATER.get(k)) != config[k]]
        if changed:
            diffs = ", ".join(f"{k}: {old.get(k, ADDED_LATER.get(k))!r} there, {config[k]!r} now" for k in changed)
            raise HarnessError(f"{run_dir} holds a different sweep ({diffs}); choose another --out")
        if not resume:
            raise HarnessError(f"{run_dir} already holds this sweep; pass --resume to continue it, "
                               f"or choose another --out")
        return whole
    if resume:
        raise HarnessError(f"nothing to resume in {run_dir} (no manifest.json); drop --resume to start the sweep")
    return None


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
    from bench.sweep import EXPERIMENT
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


def filesystem_type(path: Path) -> str:
    """The type of the mount holding path, from /proc/mounts (longest matching mount point)."""
    path = path.resolve()
    best, kind = "", "unknown"
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            fields = line.split()
            if len(fields) >= 3 and str(path).startswith(fields[1]) and len(fields[1]) > len(best):
                best, kind = fields[1], fields[2]
    except OSError:
        pass
    return kind


def check_storage(storage: str, node_ips: set, local_ips: set) -> None:
    """Trials on other machines must reach the storage: a URI, or a path on a shared filesystem."""
    remote = node_ips - local_ips
    if "://" in storage or not remote:
        return
    kind = filesystem_type(Path(storage))
    if not kind.startswith("fuse") and kind not in SHARED_FILESYSTEMS:
        raise HarnessError(f"--storage {storage} is a local {kind} path, but the cluster has nodes on other "
                           f"machines ({', '.join(sorted(remote))}); pass a path mounted on every node (NFS, ...) "
                           f"or s3://...")


def check_address(address: str) -> None:
    """Something must answer at a cluster's address within seconds; Ray itself would wait for minutes."""
    if address in ("auto", "local"):
        return
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        raise HarnessError(f"--address {address} is not HOST:PORT (or ray://HOST:PORT); give the head node's "
                           f"address, as `ray status` prints it there")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=ADDRESS_TIMEOUT_S).close()
    except OSError as e:
        raise HarnessError(f"nothing answers at --address {address} within {ADDRESS_TIMEOUT_S} s "
                           f"({e.strerror or type(e).__name__}); check the address and that the cluster is up "
                           f"(`ray status` on its head node)") from None


def check_resources(cpus: float, gpus: float, nodes: list) -> None:
    """A trial must fit on some node, or Ray would wait for it forever."""
    alive = [n.get("Resources", {}) for n in nodes if n.get("Alive")]
    if any(r.get("CPU", 0) >= cpus and r.get("GPU", 0) >= gpus for r in alive):
        return
    largest = ", ".join(sorted({f"{r.get('CPU', 0):g} CPUs and {r.get('GPU', 0):g} GPUs" for r in alive})) or "none"
    raise HarnessError(f"no node of the cluster has {cpus:g} CPUs and {gpus:g} GPUs for a trial (nodes: "
                       f"{largest}); lower --cpus-per-trial or --gpus-per-trial, or add a larger node")


def start_ray(args):
    import logging
    # A quiet console: the legacy reporter honours verbose=0, and Ray's warnings go to its log files.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    logging.getLogger("ray").setLevel(logging.ERROR)
    if not args.address:
        # Ray's single-machine mode: the node's address is loopback, so every server binds to
        # 127.0.0.1 (read when Ray is imported, inherited by its processes).
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    import ray

    try:
        if args.address:
            try:
                ray.init(address=args.address, logging_level=logging.ERROR, log_to_driver=False)
            except (ConnectionError, RuntimeError, TimeoutError) as e:
                raise HarnessError(f"cannot join the Ray cluster at --address {args.address} "
                                   f"({' '.join(str(e).split())[:200]}); "
                                   "check the address and the Ray versions") from None
            node_ips = {n["NodeManagerAddress"] for n in ray.nodes() if n.get("Alive")}
            check_storage(args.storage, node_ips, {"127.0.0.1", ray.util.get_node_ip_address()})
        else:
            ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False,
                     logging_level=logging.ERROR, log_to_driver=False)
        gpus = args.gpus_per_trial
        if gpus is None:
            gpus = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
        check_resources(args.cpus_per_trial, gpus, ray.nodes())
    except HarnessError:
        ray.shutdown()
        raise
    return gpus


def stop_ray() -> None:
    """Shut down Ray if this process started or joined it: no Ray process outlives the command."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


def manifest_for(args, config: dict, grid: list, storage: str, gpus: float, weights_hash, data: dict) -> dict:
    import torch
    settings = config["settings"]
    first = next(iter(settings.values()))
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
        "protocol": {"fid_backbone": REAL_FID if first.fid_backbone == "inception" else "domain-<dataset>",
                     "weights_hash": weights_hash or "per dataset: see results.csv",
                     "n_samples": first.fid_samples, "reference_split": args.reference_split,
                     "reference_n": first.fid_samples,
                     "quantize": True, "components": COMPONENT_RULE,
                     "resize": "bilinear to 299 inside the network" if first.fid_backbone == "inception" else "none",
                     "samplers": {"gmm": settings_json(first)["gmm"]}},
        "registry": registry_facts(),
        "versions": _versions(),
        "git_commit": _git_commit(),
        "host": {"hostname": socket.gethostname(), "user": getpass.getuser(), "platform": platform.platform(),
                 "cpus": os.cpu_count(), "cpu_model": _cpu_model(),
                 "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]},
    }


def registry_facts() -> dict:
    """The registries' names and facts as lists in registry order (JSON objects are written with
    sorted keys): reports read labels, outputs, samplers and orders from here."""
    return {"datasets": [{"name": name, "label": s.label} for name, s in SPECS.items()],
            "models": [{"name": name, "label": m.label, "compared_at": m.compared_at, "outputs": list(m.outputs),
                        "literature": list(m.literature)} for name, m in MODELS.items()],
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


def main(argv=None) -> int:
    interrupts_raise()
    args = parse_args(argv)
    try:
        return run(args)
    except HarnessError as e:
        print("error: " + " ".join(str(e).split()), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        run_dir = Path(args.out).resolve() if args.out else None
        resumable = run_dir is not None and (run_dir / "manifest.json").exists()
        print("interrupted" + (f"; to resume: {resume_command()}" if resumable else "; nothing was started"),
              file=sys.stderr)
        return 130
    finally:
        stop_ray()


def run(args) -> int:
    clock = time.monotonic()  # the session's wall time counts from here: data checks and probe included
    config = check_args(args)
    if args.save_config:
        save_config(args.save_config, config)
        print(f"saved the sweep's config to {args.save_config} (run it again with --config {args.save_config})")
    if args.probe and not args.dry_run:
        raise HarnessError("--probe costs a dry run's plan; pass it with --dry-run (a real run always probes)")
    confirm_grid(len(config["datasets"]) * len(config["models"]) * args.seeds,
                 args.yes or args.resume or args.dry_run)  # a dry run starts nothing
    if args.address:
        check_address(args.address)
    if args.out is None:
        args.out = f"runs/{args.preset}-{'-'.join(config['datasets'])}"
    run_dir = Path(args.out).resolve()
    check_run_dir(run_dir, config, args.resume)
    grid = [TrialSpec(d, m, seed) for d in config["datasets"] for m in config["models"]
            for seed in range(args.seeds)]
    if args.dry_run:
        return dry_run(args, config, grid)
    data, weights_hash = check_data(args, config["settings"]), None
    if any(s.fid_backbone == "inception" for s in config["settings"].values()):
        from bench.metrics import Scorer
        # missing weights: fail now, not after hours of training
        weights_hash = Scorer(backbone="inception", weights_path=args.fid_weights).extractor().weights_hash
    cost = print_plan(args, config, grid)
    check_writable(run_dir)  # created only once everything else is known to be good
    with run_lock(run_dir, "python -m bench.run"):
        old = check_run_dir(run_dir, config, args.resume)  # again: another process may have written it meanwhile
        if old is not None:
            check_same_data(old.get("data", {}), data)
        storage, ray_state_elsewhere = choose_storage(args.storage, run_dir, old)
        if ray_state_elsewhere:  # before the owner record names this run directory: never skipped
            set_aside_ray_state(storage)
        gpus = start_ray(args)
        from bench.sweep import SweepPlan, run_sweep  # imports Ray: only once the input is known to be good
        if old is None:
            manifest = manifest_for(args, config, grid, storage_name(run_dir, storage), gpus, weights_hash, data)
        else:
            manifest = {**old, "config": {**old["config"], "storage": storage_name(run_dir, storage)}}
        if manifest.get("run_id"):  # the owner record first: a manifest always names storage that knows it
            write_owner(storage, manifest["run_id"], run_dir)
        atomic_write_json(run_dir / "manifest.json", open_session(manifest))
        # Real statistics and fd_domain classifiers are shared through the storage; object storage cannot
        # hold the cache's file locks, so there each node keeps its own cache (one computation per node).
        fid_cache = storage + "/fid-cache" if "://" not in storage else str(Path.home() / ".cache" / "svae-bench")
        data_root = str(Path(args.data_root).resolve()) if args.data_root else None
        evaluation = Evaluation(fid_weights=args.fid_weights, fid_cache=fid_cache,
                                data_root=data_root or str(default_data_root().resolve()), download=args.download,
                                reference_split=args.reference_split, system_copy=data_root is None)
        from bench.search import run_searches  # tunes the searched baselines; a resumed sweep reuses its result
        try:
            config["settings"] = run_searches(run_dir, config["settings"], config["models"], evaluation, storage,
                                              {"cpu": args.cpus_per_trial, "gpu": gpus},
                                              enabled=next(iter(config["settings"].values())).search)
            plan = SweepPlan(run_dir=run_dir, storage=storage, grid=grid, settings=config["settings"],
                             evaluation=evaluation, cpus_per_trial=args.cpus_per_trial, gpus_per_trial=gpus,
                             max_concurrent=args.max_concurrent, resume=args.resume,
                             fault=os.environ.get(FAULT_ENV), tracker=args.tracker,
                             estimates=cost.trial_seconds(), concurrency=cost.concurrency,
                             checkpoint_every=args.checkpoint_every)
            run_sweep(plan)
        finally:  # an interrupted session's time counts too
            close_session(run_dir, time.monotonic() - clock)
        return finish(run_dir, grid, args.tracker)


def open_session(manifest: dict) -> dict:
    """The manifest with this invocation added to its sessions, its wall time still unknown (null):
    a session killed outright stays null, so a study's recorded time never silently leaves it out."""
    session = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "wall_s": None,
               "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
               "cpu_model": _cpu_model()}
    return {**manifest, "sessions": manifest.get("sessions", []) + [session]}


def close_session(run_dir: Path, seconds: float) -> None:
    """Record the session's wall time (from the command's start to the sweep's end; rendering the
    reports is not counted) and wall_time_s, the sum over sessions: the study's cost."""
    path = run_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    sessions = manifest["sessions"]
    sessions[-1]["wall_s"] = round(seconds, 1)
    manifest["wall_time_s"] = round(sum(s["wall_s"] or 0 for s in sessions), 1)
    manifest["sessions_unmeasured"] = sum(s["wall_s"] is None for s in sessions)
    atomic_write_json(path, manifest)


def resume_command() -> str:
    return (f"python -m bench.run {' '.join(shlex.quote(a) for a in sys.argv[1:] if a != '--resume')} "
            f"--resume")


def print_plan(args, config: dict, grid: list):
    """The plan and its estimated cost, before anything runs; a plan of days on CPUs must be confirmed."""
    plan = make_plan(grid, args.preset, config["settings"], args.cpus_per_trial, args.gpus_per_trial,
                     args.max_concurrent, remote=bool(args.address),
                     progress=lambda line: print(line + "...", flush=True))
    print("\n".join(plan.lines()), flush=True)
    if plan.days_on_cpus:
        confirm("This sweep would take days on CPUs only. Run it?", args.yes)
    return plan


def finish(run_dir: Path, grid: list, tracker: str = "none") -> int:
    import reports
    from bench.sweep import trial_status
    try:
        reports.render(run_dir)
        print(f"reports: {run_dir / 'report.md'}")
        log_reports(run_dir, tracker)
    except Exception as e:  # the results are safe on disk: say so and go on to the summary
        print(f"error: the reports could not be rendered ({type(e).__name__}: {e}); the results are in "
              f"{run_dir / 'results.csv'}; re-render with: python -m reports {run_dir}", file=sys.stderr)
    missing = [(s.trial_id, trial_status(run_dir, s.trial_id)) for s in grid]
    missing = [(tid, st) for tid, st in missing if st["status"] != "finished"]
    if not missing:
        print(f"all {len(grid)} trials finished; results: {run_dir / 'results.csv'}")
        return 0
    print(f"{len(missing)} of {len(grid)} trials did not finish:", file=sys.stderr)
    for trial_id, status in missing:
        print(f"  {trial_id}: {status['status']}{': ' + status['error'] if status.get('error') else ''}",
              file=sys.stderr)
    print(f"to resume: {resume_command()}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
