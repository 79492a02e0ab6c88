"""Runs the grid of trials on Ray Tune and gathers their folders into the run directory.

Each trial reports its metrics after every epoch and a checkpoint (its whole working folder) at most
every `checkpoint_every` seconds, at the last epoch of each stage and at its end; Ray persists the
checkpoint to the sweep's storage and hands it back when it retries the trial. Not every epoch: a
paper network's checkpoint (weights and Adam's moments) is 150-400 MB, an epoch on a GPU takes
seconds, and with num_to_keep=1 Ray also snapshots the whole sweep's state after every checkpoint,
which grew with the square of the trials (docs/scaling.md). When a trial
finishes, its folder is copied to RUN_DIR/trials/<id>/ and results.csv is rewritten, so a driver
that dies loses nothing that had finished.

A resumed sweep never restores Ray's saved state (tuner.pkl, the experiment and searcher states):
those files hold pickles, which run code when read, and a run directory is something users copy,
share and download; a torn one (a full disk) would also stop every resume. It starts a new Ray
experiment of the unfinished trials instead, each from its newest checkpoint folder in the storage,
found by name (`last_checkpoints`): plain files, whose weights are read with weights_only.
"""
import functools
import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from ray import tune

from bench.cost.plan import duration
from bench.fs_faults import filesystem_error
from bench.presets import model_settings
from bench.resources import trial_resources
from bench.rundir import note_progress
from bench.seams import Seams
from bench.sweep_storage import (fault_of, fault_result, is_marked_finished, last_checkpoints,
                                 mark_finished, session_experiment, torn_checkpoint_removed, trial_storage)
from bench.tracking import tracker_callbacks
from bench.trial import CHECKPOINT_EVERY_S, Evaluation, TrialSpec, final_checkpoint_name, run_trial
from svae.contract import RESULT_COLUMNS
from svae.io import atomic_write_bytes, atomic_write_json, atomic_write_text, read_status

MAX_RETRIES = 2


@dataclass
class SweepPlan:
    run_dir: Path
    storage: str  # a path mounted on every node, or s3://...
    grid: list  # TrialSpec
    settings: dict  # dataset -> Settings
    evaluation: Evaluation
    cpus_per_trial: float
    gpus_per_trial: dict  # dataset -> GPUs per trial (bench/resources.py)
    max_concurrent: int | None
    resume: bool
    fault: str | None = None
    trackers: tuple = ("none",)  # and/or "mlflow", "wandb" (bench.tracking)
    estimates: dict | None = None  # trial_id -> the plan's estimated seconds, for the ETA
    concurrency: int = 1  # trials at once, as the plan expects
    checkpoint_every: float = CHECKPOINT_EVERY_S  # seconds between a training trial's checkpoints
    seams: Seams = field(default_factory=Seams)  # the trainable, the trial and the clock (bench/seams.py)


def trainable(config: dict, settings: dict, storage: str, evaluation: Evaluation, fault: str | None,
              checkpoint_every: float, resume_from: dict, trial=run_trial, tune_report=tune.report) -> None:
    """The Ray Tune function trainable: one trial, resumed from Ray's checkpoint of this session when
    there is one (a retry), else from `resume_from` (trial id -> an earlier session's checkpoint folder).
    `trial` runs it (bench.trial.run_trial, or the simulation's stand-in); `tune_report` sends its
    reports to Ray (the benchmarks pass a timed one).

    config names the trial; everything else comes through tune.with_parameters, given anew by the
    driver on every start: where things are (storage, data, caches), so a copied or moved run
    directory's trials never reach back into the original's folders, and the settings per dataset
    (the driver has checked that they equal the manifest's), which Ray then never has to serialise
    into its experiment state."""
    import torch

    torch.set_num_threads(max(1, int(config["cpus_per_trial"])))
    spec = TrialSpec(**config["trial"])
    if is_marked_finished(storage, spec.trial_id):
        # Finished and collected before the driver died, after Ray's last snapshot of the sweep.
        tune_report({"done": True, "already_collected": True})
        return
    folder = Path(tempfile.mkdtemp(prefix=f"{spec.trial_id}-"))
    last_checkpoint = time.monotonic()
    checkpoints = trial_storage(storage, tune.get_context().get_experiment_name(), spec.trial_id)

    def report(metrics, path):
        nonlocal last_checkpoint
        if checkpoint_due(metrics, time.monotonic() - last_checkpoint, checkpoint_every):
            with torn_checkpoint_removed(checkpoints):
                tune_report(metrics, checkpoint=tune.Checkpoint.from_directory(str(path)))
            last_checkpoint = time.monotonic()
        else:
            tune_report(metrics)

    try:
        checkpoint = tune.get_checkpoint()
        if checkpoint is None and spec.trial_id in resume_from:
            checkpoint = tune.Checkpoint(resume_from[spec.trial_id])
        if checkpoint:
            checkpoint.to_directory(str(folder))
        trial(spec, model_settings(settings[spec.dataset], spec.model), evaluation, folder, report, fault=fault)
    except Exception as e:  # a full disk or failing storage is the sweep's fault, which no retry mends
        error = filesystem_error(e)
        if error is None:
            raise
        tune_report(fault_result(error, checkpoints))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def checkpoint_due(metrics: dict, seconds_since_last: float, every: float) -> bool:
    """Whether a trial's report carries its folder as a checkpoint: at its end, at each stage's last
    epoch, and otherwise once `every` seconds have passed since the last one."""
    stage_done = "epoch" in metrics and metrics["epoch"] == metrics.get("stage_epochs")
    return bool(metrics.get("done")) or stage_done or seconds_since_last >= every


def trial_folder(run_dir: Path, trial_id: str) -> Path:
    return run_dir / "trials" / trial_id


def collect_trial(run_dir: Path, trial_id: str, checkpoint) -> None:
    """Copy a finished trial's final checkpoint folder into the run directory, file by file, atomically."""
    target = trial_folder(run_dir, trial_id)
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint.to_directory(tmp)
        files = [p for p in Path(tmp).rglob("*") if p.is_file() and not p.name.startswith(".")]
        # status.json last: the run directory calls a trial finished only once all its files are there
        for path in sorted(files, key=lambda p: (p.name == "status.json", str(p))):
            relative = path.relative_to(tmp)
            if relative.name.startswith("checkpoint-"):
                relative = relative.with_name(final_checkpoint_name(relative.name))
            atomic_write_bytes(target / relative, path.read_bytes())


def collect(plan: SweepPlan, trial_id: str, checkpoint) -> None:
    collect_trial(plan.run_dir, trial_id, checkpoint)
    mark_finished(plan.storage, trial_id)
    note_progress(plan.run_dir)


def record_failure(run_dir: Path, spec: TrialSpec, error: str | None, status: str = "failed") -> None:
    atomic_write_json(trial_folder(run_dir, spec.trial_id) / "status.json",
                      {"status": status, "error": error, "dataset": spec.dataset, "model": spec.model,
                       "seed": spec.seed, "train_seconds": None, "eval_seconds": None})


def trial_status(run_dir: Path, trial_id: str) -> dict:
    return read_status(trial_folder(run_dir, trial_id)) or {"status": "missing"}


def write_plan_results(plan: SweepPlan, known: dict | None = None) -> pd.DataFrame:
    """write_results for the sweep's run directory and grid, timed by its clock."""
    with plan.seams.clock.span("write_results"):
        return write_results(plan.run_dir, plan.grid, known)


def write_results(run_dir: Path, grid: list, known: dict | None = None) -> pd.DataFrame:
    """results.csv from every finished trial's rows, in grid order. `known` (trial id -> rows) keeps
    the rows read so far: a driver that rewrites the file after every trial then reads each trial's
    files once, not once per rewrite (quadratic in the trials: 300 trials read 45,000 files)."""
    known = {} if known is None else known
    rows = []
    for spec in grid:
        if spec.trial_id not in known and trial_status(run_dir, spec.trial_id)["status"] == "finished":
            known[spec.trial_id] = json.loads((trial_folder(run_dir, spec.trial_id) / "rows.json").read_text())
        rows += known.get(spec.trial_id, [])
    table = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    atomic_write_text(run_dir / "results.csv", table.to_csv(index=False, lineterminator="\n"))
    return table


class Progress:
    """A line per trial start, finish or failure and every few epochs, and an overall line with an ETA;
    also written to logs/driver.log.

    The ETA is the work left divided by the trials that run at once: each unfinished trial's planned
    seconds, scaled by how long the finished trials took against their plan (or the mean finished
    trial without a plan), less what a running trial has already spent. It does not jump when the
    first of several concurrent trials finishes, as elapsed time / trials done would.
    """
    EPOCH_LINES = 5  # progress lines per training stage, besides its first and last epoch

    def __init__(self, run_dir: Path, total: int, already_done: int, pending=(), estimates=None,
                 concurrency: int = 1):
        self.log = run_dir / "logs" / "driver.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.total, self.done, self.started = total, already_done, time.time()
        self.trial_seconds = 0.0
        self.pending = set(pending)  # trial ids not finished or failed
        self.estimates, self.concurrency = estimates or {}, max(1, concurrency)
        self.running = {}  # trial_id -> when it (last) started
        self.measured = {}  # trial_id -> seconds, for the trials this driver saw finish
        self.rows = {}  # trial_id -> results rows read so far (write_results)

    def line(self, text: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        print(f"[{stamp}] {text}", flush=True)
        with open(self.log, "a") as f:
            f.write(f"[{stamp}] {text}\n")

    def trial_started(self, trial_id: str) -> None:
        self.running[trial_id] = time.time()
        self.line(f"started {trial_id}")

    def epoch(self, trial_id: str, result: dict) -> None:
        epoch, epochs = result["epoch"], result["stage_epochs"]
        if epoch in (1, epochs) or epoch % max(1, epochs // self.EPOCH_LINES) == 0:
            self.line(f"{trial_id} {result['stage']} epoch {epoch}/{epochs}: loss {result['loss']:.4g}, "
                      f"{result['images_per_s']:.0f} images/s")

    def skipped(self, trial_id: str, why: str) -> None:
        """A trial with nothing left to do (bench.rescore): done, and out of the ETA."""
        self.done += 1
        self.pending.discard(trial_id)
        self.line(f"skipped {trial_id}: {why}")

    def finished(self, trial_id: str, seconds: float) -> None:
        self.done += 1
        self.trial_seconds += seconds
        self.measured[trial_id] = seconds
        self.pending.discard(trial_id)
        self.running.pop(trial_id, None)
        self.line(f"finished {trial_id} ({duration(seconds)})")
        self.line(f"{self.done}/{self.total} trials done, {duration(time.time() - self.started)} elapsed, "
                  f"about {duration(self.seconds_left())} left")

    def failed(self, trial_id: str, error: str) -> None:
        self.pending.discard(trial_id)
        self.running.pop(trial_id, None)
        self.line(f"FAILED {trial_id}: {error}")

    def seconds_left(self) -> float:
        planned = sum(self.estimates.get(t, 0) for t in self.measured)
        scale = sum(self.measured.values()) / planned if planned else 1.0
        mean = sum(self.measured.values()) / len(self.measured) if self.measured else 0.0
        now, left = time.time(), 0.0
        for trial_id in self.pending:
            expected = self.estimates[trial_id] * scale if trial_id in self.estimates else mean
            left += max(0.0, expected - (now - self.running.get(trial_id, now)))
        return left / self.concurrency


# The driver's live sweep: one per process. Ray pickles callbacks into the sweep's state, so the
# callback holds nothing and reports to this driver's plan and progress; and its first file-system fault.
ACTIVE_SWEEP = {}


class StopOnFault(tune.Stopper):
    """Stops every trial once the sweep has met a file-system fault: the others would meet it too."""

    def __call__(self, trial_id, result) -> bool:
        return False

    def stop_all(self) -> bool:
        return ACTIVE_SWEEP.get("fault") is not None


def _noted_fault(error: Exception) -> None:
    """Keep the sweep's first file-system fault, which stops it (StopOnFault; raised after the sweep);
    other errors go on."""
    fault = filesystem_error(error)
    if fault is None:
        raise error
    ACTIVE_SWEEP["fault"] = ACTIVE_SWEEP.get("fault") or fault


class SweepCallback(tune.Callback):
    def on_trial_start(self, iteration, trials, trial, **info):
        ACTIVE_SWEEP["plan"].seams.clock.event(_trial_id(trial), "started")
        ACTIVE_SWEEP["progress"].trial_started(_trial_id(trial))

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if "stage_epochs" in result:  # an epoch's metrics (the final result carries the scores)
            ACTIVE_SWEEP["progress"].epoch(_trial_id(trial), result)

    def on_trial_recover(self, iteration, trials, trial, **info):
        ACTIVE_SWEEP["progress"].line(f"retrying {_trial_id(trial)} from its last checkpoint")

    def on_trial_complete(self, iteration, trials, trial, **info):
        plan, progress = ACTIVE_SWEEP["plan"], ACTIVE_SWEEP["progress"]
        trial_id, fault = _trial_id(trial), fault_of(trial.last_result)
        if fault is not None:
            _noted_fault(fault)
        elif trial.last_result.get("done") and not trial.last_result.get("already_collected"):
            try:  # a trial that a stop ended unfinished is left to the sweep's end (run_sweep)
                collect(plan, trial_id, trial.checkpoint)
                status = trial_status(plan.run_dir, trial_id)
                progress.finished(trial_id, sum(status.get(k) or 0 for k in ("train_seconds", "curve_seconds",
                                                                             "eval_seconds")))
                write_plan_results(plan, progress.rows)
            except OSError as e:  # raised, Ray would print it and retry the trial
                _noted_fault(e)
        plan.seams.clock.event(trial_id, "completed")

    def on_trial_error(self, iteration, trials, trial, **info):
        plan, progress = ACTIVE_SWEEP["plan"], ACTIVE_SWEEP["progress"]
        error = _error_summary(trial.error_file)
        try:
            record_failure(plan.run_dir, TrialSpec(**trial.config["trial"]), error)
        except OSError as e:
            _noted_fault(e)
        progress.failed(_trial_id(trial), error)


def _error_summary(error_file: str | None) -> str:
    """The last line of Ray's error file names the exception; that is what the user needs."""
    try:
        lines = [line for line in Path(error_file).read_text().splitlines() if line.strip()]
        return lines[-1].strip() if lines else "unknown error"
    except (OSError, TypeError):
        return "unknown error (see logs)"


def _trial_id(trial) -> str:
    return TrialSpec(**trial.config["trial"]).trial_id


def new_tuner(plan: SweepPlan, function, specs: list, name: str):
    """A Tuner for these trials, from their beginning, with the sweep's callbacks and checkpointing."""
    space = {"trial": tune.grid_search([vars(s) for s in specs]), "cpus_per_trial": plan.cpus_per_trial}
    return tune.Tuner(
        function, param_space=space,
        # reuse_actors: a worker process (its start, its imports of torch and the harness) serves
        # trial after trial; each trial still sets its own threads, seeds and working folder.
        tune_config=tune.TuneConfig(max_concurrent_trials=plan.max_concurrent, reuse_actors=True,
                                    trial_name_creator=_trial_id, trial_dirname_creator=_trial_id),
        run_config=tune.RunConfig(
            name=name, storage_path=plan.storage, verbose=0, log_to_file=True,
            callbacks=[SweepCallback(), *tracker_callbacks(plan.trackers, plan.run_dir, plan.run_dir.name)],
            failure_config=tune.FailureConfig(max_failures=MAX_RETRIES), stop=StopOnFault(),
            # the latest checkpoint is all a retry or a resume reads (Ray registers it once persisted)
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1)))


def run_sweep(plan: SweepPlan) -> pd.DataFrame:
    """Run (or resume) the sweep on the Ray cluster that is already initialised; return the results."""
    todo = [s for s in plan.grid if trial_status(plan.run_dir, s.trial_id)["status"] != "finished"]
    progress = Progress(plan.run_dir, len(plan.grid), len(plan.grid) - len(todo), [s.trial_id for s in todo],
                        plan.estimates, plan.concurrency)
    ACTIVE_SWEEP.update(plan=plan, progress=progress, fault=None)
    if not todo:
        progress.line("every trial has finished already")
        return write_plan_results(plan)

    resume_from = last_checkpoints(plan.storage, [s.trial_id for s in todo]) if plan.resume else {}
    resources = functools.partial(trial_resources, cpus=plan.cpus_per_trial, shares=plan.gpus_per_trial)
    function = tune.with_resources(tune.with_parameters(plan.seams.trainable or trainable, settings=plan.settings,
                                                        storage=plan.storage, evaluation=plan.evaluation,
                                                        fault=plan.fault, checkpoint_every=plan.checkpoint_every,
                                                        resume_from=resume_from, trial=plan.seams.trial or run_trial),
                                   resources)
    experiment = f"{plan.storage.rstrip('/')}/{session_experiment(plan.resume)}"
    if plan.resume:
        fresh = len(todo) - len(resume_from)
        progress.line(f"resuming {len(todo)} trials: {len(resume_from)} from their last checkpoint"
                      + (f", {fresh} without one: they start again from their beginning" if fresh else ""))
    tuner = new_tuner(plan, function, todo, experiment.rsplit("/", 1)[1])
    progress.line(f"{len(todo)} trials to run of {len(plan.grid)}; Ray's own logs: {experiment} and "
                  f"/tmp/ray/session_latest/logs")
    results = {TrialSpec(**r.config["trial"]).trial_id: r for r in tuner.fit() if r.config}
    for spec in todo:  # what the callbacks did not record: trials that an interruption stopped
        if trial_status(plan.run_dir, spec.trial_id)["status"] in ("finished", "failed"):
            continue
        result = results.get(spec.trial_id)
        if result and result.error is None and result.checkpoint and result.metrics.get("done"):
            collect(plan, spec.trial_id, result.checkpoint)
        elif result and result.error is not None:
            record_failure(plan.run_dir, spec, str(result.error).strip().splitlines()[-1])
        else:
            record_failure(plan.run_dir, spec, None, status="interrupted")
    if ACTIVE_SWEEP["fault"] is not None:
        raise ACTIVE_SWEEP["fault"]  # the trials it stopped are recorded interrupted: a resume runs them
    table = write_plan_results(plan)
    progress.line(f"sweep wall time {time.time() - progress.started:.0f} s; "
                  f"sum of trial times {progress.trial_seconds:.0f} s")
    return table
