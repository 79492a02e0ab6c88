"""python -m bench.reproduce RUN_DIR TRIAL_ID: train one finished trial of a run again from its seed and
compare every figure the run stored for it with the new one: a study's determinism check.

The trial is trained and scored in this process (no Ray) by the sweep's own trial function
(bench/trial.py run_trial), with the run's settings, search choices and torch threads
(--cpus-per-trial), on the data files the run recorded, each network with the metrics it stored
figures of (no other: FID at infinity on Inception alone is minutes a sample set). Networks whose figures
were added later by bench.rescore (e.g. Inception FID on a cpu study) score the retrained model as
bench.rescore did (rescore_trial): at the model's own sampler only where that is all the run stored
for them (--compared-only). A published run (results/<name>, no weights) can be checked too:
nothing is read but its records and the datasets, and nothing in RUN_DIR is written. The new trial's
folder is --work (default: a temporary folder, removed afterwards).

It prints every figure's stored and new value, and the largest relative difference; exit status 1 if
that is above --tolerance.
"""
if __name__ == "__main__":  # first, so that Ctrl-C while the imports below load is one line
    from svae.interrupt import quiet_until_main
    quiet_until_main()

import argparse
import math
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from bench.metrics import METRICS
from bench.models import MODELS
from bench.presets import model_settings
from bench.rescore import checked_splits, figure_key, read_json, read_manifest, recorded_settings, rescore_trial
from bench.rundir import grid_trial
from bench.trial import Evaluation, final_checkpoint_name, make_scorer, run_trial
from reports.validate import trial_rows
from svae.command import HelpFormatter, run_command
from svae.errors import HarnessError
from svae.interrupt import interrupts_raise
from svae.io import writable_folder

FAMILY_BACKBONE = {"inception": "inception", "domain": "domain"}  # extractor name's first word -> backbone
TRAINED = ("final_loss", "final_recon_mse", "final_kl", "final_gamma", "active_units")  # each row's training summary
DEFAULT_TOLERANCE = 1e-6  # relative: as bench.rescore --verify; the same code and threads give the same sums


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m bench.reproduce", description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory, or a published results/<name> folder")
    p.add_argument("trial_id", metavar="TRIAL_ID", help="a finished trial of its grid, e.g. mnist-svae-s0")
    p.add_argument("--work", default=None, help="folder for the retrained trial, kept (default: a temporary "
                                                "folder, removed)")
    p.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                   help="largest relative difference of any figure that counts as reproduced")
    p.add_argument("--data-root", default=None, help="folder holding the datasets (default: the run's)")
    p.add_argument("--fid-weights", default=None, help="path to the FID weights (default: the run's, else the "
                                                       "torch hub cache)")
    p.add_argument("--fid-cache", default=None, help="folder of cached references and classifiers (default: "
                                                     "~/.cache/svae-bench/fid-cache)")
    return p.parse_args(argv)


def plan(args) -> dict:
    """The trial, its settings and its stored figures, checked before anything trains."""
    if not math.isfinite(args.tolerance) or args.tolerance < 0:
        raise HarnessError(f"--tolerance must be a number at least 0 (got {args.tolerance})")
    run_dir = Path(args.run_dir)
    manifest, config = read_manifest(run_dir, "the folder that python -m bench.run wrote, or a published "
                                              "results/<name> folder")
    specs = {spec.trial_id: spec for spec in map(grid_trial, manifest["grid"])}
    if args.trial_id not in specs:
        raise HarnessError(f"{args.trial_id!r} is not a trial of {run_dir}; choose one of {', '.join(specs)}")
    spec, folder = specs[args.trial_id], run_dir / "trials" / args.trial_id
    if (read_json(folder / "status.json", "pass a finished trial") or {}).get("status") != "finished":
        raise HarnessError(f"trial {spec.trial_id} of {run_dir} is not finished; pass a finished trial")
    stored = trial_rows(folder)
    settings = model_settings(recorded_settings(manifest)[spec.dataset], spec.model)
    own = tuple(dict.fromkeys(m for backbone in settings.backbones() for m in stored_metrics(stored, backbone)))
    settings = replace(settings, metrics=own or settings.metrics)
    compared_only = {}  # backbone -> were all its stored figures at the model's own sampler (--compared-only)
    for row in stored:
        backbone = backbone_of(row)
        if backbone is not None and backbone not in settings.backbones():
            own_sampler = row["sampler"] == MODELS[spec.model].compared_at
            compared_only[backbone] = compared_only.get(backbone, True) and own_sampler
    later = {backbone: (only, stored_metrics(stored, backbone)) for backbone, only in compared_only.items()}
    fid_cache = args.fid_cache or str(Path.home() / ".cache" / "svae-bench" / "fid-cache")
    writable_folder(fid_cache, "--fid-cache folder", "pass a --fid-cache folder that you can write to")
    evaluation = Evaluation(fid_weights=args.fid_weights or config.get("fid_weights"), fid_cache=fid_cache,
                            data_root=args.data_root or config.get("data_root"),
                            reference_split=config.get("reference_split", "test"),
                            system_copy=args.data_root is None and config.get("data_root") is None)
    checked_splits(manifest, spec.dataset, evaluation)
    return {"spec": spec, "settings": settings, "evaluation": evaluation, "stored": stored, "later": later,
            "threads": max(1, int(config.get("cpus_per_trial", 1)))}


def backbone_of(row: dict) -> str | None:
    """The backbone whose network made a result row's figure; None for one made without (pixels)."""
    return FAMILY_BACKBONE.get(row["extractor"].split("-")[0])


def stored_metrics(rows: list, backbone: str) -> tuple:
    """The --metrics names (bench/metrics METRICS) whose figures rows hold on this backbone's network."""
    names = {r["metric"] for r in rows if backbone_of(r) == backbone}
    return tuple(name for name, metric in METRICS.items() if names & set(metric.names(backbone)))


def compare(stored: list, new: list) -> list:
    """[(key, stored value, new value, relative difference)] of every figure stored and the training's
    final figures (TRAINED), largest difference first; one the retrained trial did not make has new value
    None and difference inf."""
    made = {figure_key(r): r["value"] for r in new}
    values = [(figure_key(row), row["value"], made.get(figure_key(row))) for row in stored]
    values += [(("trained", "-", name, "-", 0, ""), stored[0][name], new[0].get(name) if new else None)
               for name in TRAINED if stored and stored[0].get(name) is not None]
    pairs = [(key, value, again, 0.0 if again == value else math.inf if again is None
              else abs(again - value) / max(abs(value), 1e-12)) for key, value, again in values]
    return sorted(pairs, key=lambda p: -p[3])


def reproduce(args) -> int:
    import torch

    job = plan(args)
    threads = torch.get_num_threads()
    torch.set_num_threads(job["threads"])  # as the sweep's trial: the same float sums
    try:
        return retrain_and_compare(job, args)
    finally:  # a caller in this process gets its own threads back
        torch.set_num_threads(threads)


def retrain_and_compare(job: dict, args) -> int:
    spec = job["spec"]
    with tempfile.TemporaryDirectory(prefix="svae-reproduce-") as tmp:
        folder = Path(args.work) / spec.trial_id if args.work else Path(tmp) / spec.trial_id
        if folder.exists() and any(folder.iterdir()):
            raise HarnessError(f"{folder} is not empty: a retrained trial there would be resumed, not retrained; "
                               "pass an empty --work folder")
        print(f"training {spec.trial_id} again from seed {spec.seed} in {folder} ...", flush=True)
        new = run_trial(spec, job["settings"], job["evaluation"], folder, lambda metrics, where: None)
        for path in folder.glob("checkpoint-*.pt"):  # named as the sweep collects them, where restore_model looks
            path.rename(path.with_name(final_checkpoint_name(path.name)))
        for backbone, (compared_only, metrics) in job["later"].items():  # as bench.rescore --fid-backbone added them
            print(f"scoring it with {backbone}, as bench.rescore did ...", flush=True)
            settings = replace(job["settings"], fid_backbone=backbone, beside_backbones=(), metrics=metrics)
            new += rescore_trial(spec, folder, settings, job["evaluation"],
                                 {backbone: make_scorer(backbone, job["evaluation"])}, compared_only)
    pairs = compare(job["stored"], new)
    for (sampler, output, metric, extractor, n, _), value, again, difference in pairs:
        shown = "not made" if again is None else f"{again!r}"
        print(f"  {sampler:>12} {output:>5} {metric:<12} {extractor.split(':')[0]:<20} n={n:<6} stored {value!r}, "
              f"again {shown}, relative difference {difference:.1e}")
    worst = pairs[0][3] if pairs else 0.0
    print(f"{spec.trial_id}: {len(pairs)} stored figures; the largest relative difference {worst:.1e} "
          f"(tolerance {args.tolerance:g})")
    if worst > args.tolerance:
        print(f"error: {spec.trial_id} was not reproduced within {args.tolerance:g}; see the lines above",
              file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    interrupts_raise()
    args = parse_args(argv)
    return run_command(lambda: reproduce(args), "interrupted; nothing in the run directory was written")


if __name__ == "__main__":
    sys.exit(main())
