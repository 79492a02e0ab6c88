"""python -m bench.run: train and score every (dataset, model, seed) on Ray Tune, then render the reports.

Everything that can be checked is checked before Ray starts: names, numbers, data files, the FID
weights, the run directory; then, once, the cluster's address and resources. Bad input is one line
on stderr and exit status 2; an incomplete sweep lists the missing trials, says how to resume, and
exits 1; Ctrl-C at any moment is one line (with the resume command once there is a sweep to
resume) and exit status 130.

The run directory (its storage and owner record, the lock, the manifest, the sessions) is written
by bench/rundir.py.
"""
if __name__ == "__main__":  # first, so that Ctrl-C while the imports below load is one line
    from svae.interrupt import quiet_until_main
    quiet_until_main()

import argparse
import math
import os
import shlex
import sys
import time
from pathlib import Path

from bench.cli import HelpFormatter, add_options
from bench.cluster import check_address, check_cluster_storage, start_ray, stop_ray
from bench.config_file import save_config, with_config_file
from bench.dryrun import dry_run
from bench.fs_faults import faults_as_errors
from bench.faults import FAULT_ENV, check_fault
from bench.models import MODELS
from bench.more_seeds import grown_manifest
from bench.overrides import parse_overrides, typed_overrides
from bench.cost.plan import confirm, make_plan
from bench.presets import PRESETS, Settings
from bench.resources import gpu_shares
from bench.rundir import (check_run_dir, check_same_data, check_writable, choose_storage,
                          close_session, manifest_for, note_progress, open_session, protocol_for,
                          set_aside_ray_state, storage_name, write_owner)
from bench.seams import Seams
from bench.settings_check import checked_sweep_settings
from bench.tracking import check_trackers, log_reports
from bench.trial import CHECKPOINT_EVERY_S, Evaluation, TrialSpec
from svae.data import DEBIAN_FASHION_MNIST, SPECS, default_data_root, load_images, provenance
from svae.command import run_command
from svae.errors import HarnessError, choose
from svae.lock import check_not_in_use, run_lock
from svae.interrupt import interrupts_raise
from svae.io import atomic_write_json

GRID_CONFIRM = 1000  # a grid of more trials is likely a typo (--seeds 500): ask before starting it
GRID_LIMIT = 100_000  # a grid of more trials is refused


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--datasets", nargs="*", default=["mnist", "cifar10", "celeba"],
                   help=f"datasets, from: {', '.join(SPECS)}")
    p.add_argument("--seeds", type=int, default=5, help="seeds per cell: 0..N-1 (with --resume, a larger N adds seeds)")
    p.add_argument("--models", nargs="*", default=list(MODELS), help=f"models, from: {', '.join(MODELS)}")
    p.add_argument("--preset", default="paper", help=f"preset, from: {', '.join(PRESETS)}")
    p.add_argument("--out", default=None, help="run directory (default: runs/<preset>-<datasets>)")
    p.add_argument("--address", default=os.environ.get("RAY_ADDRESS"),
                   help="address of an existing Ray cluster (RAY_ADDRESS is honoured); none: a local cluster")
    p.add_argument("--storage", default=None,
                   help="shared storage for trial checkpoints: a path mounted on every node, or s3://... "
                        "(default: <out>/ray, for a local cluster only; on --resume: the sweep's own)")
    p.add_argument("--cpus-per-trial", type=float, default=1, help="CPUs per trial (also its torch threads)")
    p.add_argument("--gpus-per-trial", nargs="+", default=None, metavar="[DATASET=]GPUS",
                   help="GPUs per trial, fractions allowed; per dataset as mnist=0.25 celeba=1, a plain number "
                        "for the datasets not named (default: 1 if the cluster has GPUs, else 0)")
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
    p.add_argument("--reports", action=argparse.BooleanOptionalAction, default=True,
                   help="render the tables, claims, figures and report.md when the sweep ends (default); "
                        "--no-reports leaves them to python -m reports RUN_DIR, e.g. for a sweep whose results "
                        "are read by a script, or a large grid rendered once elsewhere")
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
    args.gpus_per_trial = gpu_shares(args.gpus_per_trial, list(dict.fromkeys(args.datasets)))
    if args.max_concurrent is not None and args.max_concurrent < 1:
        raise HarnessError(f"--max-concurrent must be at least 1 (got {args.max_concurrent})")
    if not args.checkpoint_every >= 0:
        raise HarnessError(f"--checkpoint-every must be 0 or more seconds (got {args.checkpoint_every:g})")
    check_fault(args.checkpoint_every)
    if args.fid_samples is not None and args.fid_samples < 2:
        raise HarnessError(f"--fid-samples must be at least 2 (got {args.fid_samples})")
    check_cluster_storage(args.address, args.storage)
    check_trackers(args.tracker)
    overrides = typed_overrides(parse_overrides(args.overrides), Settings)
    datasets = list(dict.fromkeys(args.datasets))
    models = list(dict.fromkeys(args.models))
    config = {"datasets": datasets, "models": models, "seeds": args.seeds, "preset": args.preset,
              "fid_samples": args.fid_samples, "fid_backbone": args.fid_backbone, "gmm_fit_on": args.gmm_fit_on,
              "search": args.search, "overrides": overrides, "reference_split": args.reference_split,
              "amp": args.amp}
    return {**config, "settings": {d: checked_sweep_settings(config, d) for d in datasets}}


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


def confirm_grid(n: int, yes: bool) -> None:
    """A grid over GRID_CONFIRM trials starts only when the user says so: --yes, or y at the prompt."""
    if n > GRID_LIMIT:  # even with --yes: listing it would fill the memory before anything is printed
        raise HarnessError(f"the grid has {n:,} trials (datasets x models x seeds), more than {GRID_LIMIT:,}; "
                           f"check --seeds, --datasets and --models")
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


def main(argv=None, seams: Seams | None = None) -> int:
    """The command; `seams`: what the cost tools (bench/cost/) put in place of its parts (bench/seams.py)."""
    interrupts_raise()
    args = parse_args(argv)
    try:
        return run_command(lambda: run_or_fault(args, seams or Seams()), lambda: interrupted_line(args))
    finally:
        stop_ray()


def run_or_fault(args, seams: Seams) -> int:
    """run(args, seams); a full disk or read-only storage is one line with the cause (else the traceback)."""
    with faults_as_errors(lambda: f"writing to {args.out}" + (f" or --storage {args.storage}" if args.storage else ""),
                          f"resume with: {resume_command()}"):
        return run(args, seams)


def interrupted_line(args) -> str:
    run_dir = Path(args.out).resolve() if args.out else None
    resumable = run_dir is not None and (run_dir / "manifest.json").exists()
    return "interrupted" + (f"; to resume: {resume_command()}" if resumable else "; nothing was started")


def run(args, seams: Seams) -> int:
    started = time.monotonic()  # the session's wall time counts from here: data checks and probe included
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
    check_not_in_use(run_dir)  # a running sweep is named as such, before its records are judged
    check_run_dir(run_dir, config, args.resume)
    grid = [TrialSpec(d, m, seed) for d in config["datasets"] for m in config["models"]
            for seed in range(args.seeds)]
    if args.dry_run:
        return dry_run(args, config, grid)
    data, weights_hash = (seams.check_data or check_data)(args, config["settings"]), None
    if any("inception" in s.backbones() for s in config["settings"].values()):
        from bench.metrics import Scorer
        # missing weights: fail now, not after hours of training
        weights_hash = Scorer(backbone="inception", weights_path=args.fid_weights).extractor().weights_hash
    cost = (seams.cost or print_plan)(args, config, grid)
    check_writable(run_dir)  # created only once everything else is known to be good
    with run_lock(run_dir, "python -m bench.run"):
        old = check_run_dir(run_dir, config, args.resume)  # again: another process may have written it meanwhile
        if old is not None:
            check_same_data(old.get("data", {}), data)
        storage, ray_state_elsewhere = choose_storage(args.storage, run_dir, old)
        if ray_state_elsewhere:  # before the owner record names this run directory: never skipped
            set_aside_ray_state(storage)
        with seams.clock.span("ray_start"):
            gpus = start_ray(args)
        from bench.sweep import SweepPlan, run_sweep  # imports Ray: only once the input is known to be good
        if old is None:
            manifest = manifest_for(args, config, grid, storage_name(run_dir, storage), gpus, weights_hash, data)
        else:
            manifest = {**grown_manifest(old, config, grid, storage_name(run_dir, storage)),  # --seeds may add seeds
                        "protocol": protocol_for(args, config["settings"], weights_hash)}  # a scoring fix changes it
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
        from bench.search import run_searches, tune_scores  # a resumed sweep reuses a finished search's result
        try:
            # one resource request for every search (bench/search.py): the largest share never overfills a GPU
            with seams.clock.span("search"):
                config["settings"] = run_searches(run_dir, config["settings"], config["models"], evaluation, storage,
                                                  {"cpu": args.cpus_per_trial, "gpu": max(gpus.values())},
                                                  enabled=next(iter(config["settings"].values())).search,
                                                  scores_of=seams.scores_of or tune_scores)
            note_progress(run_dir)
            plan = SweepPlan(run_dir=run_dir, storage=storage, grid=grid, settings=config["settings"],
                             evaluation=evaluation, cpus_per_trial=args.cpus_per_trial, gpus_per_trial=gpus,
                             max_concurrent=args.max_concurrent, resume=args.resume,
                             fault=os.environ.get(FAULT_ENV), trackers=tuple(args.tracker),
                             estimates=cost.trial_seconds(), concurrency=cost.concurrency,
                             checkpoint_every=args.checkpoint_every, seams=seams)
            with seams.clock.span("sweep"):
                run_sweep(plan)
        finally:  # an interrupted session's time counts too
            close_session(run_dir, time.monotonic() - started)
        return finish(run_dir, grid, args.tracker, args.reports)


def render_reports(run_dir: Path, trackers: list) -> None:
    import reports
    try:
        reports.render(run_dir)
        print(f"reports: {run_dir / 'report.md'}")
        log_reports(run_dir, trackers)
    except Exception as e:  # the results are safe on disk: say so and go on to the summary
        print(f"error: the reports could not be rendered ({type(e).__name__}: {e}); the results are in "
              f"{run_dir / 'results.csv'}; re-render with: python -m reports {run_dir}", file=sys.stderr)


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


def finish(run_dir: Path, grid: list, trackers: list = ("none",), render: bool = True) -> int:
    from bench.sweep import trial_status
    if render:
        render_reports(run_dir, trackers)
    else:
        print(f"reports: not rendered (--no-reports); render them with: python -m reports {run_dir}", flush=True)
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
