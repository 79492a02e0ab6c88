"""python -m bench.run: train and score every (dataset, model, seed) on Ray Tune, then render the reports.

Everything that can be checked is checked before Ray starts: names, numbers, data files, the FID
weights, the run directory. Bad input is one line on stderr and exit status 2; an incomplete
sweep lists the missing trials, says how to resume, and exits 1.
"""
import argparse
import getpass
import json
import os
import platform
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

from bench.cli import HelpFormatter, add_options
from bench.models import MODELS
from bench.overrides import apply_overrides, parse_overrides, typed_overrides
from bench.plan import confirm, make_plan
from bench.presets import PRESETS, Settings, settings_for
from bench.tracking import check_tracker
from bench.trial import FAULT_ENV, Evaluation, TrialSpec, settings_json
from svae.data import SPECS, default_data_root, load_images
from svae.errors import HarnessError, choose
from svae.io import atomic_write_json
from svae.samplers import COMPONENT_RULE, SAMPLERS

# The settings that define a sweep's results; a run directory holds one sweep, so these must match
# on --resume. Paths and resources (where things are, how fast they run) may change.
DEFINING = ("datasets", "models", "seeds", "preset", "fid_samples", "fid_backbone", "gmm_fit_on", "search",
            "overrides", "reference_split", "amp")
# what manifests written before these keys meant
ADDED_LATER = {"gmm_fit_on": None, "search": None, "overrides": {}, "reference_split": "test", "amp": False}
SHARED_FILESYSTEMS = ("nfs", "nfs4", "cifs", "smb3", "lustre", "gpfs", "beegfs", "ceph", "glusterfs", "9p")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--datasets", nargs="*", default=["mnist", "cifar10", "celeba"],
                   help=f"datasets, from: {', '.join(SPECS)}")
    p.add_argument("--seeds", type=int, default=5, help="number of seeds per cell (seeds 0..N-1)")
    p.add_argument("--models", nargs="*", default=list(MODELS), help=f"models, from: {', '.join(MODELS)}")
    p.add_argument("--preset", default="paper", help=f"settings preset, from: {', '.join(PRESETS)}")
    p.add_argument("--out", default=None, help="run directory (default: runs/<preset>-<datasets>)")
    p.add_argument("--address", default=os.environ.get("RAY_ADDRESS"),
                   help="address of an existing Ray cluster (RAY_ADDRESS is honoured); none: a local cluster")
    p.add_argument("--storage", default=None,
                   help="shared storage for trial checkpoints: a path mounted on every node, or s3://... "
                        "(default: <out>/ray, for a local cluster only)")
    p.add_argument("--cpus-per-trial", type=float, default=1, help="CPUs per trial (also its torch threads)")
    p.add_argument("--gpus-per-trial", type=float, default=None,
                   help="GPUs per trial, fractions allowed (default: 1 if the cluster has GPUs, else 0)")
    p.add_argument("--max-concurrent", type=int, default=None,
                   help="at most this many trials at once (default: as many as resources allow)")
    p.add_argument("--fid-samples", type=int, default=None,
                   help="generated images per FID, and test images in the reference (default: the preset's; "
                        "paper 10000)")
    p.add_argument("--fid-backbone", choices=["inception", "domain"], default=None,
                   help="inception: real FID; domain: the offline fd_domain stand-in (default: the preset's)")
    p.add_argument("--fid-weights", default=None,
                   help="path to pt_inception-2015-12-05-6726825d.pth (default: the torch hub cache)")
    p.add_argument("--amp", action="store_true",
                   help="train in bfloat16 autocast on GPUs (the preset's amp setting; no effect on CPUs)")
    p.add_argument("--data-root", default=str(default_data_root()), help="folder holding the datasets")
    p.add_argument("--download", action="store_true", help="download missing datasets through torchvision")
    p.add_argument("--resume", action="store_true", help="continue an interrupted sweep in --out")
    p.add_argument("--gmm-fit-on", choices=["train", "test"], default=None,
                   help="fit the GMM sampler on training images (leak-free), or on the FID reference (test) "
                        "images as the SVAE authors did (default: the preset's, train)")
    p.add_argument("--search", action=argparse.BooleanOptionalAction, default=None,
                   help="tune each searched baseline's knob on a validation split first (bench/search.py) "
                        "(default: the preset's; paper on, smoke off)")
    add_options(p)
    return p.parse_args(argv)


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
    if args.cpus_per_trial <= 0:
        raise HarnessError(f"--cpus-per-trial must be positive (got {args.cpus_per_trial})")
    if args.gpus_per_trial is not None and args.gpus_per_trial < 0:
        raise HarnessError(f"--gpus-per-trial cannot be negative (got {args.gpus_per_trial})")
    if args.max_concurrent is not None and args.max_concurrent < 1:
        raise HarnessError(f"--max-concurrent must be at least 1 (got {args.max_concurrent})")
    if args.fid_samples is not None and args.fid_samples < 2:
        raise HarnessError(f"--fid-samples must be at least 2 (got {args.fid_samples})")
    if args.address and not args.storage:
        raise HarnessError("--address needs --storage: a path mounted on every node, or s3://...")
    check_tracker(args.tracker)
    overrides = typed_overrides(parse_overrides(args.overrides), Settings)
    datasets = list(dict.fromkeys(args.datasets))
    models = list(dict.fromkeys(args.models))
    settings = {d: apply_overrides(settings_for(args.preset, d, gmm_fit_on=args.gmm_fit_on,
                                                 fid_samples=args.fid_samples, fid_backbone=args.fid_backbone,
                                                 search=args.search, amp=args.amp or None), overrides)
                for d in datasets}
    return {"datasets": datasets, "models": models, "seeds": args.seeds, "preset": args.preset,
            "fid_samples": args.fid_samples, "fid_backbone": args.fid_backbone, "gmm_fit_on": args.gmm_fit_on,
            "search": args.search, "overrides": overrides, "reference_split": args.reference_split,
            "amp": args.amp,
            "settings": settings}


def check_data(args, settings: dict) -> None:
    """Every dataset readable and its reference split large enough, before any trial starts."""
    for dataset, s in settings.items():
        load_images(dataset, "train", args.data_root, args.download)
        reference = len(load_images(dataset, args.reference_split, args.data_root, args.download).images)
        if s.fid_samples > reference:
            raise HarnessError(f"--fid-samples {s.fid_samples} is larger than {dataset}'s {args.reference_split} split "
                               f"({reference} images), the FID reference; pass --fid-samples {reference} or less")


def check_run_dir(run_dir: Path, config: dict, resume: bool) -> None:
    """A run directory holds one sweep: refuse another configuration, and refuse to overwrite."""
    manifest = run_dir / "manifest.json"
    if manifest.exists():
        try:
            old = json.loads(manifest.read_text())["config"]
        except (OSError, ValueError, KeyError):
            raise HarnessError(f"{manifest} is unreadable; choose another --out") from None
        changed = [k for k in DEFINING if old.get(k, ADDED_LATER.get(k)) != config[k]]
        if changed:
            diffs = ", ".join(f"{k}: {old.get(k, ADDED_LATER.get(k))!r} there, {config[k]!r} now" for k in changed)
            raise HarnessError(f"{run_dir} holds a different sweep ({diffs}); choose another --out")
        if not resume:
            raise HarnessError(f"{run_dir} already holds this sweep; pass --resume to continue it, "
                               f"or choose another --out")
    elif resume:
        raise HarnessError(f"nothing to resume in {run_dir} (no manifest.json); drop --resume to start the sweep")


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

    if args.address:
        ray.init(address=args.address, logging_level=logging.ERROR, log_to_driver=False)
        node_ips = {n["NodeManagerAddress"] for n in ray.nodes() if n.get("Alive")}
        try:
            check_storage(args.storage, node_ips, {"127.0.0.1", ray.util.get_node_ip_address()})
        except HarnessError:
            ray.shutdown()
            raise
    else:
        ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False,
                 logging_level=logging.ERROR, log_to_driver=False)
    gpus = args.gpus_per_trial
    if gpus is None:
        gpus = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
    return gpus


def manifest_for(args, config: dict, grid: list, storage: str, gpus: float, weights_hash) -> dict:
    import torch
    settings = config["settings"]
    first = next(iter(settings.values()))
    return {
        "name": Path(args.out).name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": {**{k: config[k] for k in DEFINING}, "seeds_list": list(range(args.seeds)),
                   "settings": {d: settings_json(s) for d, s in settings.items()},
                   "storage": storage, "data_root": args.data_root, "fid_weights": args.fid_weights,
                   "cpus_per_trial": args.cpus_per_trial, "gpus_per_trial": gpus,
                   "max_concurrent": args.max_concurrent, "tracker": args.tracker,
                   "command": "python -m bench.run " + " ".join(shlex.quote(a) for a in sys.argv[1:])},
        "grid": [{"trial_id": s.trial_id, "dataset": s.dataset, "model": s.model, "seed": s.seed} for s in grid],
        "protocol": {"fid_backbone": "inception-fid" if first.fid_backbone == "inception" else "domain-<dataset>",
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
                 "cpus": os.cpu_count(), "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]},
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
    args = parse_args(argv)
    try:
        config = check_args(args)
        if args.out is None:
            args.out = f"runs/{args.preset}-{'-'.join(config['datasets'])}"
        run_dir = Path(args.out).resolve()
        check_run_dir(run_dir, config, args.resume)
        weights_hash = None
        if not args.dry_run:  # a dry run reads no data (CelebA's first read writes a cache beside it)
            check_data(args, config["settings"])
            if any(s.fid_backbone == "inception" for s in config["settings"].values()):
                from bench.fid import FIDEngine
                # missing weights: fail now, not after hours of training
                weights_hash = FIDEngine(backbone="inception", weights_path=args.fid_weights).weights_hash(None)
        grid = [TrialSpec(d, m, seed) for d in config["datasets"] for m in config["models"]
                for seed in range(args.seeds)]
        cost = print_plan(args, config, grid)
        if args.dry_run:
            return 0
        check_writable(run_dir)  # created only once everything else is known to be good
        storage = args.storage or str(run_dir / "ray")
        if args.resume and not args.storage:
            storage = json.loads((run_dir / "manifest.json").read_text())["config"]["storage"]
        gpus = start_ray(args)
    except HarnessError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    from bench.sweep import SweepPlan, run_sweep  # imports Ray: only once the input is known to be good
    if not args.resume:
        atomic_write_json(run_dir / "manifest.json", manifest_for(args, config, grid, storage, gpus, weights_hash))
    # Real statistics and fd_domain classifiers are shared through the storage; object storage cannot
    # hold the cache's file locks, so there each node keeps its own cache (one computation per node).
    fid_cache = storage + "/fid-cache" if "://" not in storage else str(Path.home() / ".cache" / "svae-bench")
    evaluation = Evaluation(fid_weights=args.fid_weights, fid_cache=fid_cache,
                            data_root=str(Path(args.data_root).resolve()), download=args.download,
                            reference_split=args.reference_split)
    from bench.search import run_searches  # tunes the searched baselines; a resumed sweep reuses its result
    config["settings"] = run_searches(run_dir, config["settings"], config["models"], evaluation, storage,
                                      {"cpu": args.cpus_per_trial, "gpu": gpus},
                                      enabled=next(iter(config["settings"].values())).search)
    plan = SweepPlan(run_dir=run_dir, storage=storage, grid=grid, settings=config["settings"],
                     evaluation=evaluation,
                     cpus_per_trial=args.cpus_per_trial, gpus_per_trial=gpus, max_concurrent=args.max_concurrent,
                     resume=args.resume, fault=os.environ.get(FAULT_ENV), tracker=args.tracker,
                     estimates=cost.trial_seconds(), concurrency=cost.concurrency)
    run_sweep(plan)
    return finish(run_dir, grid)


def print_plan(args, config: dict, grid: list):
    """The plan and its estimated cost, before anything runs; a plan of days on CPUs must be confirmed."""
    print("probing this machine's throughput for the plan...", flush=True)
    plan = make_plan(grid, args.preset, config["settings"], args.cpus_per_trial, args.gpus_per_trial,
                     args.max_concurrent, remote=bool(args.address))
    print("\n".join(plan.lines()), flush=True)
    if args.dry_run:
        from bench.projection import projection_lines
        print("\n".join(projection_lines(plan)), flush=True)
    if plan.days_on_cpus and not args.dry_run:
        confirm("This sweep would take days on CPUs only. Run it?", getattr(args, "yes", False))
    return plan


def finish(run_dir: Path, grid: list) -> int:
    import reports
    from bench.sweep import trial_status
    try:
        reports.render(run_dir)
        print(f"reports: {run_dir / 'report.md'}")
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
    print(f"to resume: python -m bench.run {' '.join(shlex.quote(a) for a in sys.argv[1:] if a != '--resume')} "
          f"--resume", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
