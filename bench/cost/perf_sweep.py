"""The sweep's own cost: Ray's overhead per trial and its parts, cache computations, peak memory.

A sweep of very short trials runs through the real command (`bench.run.main`) in a child process,
the driver, which is handed what times it as arguments (bench/seams.py), without changing what it
does: the trainable Ray runs (`timed_trainable`: the unchanged trainable, given a timed data loader
and a timed report to Ray) and a clock (bench/cost/stopwatch.py) that the driver tells when Ray
starts and completes each trial and how long Ray's start and the sweep took. Meanwhile this process
watches the sweep's statistics cache: every file written there under a new inode is one computation.

Overhead per trial = (concurrency x sweep wall time - sum of the trials' own work) / trials, where a
trial's own work is its time inside the trainable less imports, data loading and checkpoint reports:
everything a bare loop over the same trials would not pay. Its parts are per-trial means.

Workers are reused (reuse_actors), so that overhead has two parts with different scaling: a worker's
start (a process, Ray's and the harness's imports: paid once per slot, whatever the number of
trials), and a marginal cost per trial (a worker's idle gap between one trial leaving and the next
entering, plus the trial's data loading and reports). The target is on the marginal cost; the
whole-sweep figure is marginal + workers x start / trials, so it falls towards it as sweeps grow.
"""
import functools
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

TRIALS = {"models": ["svae", "vae"], "seeds": 4}  # eight trials, two at a time on two cores, as the smoke sweep
CONCURRENCY = 2
# the smoke preset cut to one epoch on 128 images, fd_domain on 100 samples: a trial that is nearly all overhead
MICRO = ["--preset", "smoke", "--set", "epochs=1", "train_subset=128", "fid_samples=100", "grid_samples=16",
         "gmm.components=2", "gmm.max_iter=20", "gmm.fit_n=128"]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


_TIMES = {}  # per worker process: the running trial's timers, and where to write its record


def _timed(name, function):
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            _TIMES[name] = _TIMES.get(name, 0.0) + time.perf_counter() - started
    return wrapper


def _write_record_then(report):
    """A report to Ray that, on a trial's final report, first writes the trial's timings: Ray may stop a
    reused worker's trial thread as soon as that report is in, before any code after it runs."""
    def wrapper(metrics, *args, **kwargs):
        if metrics.get("done"):
            trial = _TIMES["trial"]
            record = {**trial, "left": time.time(), "data_s": _TIMES["data"], "report_s": _TIMES["report"],
                      "pid": os.getpid(), "peak_rss_mb": _peak_rss_mb()}
            folder = Path(_TIMES["storage"]) / "perf"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{trial['trial_id']}-{os.getpid()}-{trial['entered']:.3f}.json").write_text(json.dumps(record))
        return report(metrics, *args, **kwargs)
    return wrapper


def timed_trainable(config: dict, settings: dict, storage: str, evaluation, fault, checkpoint_every,
                    resume_from, trial, tune_report=None) -> None:
    """bench.sweep.trainable, given a trial whose data loading is timed and a timed report to Ray, its
    imports timed too (runs in a Ray worker)."""
    entered = time.time()
    started = time.perf_counter()
    # Mostly imported already: unpickling the config (Settings, Evaluation) imports torch and the
    # harness before the trainable is entered; fresh_import_seconds times that import alone.
    import bench.sweep
    imports = time.perf_counter() - started
    from bench.trial import load_data
    from ray import tune
    _TIMES.update(data=0.0, report=0.0, storage=storage,
                  trial={"trial_id": "{dataset}-{model}-s{seed}".format(**config["trial"]), "entered": entered,
                         "imports_s": imports})
    bench.sweep.trainable(config, settings=settings, storage=storage, evaluation=evaluation, fault=fault,
                          checkpoint_every=checkpoint_every, resume_from=resume_from,
                          trial=functools.partial(trial, load=_timed("data", load_data)),
                          tune_report=_write_record_then(_timed("report", tune_report or tune.report)))


def driver(argv: list, record_path: str) -> int:
    """`bench.run.main(argv)` with the timed trainable, recording trial starts and ends and the sweep's time."""
    import bench.run
    from bench.cost.stopwatch import Stopwatch
    from bench.seams import Seams

    clock = Stopwatch()
    code = bench.run.main(argv, Seams(trainable=timed_trainable, clock=clock))
    Path(record_path).write_text(json.dumps({"code": code, **clock.figures(), "events": clock.events,
                                             "driver_peak_rss_mb": _peak_rss_mb()}))
    return code


class CacheWatcher(threading.Thread):
    """Counts writes into a cache folder: a file under a new inode is one computation of that key."""

    def __init__(self, folder: Path, interval: float = 0.05):
        super().__init__(daemon=True)
        self.folder, self.interval = folder, interval
        self.seen, self.done = {}, threading.Event()

    def run(self):
        while not self.done.is_set():
            self.poll()
            time.sleep(self.interval)
        self.poll()

    def poll(self):
        try:
            for path in self.folder.iterdir():
                if not path.name.startswith(".") and not path.name.endswith(".lock"):
                    self.seen.setdefault(path.name, set()).add(path.stat().st_ino)
        except OSError:  # not there yet, or a file renamed away between listing and stat
            pass

    def computations(self) -> dict:
        return {name: len(inodes) for name, inodes in self.seen.items()}


@functools.cache  # sweep, cache and memory rows come from one sweep per process
def measure_sweep(device: str = "cpu") -> dict:
    """Run the micro sweep once and return its figures (see the module docstring)."""
    with tempfile.TemporaryDirectory(prefix="perf-sweep-") as tmp:
        run_dir, record = Path(tmp) / "run", Path(tmp) / "driver.json"
        argv = [*MICRO, "--datasets", "synthetic", "--models", *TRIALS["models"],
                "--seeds", str(TRIALS["seeds"]), "--max-concurrent", str(CONCURRENCY), "--out", str(run_dir)]
        argv += ["--gpus-per-trial", "0" if device == "cpu" else str(1 / CONCURRENCY)]
        watcher = CacheWatcher(run_dir / "ray" / "fid-cache")
        watcher.start()
        started = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "bench.cost.perf_sweep", str(record), *argv],
                             capture_output=True, text=True, timeout=1800)
        wall = time.perf_counter() - started
        watcher.done.set()
        watcher.join()
        if out.returncode != 0:
            raise RuntimeError(f"the benchmark sweep failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
        driver_figures = json.loads(record.read_text())
        workers = [json.loads(p.read_text()) for p in (run_dir / "ray" / "perf").glob("*.json")]
        sizes = {part: sum(f.stat().st_size for f in (run_dir / part).rglob("*") if f.is_file()) / 2 ** 20
                 for part in ("trials", "ray")}
        size_all = sum(f.stat().st_size for f in run_dir.rglob("*") if f.is_file()) / 2 ** 20
    return sweep_figures(driver_figures, workers, watcher.computations(), wall, sizes, size_all,
                         fresh_import_seconds())


def fresh_import_seconds() -> float:
    """What a new worker process imports before a trial can start, timed in a fresh interpreter."""
    code = "import time; t = time.perf_counter(); import ray.tune, bench.sweep; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    return float(out.stdout.split()[-1])


def sweep_figures(driver_figures, workers, computations, wall, sizes, size_all, fresh_imports) -> dict:
    events = driver_figures["events"]
    n = len(events)  # every trial Ray started; a trial without a worker record counts as all overhead
    work = sum(w["left"] - w["entered"] - w["imports_s"] - w["data_s"] - w["report_s"] for w in workers)
    overhead = (CONCURRENCY * driver_figures["sweep_s"] - work) / n
    completions = sorted(e["completed"] for e in events.values() if "completed" in e)
    # A trial's start latency: from the slot coming free (a trial completing, or the sweep starting)
    # to Ray calling it started: actor teardown, a placement group, a worker process and its imports.
    latency = [e["started"] - max([c for c in completions if c < e["started"]], default=driver_figures["sweep_started"])
               for e in events.values() if "started" in e]
    mean = lambda values: sum(values) / len(values) if values else float("nan")  # noqa: E731
    by_worker = {}
    for w in sorted(workers, key=lambda w: w["entered"]):
        by_worker.setdefault(w["pid"], []).append(w)
    slot_free = lambda trial_id: max([c for c in completions if c < events[trial_id]["started"]],  # noqa: E731
                                     default=driver_figures["sweep_started"])
    worker_start = mean([trials[0]["entered"] - slot_free(trials[0]["trial_id"]) for trials in by_worker.values()])
    gaps = [b["entered"] - a["left"] for trials in by_worker.values() for a, b in zip(trials, trials[1:])]
    marginal = mean(gaps) + mean([w["data_s"] + w["report_s"] for w in workers])
    parts = {"start latency (slot free -> trial started; includes worker start and imports)": mean(latency),
             "imports of a fresh worker (ray.tune, bench.sweep; timed alone)": fresh_imports,
             "imports inside the trainable": mean([w["imports_s"] for w in workers]),
             "data loading": mean([w["data_s"] for w in workers]),
             "checkpoint reports (upload to storage)": mean([w["report_s"] for w in workers]),
             "trainable returned -> driver done with the trial (collection)":
                 mean([events[w["trial_id"]]["completed"] - w["left"] for w in workers
                       if "completed" in events.get(w["trial_id"], {})])}
    return {"trials": n, "worker_records": len(workers), "concurrency": CONCURRENCY,
            "workers": len({w["pid"] for w in workers}),
            "sweep_s": driver_figures["sweep_s"], "ray_start_s": driver_figures["ray_start_s"],
            "command_wall_s": wall, "work_s_per_trial": work / n, "overhead_s_per_trial": overhead,
            "marginal_s_per_trial": marginal, "worker_start_s": worker_start, "reuse_gaps": len(gaps),
            "parts_s_per_trial": parts, "cache_computations": computations,
            "trial_peak_rss_mb": max(w["peak_rss_mb"] for w in workers),
            "driver_peak_rss_mb": driver_figures["driver_peak_rss_mb"],
            "run_dir_mb": size_all, "run_dir_mb_by_part": sizes}


def sweep_rows(device: str, part: str) -> list:
    """The rows of one part ("sweep", "cache" or "memory") of the measured sweep."""
    f = measure_sweep(device)
    setting = (f"{f['trials']} one-epoch trials ({f['worker_records']} timed in their worker), "
               f"{f['concurrency']} at a time, {f['workers']} worker processes")
    if part == "sweep":
        return [{"measure": "Ray overhead per trial, marginal (reused worker) (s)", "value": f["marginal_s_per_trial"],
                 "target": ["<=", 2.0], "note": f"idle gap between trials on one worker ({f['reuse_gaps']} gaps) "
                                                f"plus data loading and reports"},
                {"measure": "worker start, once per slot (s)", "value": f["worker_start_s"], "target": None,
                 "note": "sweep start -> first trial entered: process, placement, imports"},
                {"measure": "Ray overhead per trial, whole sweep (s)", "value": f["overhead_s_per_trial"],
                 "target": None,
                 "note": f"{setting}; ≈ marginal + {f['workers']} x worker start / {f['trials']}; a trial's own work "
                         f"{f['work_s_per_trial']:.1f} s, sweep {f['sweep_s']:.0f} s, "
                         f"Ray start {f['ray_start_s']:.0f} s (once)"},
                *({"measure": f"  part: {name} (s)", "value": value, "target": None, "note": "mean per trial"}
                  for name, value in f["parts_s_per_trial"].items()),
                {"measure": "run directory size per trial (MB)", "value": f["run_dir_mb"] / f["trials"],
                 "target": None, "note": ", ".join(f"{k}/ {v:.1f} MB" for k, v in f["run_dir_mb_by_part"].items())}]
    if part == "cache":
        counts = f["cache_computations"]
        return [{"measure": "computations per cache key (most)", "value": max(counts.values(), default=0),
                 "target": ["<=", 1], "note": f"{len(counts)} keys, {setting}: "
                                              + ", ".join(f"{k} x{v}" for k, v in counts.items())}]
    return [{"measure": "peak RSS of a trial's worker (MB)", "value": f["trial_peak_rss_mb"], "target": None,
             "note": setting},
            {"measure": "peak RSS of the driver (MB)", "value": f["driver_peak_rss_mb"], "target": None,
             "note": "python -m bench.run, Ray's own processes not counted"}]


if __name__ == "__main__":  # the driver's functions from the module, so Ray pickles them by name
    from bench.cost.perf_sweep import driver as module_driver
    sys.exit(module_driver(sys.argv[2:], sys.argv[1]))
