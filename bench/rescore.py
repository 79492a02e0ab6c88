"""python -m bench.rescore RUN_DIR: score a finished run again, with another extractor or more metrics,
without retraining.

Each finished trial's model is rebuilt from its final checkpoints (trials/<id>/checkpoint-final-*.pt);
its samples are generated again with the trial's own seeds and code (bench/trial.py: generate and
score_outputs), so for an unchanged extractor the figures equal the stored ones (--verify checks it).
New figures are appended to the trial's rows.json and to results.csv; no stored row is changed. A
trial that already has every asked figure for this extractor and n is skipped, so an interrupted
re-score resumes where it stopped. Each of the run's networks scores the samplers the run scored it
on (bench/presets.py Settings.backbones_at); --fid-backbone X scores with X alone, on every sampler,
or with --compared-only on each model's own sampler (the claims' outputs, where the cpu preset
scores Inception). The reports are rendered again at the end. It runs in this process
(no Ray cluster: re-scoring costs one generation and one feature pass per trial, not training).
"""
if __name__ == "__main__":  # first, so that Ctrl-C while the imports below load is one line
    from svae.interrupt import quiet_until_main
    quiet_until_main()

import argparse
import csv
import io
import json
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

from bench.fs_faults import faults_as_errors
from bench.memorisation import EXTRACTOR_ID as MEMORISATION_EXTRACTOR_ID
from bench.memorisation import METRIC as MEMORISATION_METRIC
from bench.models import MODELS
from bench.presets import model_settings
from bench.rundir import check_same_data, close_session, grid_trial, note_progress, open_session
from bench.search import with_choices
from bench.settings_check import check_settings, checked_sweep_settings
from bench.trial import (Evaluation, TrialSpec, generate, load_data, make_scorer, memorisation_rows, restore_model,
                         score_sampler, settings_json)
from reports.rundir import is_published
from reports.validate import trial_rows
from svae.command import HelpFormatter, run_command
from svae.data import load_images, provenance
from svae.errors import HarnessError
from svae.interrupt import interrupts_raise
from svae.io import atomic_write_json, writable_folder
from svae.lock import check_not_in_use, run_lock
from svae.samplers import is_orientation, orient_components, samplers_for

# what regenerates the samples: must match the run's recorded settings for the figures to be the run's
SAMPLING_SETTINGS = ("model", "epochs", "batch_size", "lr", "amp", "train_subset", "gmm")
AGAIN = "the figures of trials already re-scored are kept"  # every trial's rows are written whole, atomically
VERIFY_TOLERANCE = 1e-6  # relative: thread counts may reorder float sums, nothing more


def parse_args(argv):
    from bench.metrics import DEFAULT_METRICS, METRICS
    p = argparse.ArgumentParser(prog="python -m bench.rescore", description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by python -m bench.run")
    p.add_argument("--fid-backbone", choices=["inception", "domain"], default=None,
                   help="inception: real FID features; domain: the fd_domain classifier; only this network "
                        "(default: the run's networks)")
    p.add_argument("--compared-only", action="store_true",
                   help="score only each model's own sampler, the outputs the claims compare (as the cpu "
                        "preset scores Inception): 35 sets of a five-seed study instead of about 110")
    p.add_argument("--fid-weights", default=None,
                   help="path to pt_inception-2015-12-05-6726825d.pth (default: the run's, else the torch hub cache)")
    p.add_argument("--metrics", nargs="+", default=list(DEFAULT_METRICS), help=f"from: {', '.join(METRICS)}")
    p.add_argument("--fid-samples", type=int, default=None,
                   help="generated images per figure, and reference images (default: the run's)")
    p.add_argument("--fid-cache", default=None,
                   help="folder of cached references and classifiers (default: the sweep's, <storage>/fid-cache)")
    p.add_argument("--data-root", default=None, help="folder holding the datasets (default: the run's)")
    p.add_argument("--fid-threads", type=int, default=None,
                   help="threads of FID's Inception on CPUs (ONNX Runtime), e.g. every core of a machine that "
                        "re-scores alone; the samples are generated on the sweep's threads either way (default: "
                        "the sweep's --cpus-per-trial)")
    p.add_argument("--verify", action="store_true",
                   help="also re-score trials that have the figures, and fail (exit 1) unless they are reproduced")
    return p.parse_args(argv)


def read_json(path: Path, what: str):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise HarnessError(f"cannot read {path} ({type(e).__name__}); {what}") from None


def read_manifest(run_dir: Path, what: str) -> tuple:
    """(manifest, its config) of a run directory, checked to hold a config and a grid; what: the folder
    to pass, in words, for the error."""
    if not (run_dir / "manifest.json").is_file():
        raise HarnessError(f"{run_dir} is not a run directory (no manifest.json); pass {what}")
    manifest = read_json(run_dir / "manifest.json", "restore it from a copy of the run")
    config = manifest.get("config") if isinstance(manifest, dict) else None
    if not isinstance(config, dict) or not isinstance(manifest.get("grid"), list):
        raise HarnessError(f"{run_dir / 'manifest.json'} has no config or grid; restore it from a copy of the run")
    return manifest, config


def checked_splits(manifest: dict, dataset: str, evaluation) -> dict:
    """split -> the dataset's images (train and the reference split) as evaluation finds them, checked to be
    the files the run recorded (manifest.json data)."""
    splits = {split: load_images(dataset, split, evaluation.data_root, False, evaluation.system_copy)
              for split in ("train", evaluation.reference_split)}
    check_same_data(manifest.get("data", {}),
                    {dataset: {split: provenance(data, evaluation.data_root) for split, data in splits.items()}},
                    fix="pass --data-root with the files the run was trained on (manifest.json data)")
    return splits


def recorded_settings(manifest: dict) -> dict:
    """dataset -> the sweep's Settings, as this code derives them from the run's config and search
    choices; a HarnessError where they differ from what the run recorded for sampling (other code)."""
    config, settings = manifest["config"], {}
    for dataset in config.get("datasets", []):
        chosen = [r for r in manifest.get("search", {}).get("results", []) if r["dataset"] == dataset]
        s = with_choices(checked_sweep_settings(config, dataset, "the run's manifest.json"), chosen)
        recorded = config.get("settings", {}).get(dataset, {})
        changed = [k for k in SAMPLING_SETTINGS if k in recorded and recorded[k] != settings_json(s)[k]]
        if changed:
            commit = manifest.get("git_commit") or "its manifest's git_commit"
            raise HarnessError(f"the run's {dataset} settings ({', '.join(changed)}) differ from what this code "
                               f"derives from its config; use the code that made the run (git checkout {commit})")
        settings[dataset] = s
    return settings


def _stages(metrics: Path) -> list:
    """The stages a trial trained, from its metrics.csv (a trial without one trained one stage, main)."""
    if not metrics.is_file():
        return ["main"]
    try:
        stages = {row.get("stage") for row in csv.DictReader(io.StringIO(metrics.read_text()))}
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise HarnessError(f"cannot read {metrics} ({type(e).__name__}); restore it from a copy of the run") from None
    if not stages or None in stages:
        raise HarnessError(f"{metrics} has no stage column; restore it from a copy of the run")
    return sorted(stages)


def _recorded_orientation(folder: Path) -> tuple:
    """(True, what the trial recorded in orientation.json) or (False, None) where it recorded nothing."""
    file = folder / "orientation.json"
    if not file.exists():
        return False, None
    orientation = read_json(file, "restore it from a copy of the run, or delete it to orient the model again")
    if not is_orientation(orientation):
        raise HarnessError(f"{file} is not an orientation ({{\"swapped\": true|false, ...}} or null); restore it "
                           f"from a copy of the run, or delete it to orient the model again")
    return True, orientation


def plan(args) -> dict:
    """Everything checked before anything is written: run, settings, checkpoints, data, weights."""
    from bench.metrics import check_metrics
    if args.fid_threads is not None and args.fid_threads < 1:
        raise HarnessError(f"--fid-threads must be at least 1 (got {args.fid_threads})")
    run_dir = Path(args.run_dir)
    manifest, config = read_manifest(run_dir, "the folder that python -m bench.run wrote")
    check_not_in_use(run_dir)  # a sweep still running has no finished trial yet: say that it runs
    metrics = check_metrics(args.metrics)
    if args.fid_samples is not None and args.fid_samples < 2:
        raise HarnessError(f"--fid-samples must be at least 2 (got {args.fid_samples})")
    settings = {dataset: check_settings(replace(s, fid_samples=args.fid_samples or s.fid_samples,
                                                fid_backbone=args.fid_backbone or s.fid_backbone,
                                                beside_backbones=() if args.fid_backbone else s.beside_backbones,
                                                metrics=tuple(metrics)), dataset)
                for dataset, s in recorded_settings(manifest).items()}
    trials = []
    for entry in manifest["grid"]:
        spec = grid_trial(entry)
        folder = run_dir / "trials" / spec.trial_id
        status = folder / "status.json"
        if not status.is_file() or read_json(status, "re-run that trial").get("status") != "finished":
            continue
        stages = _stages(folder / "metrics.csv")
        missing = [f"checkpoint-final-{stage}.pt" for stage in stages
                   if not (folder / f"checkpoint-final-{stage}.pt").is_file()]
        if missing and is_published(manifest):
            raise HarnessError(f"{run_dir} is a published run (python -m reports.publish copies no weights): "
                               "re-score the run directory it was published from, or train again with the "
                               "command in its report.md (How to reproduce)")
        if missing:
            # --resume alone restores nothing here: the trial is finished; without its folder it trains again
            raise HarnessError(f"missing checkpoint: {folder} has no {', '.join(missing)}; restore the file, or "
                               f"delete {folder} and resume the sweep (manifest.json config.command with --resume) "
                               f"to train that trial again")
        trial_rows(folder)  # the records this re-score reads and extends: checked before anything is written
        _recorded_orientation(folder)
        trials.append((spec, folder))
    if not trials:
        raise HarnessError(f"{run_dir} has no finished trial to re-score")
    storage = config.get("storage") or str(run_dir / "ray")
    fid_cache = args.fid_cache or (storage + "/fid-cache" if "://" not in storage
                                   else str(Path.home() / ".cache" / "svae-bench"))
    writable_folder(run_dir, "run directory", "re-score a copy that you can write to, or fix its permissions")
    writable_folder(fid_cache, "--fid-cache folder", "pass a --fid-cache folder that you can write to")
    evaluation = Evaluation(
        fid_weights=args.fid_weights or config.get("fid_weights"),
        fid_cache=fid_cache,
        data_root=args.data_root or config.get("data_root"), reference_split=config.get("reference_split", "test"),
        # the sources the sweep read: Debian's Fashion-MNIST too where it was given no --data-root
        system_copy=args.data_root is None and config.get("data_root") is None, fid_threads=args.fid_threads)
    backbones = {b for s in settings.values() for b in s.backbones()}
    scorers = {b: make_scorer(b, evaluation) for b in backbones}  # missing weights: fail now
    for dataset, s in settings.items():
        test = checked_splits(manifest, dataset, evaluation)[evaluation.reference_split].images
        if s.fid_samples > len(test):
            raise HarnessError(f"--fid-samples {s.fid_samples} is larger than {dataset}'s "
                               f"{evaluation.reference_split} split ({len(test)} images); "
                               f"pass --fid-samples {len(test)} or less")
    return {"run_dir": run_dir, "config": config, "settings": settings, "trials": trials,
            "evaluation": evaluation, "scorers": scorers}


def figure_key(row: dict) -> tuple:
    return (row["sampler"], row["output"], row["metric"], row["extractor_id"], int(row["n_samples"]),
            row.get("settings") or "")


def rescore_trial(spec: TrialSpec, folder: Path, settings, evaluation, scorers: dict, compared_only=False) -> list:
    """The rows of a trial scored again: its model from the final checkpoints, its samples regenerated
    with x1 and x2 named as the trial named them (orientation.json); compared_only: the model's own
    sampler's only. scorers: backbone -> Scorer."""
    train, test = load_data(spec, settings, evaluation)
    model = restore_model(spec, settings, folder)
    recorded, orientation = _recorded_orientation(folder)
    if not recorded:
        orientation = orient_components(model, train, spec.seed)
    rows = []
    for sampler, outputs in generate(spec, settings, model, train, test, orientation):
        if sampler in scored_samplers(spec, compared_only):
            rows += score_sampler(scorers, spec, sampler, outputs, settings, evaluation.reference_split)
            rows += memorisation_rows(sampler, outputs["x_hat"], train, test, evaluation.reference_split)
    return rows


def scored_samplers(spec: TrialSpec, compared_only: bool) -> list:
    return [MODELS[spec.model].compared_at] if compared_only else samplers_for(spec.model)


def scored_sets(spec: TrialSpec, compared_only: bool) -> int:
    """The sample sets a re-score of the trial featurises: its scored samplers times its outputs."""
    return len(scored_samplers(spec, compared_only)) * len(MODELS[spec.model].outputs)


def _has_memorisation(old_rows: list, samplers: list, evaluation: Evaluation) -> bool:
    """Whether a trial's rows hold the current memorisation figure (bench/memorisation.py) of every sampler
    (none is made against the training split)."""
    if evaluation.reference_split == "train":
        return True
    have = {r["sampler"] for r in old_rows
            if r.get("metric") == MEMORISATION_METRIC and r.get("extractor_id") == MEMORISATION_EXTRACTOR_ID}
    return set(samplers) <= have


def merge(old_rows: list, new_rows: list) -> tuple:
    """(rows to append, [(key, stored, new)] for figures that were already stored)."""
    stored = {figure_key(r): r["value"] for r in old_rows}
    summary = {k: v for k, v in old_rows[0].items() if k not in new_rows[0]} if old_rows else {}
    append, compared = [], []
    for row in new_rows:
        key = figure_key(row)
        if key in stored:
            compared.append((key, stored[key], row["value"]))
        else:
            append.append({**summary, **row})
    return append, compared


def _has_figures(old_rows: list, scorer, dataset: str, settings) -> bool:
    """Whether a trial's rows hold every asked metric of this scorer's extractor at the asked n."""
    from bench.metrics import METRICS
    extractor = scorer.extractor(dataset)
    have = {r["metric"] for r in old_rows
            if r.get("extractor_id") == extractor.id and int(r["n_samples"]) == settings.fid_samples}
    return {name for m in settings.metrics for name in METRICS[m].names(extractor.family)} <= have


def rescore(args) -> int:
    started = time.monotonic()  # as bench.run's sessions: from the command's start
    job = plan(args)
    where = f"writing to {job['run_dir']} or {job['evaluation'].fid_cache}"
    import torch
    threads = torch.get_num_threads()
    try:
        with run_lock(job["run_dir"], "python -m bench.rescore"), \
                faults_as_errors(lambda: where, f"run the same command again to finish ({AGAIN})"):
            path = job["run_dir"] / "manifest.json"
            atomic_write_json(path, open_session(json.loads(path.read_text()), "rescores",
                                                 backbone=args.fid_backbone, metrics=list(args.metrics),
                                                 compared_only=args.compared_only))
            from bench.sweep import Progress
            # the ETA's plan: each trial's share of the work is the sample sets it scores
            progress = Progress(job["run_dir"], len(job["trials"]), 0, pending=[s.trial_id for s, _ in job["trials"]],
                                estimates={s.trial_id: scored_sets(s, args.compared_only) for s, _ in job["trials"]})
            try:
                added, mismatches = rescore_trials(args, job, progress)
            finally:  # an interrupted re-score's time counts too (manifest.json rescores, rescore_wall_s)
                close_session(job["run_dir"], time.monotonic() - started, "rescores")
            import reports
            reports.render(job["run_dir"])  # after the session closed: the report shows its time
    finally:  # rescore_trials sets the sweep's threads: a caller in this process gets its own back
        torch.set_num_threads(threads)
    progress.line(f"done: {added} figures added to {job['run_dir'] / 'results.csv'}; reports rendered again")
    if mismatches:
        print(f"error: {mismatches} stored figures were not reproduced (tolerance {VERIFY_TOLERANCE:g}); "
              "see the MISMATCH lines", file=sys.stderr)
        return 1
    return 0


def rescore_trials(args, job: dict, progress) -> tuple:
    """(figures added, stored figures not reproduced) over the run's finished trials; progress: the
    driver's lines (bench/sweep.py Progress)."""
    import torch

    from bench.sweep import write_results
    run_dir, config = job["run_dir"], job["config"]
    torch.set_num_threads(max(1, int(config.get("cpus_per_trial", 1))))  # as the trials ran: same float sums
    trials = job["trials"]
    progress.line(f"re-scoring {len(trials)} finished trials of {run_dir}: metrics {' '.join(args.metrics)}")
    mismatches, added = 0, 0
    for spec, folder in trials:
        settings = model_settings(job["settings"][spec.dataset], spec.model)
        scorers = {b: job["scorers"][b] for b in settings.backbones()}
        ids = [scorer.extractor(spec.dataset).id for scorer in scorers.values()]
        old_rows = trial_rows(folder)
        if all(_has_figures(old_rows, scorer, spec.dataset, settings) for scorer in scorers.values()) \
                and _has_memorisation(old_rows, scored_samplers(spec, args.compared_only), job["evaluation"]) \
                and not args.verify:
            progress.skipped(spec.trial_id, f"it has these figures ({', '.join(ids)}, n={settings.fid_samples})")
            continue
        started = time.time()
        progress.trial_started(spec.trial_id)
        append, compared = merge(old_rows, rescore_trial(spec, folder, settings, job["evaluation"], scorers,
                                                         args.compared_only))
        worst = 0.0
        for key, stored, new in compared:
            difference = abs(new - stored) / max(abs(stored), 1e-12)
            worst = max(worst, difference)
            if not math.isclose(new, stored, rel_tol=VERIFY_TOLERANCE, abs_tol=1e-12):
                mismatches += 1
                progress.line(f"MISMATCH {spec.trial_id} {' '.join(map(str, key[:3]))}: stored {stored!r}, now {new!r}")
        if append:
            atomic_write_json(folder / "rows.json", old_rows + append)
            write_results(run_dir, [s for s, _ in trials])
        added += len(append)
        progress.line(f"{spec.trial_id}: {len(append)} new figures, {len(compared)} stored figures reproduced "
                      f"{'exactly' if worst == 0 else f'to {worst:.1e} (relative)'}")
        progress.finished(spec.trial_id, time.time() - started)
        note_progress(run_dir, "rescores")
    return added, mismatches


def main(argv=None) -> int:
    interrupts_raise()
    args = parse_args(argv)
    return run_command(lambda: rescore(args), f"interrupted; run the same command again to finish ({AGAIN})")


if __name__ == "__main__":
    sys.exit(main())
