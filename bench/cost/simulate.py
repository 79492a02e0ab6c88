"""python -m bench.cost.simulate: the paper grid on a simulated multi-node GPU cluster, measured.

A `ray.cluster_utils.Cluster` on this machine: a CPU-only head (CPUS_PER_NODE CPUs, no GPU: the normal
case) and NODES worker nodes, each advertising GPUS_PER_NODE logical GPUs (nothing needs a real GPU),
each node on its own loopback address (127.0.0.1 the head, 127.0.0.2... the workers) so that Ray's
results say which node ran a trial. GPUs per trial are one number or per dataset (bench/resources.py).
The driver is the real command, `bench.run.main`, with the paper preset's datasets and models and
--seeds seeds, given stand-ins through its seams (bench/seams.py): every trial is the stand-in of
bench/cost/simulated_trial.py, which sleeps and writes checkpoints, metrics, sample grids and rows of a
real trial's size. Two steps of the driver are replaced, because the stand-in needs neither: the data
check (the paper's datasets are not on a CI box) and the plan's throughput probe (paper-size networks
on CPUs). With --search, the search runs first, as in a real sweep (one Tuner for every dataset and
model with a knob, one trial per grid factor and seed), each candidate a stand-in that sleeps
bench.search.EPOCH_FRACTION of a trial's time and reports a made-up score; without it they are off
(--no-search).

Measured (written as JSON to --report, printed as a table): the driver's wall time and overhead,
its peak RSS, storage bytes, the time from the last trial's end to the rendered reports, GPU-slot
utilisation over time from logs/driver.log, and, with --kill-at-half, the time for --resume after
the driver is SIGKILLed with half the grid finished; the trials each node ran (from Ray's results).
"""
if __name__ == "__main__":  # first, so that Ctrl-C while the imports below load is one line
    from svae.interrupt import quiet_until_main
    quiet_until_main()

import argparse
import functools
import json
import math
import os
import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from bench.cost.simulated_trial import simulated_trial
from bench.cost.stopwatch import Stopwatch
from bench.resources import gpu_shares
from bench.seams import Seams
from svae.command import run_command
from svae.data import PAPER_DATASETS
from svae.errors import HarnessError
from svae.interrupt import interrupts_raise
from svae.io import writable_file, writable_folder

NODES, GPUS_PER_NODE, CPUS_PER_NODE = 4, 8, 4
HEAD_IP = "127.0.0.1"


def driver(argv: list) -> int:
    """bench.run.main with the stand-in trial ($SIMULATE_TRIAL: "<seconds>:<checkpoint bytes>"), the
    stand-in candidates, and no data check or throughput probe; on exit it writes its peak RSS and the
    time it spent writing results.csv and searching to $SIMULATE_DRIVER_FILE (JSON)."""
    import bench.run
    seconds, checkpoint_bytes = os.environ["SIMULATE_TRIAL"].split(":")
    seconds, clock = float(seconds), Stopwatch()
    seams = Seams(check_data=lambda args, settings: {},  # no data files read
                  cost=lambda args, config, grid: SimpleNamespace(
                      trial_seconds=lambda: {s.trial_id: seconds for s in grid}, concurrency=1),
                  scores_of=functools.partial(simulated_scores, seconds),
                  trial=functools.partial(simulated_trial, seconds=seconds, checkpoint_bytes=int(checkpoint_bytes)),
                  clock=clock)
    code = bench.run.main(argv, seams)
    timed = {"write_results_s": clock.seconds.get("write_results", 0.0),
             "write_results_calls": clock.calls.get("write_results", 0),
             **({"search_s": clock.seconds["search"]} if "search" in clock.seconds else {}),
             "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    Path(os.environ["SIMULATE_DRIVER_FILE"]).write_text(json.dumps(timed))
    return code


def simulated_candidate(config: dict, seconds: float) -> None:
    """A search candidate's stand-in (a Ray Tune function): sleeps the search's share of a trial and
    reports a made-up validation score, lowest at the as-published value (factor 1)."""
    from ray import tune
    time.sleep(seconds)
    tune.report({"score": abs(math.log2(config["candidate"]["factor"]))})


def simulated_scores(trial_seconds: float, candidates: list, jobs: dict, storage: str, resources: dict,
                     keep=None) -> dict:
    """bench.search.tune_scores, the real Tuner, with the stand-in candidate."""
    import bench.search
    from ray import tune
    candidate = tune.with_parameters(simulated_candidate, seconds=trial_seconds * bench.search.EPOCH_FRACTION)
    return bench.search.tune_scores(candidates, jobs, storage, resources, keep, trainable=candidate)


def driver_command(run_dir: Path, storage: Path, address: str, seeds: int, gpus: dict, cpus: float,
                   resume: bool, search: bool = False, checkpoint_every=None) -> list:
    return [sys.executable, "-m", "bench.cost.simulate", "driver", "--preset", "paper", "--datasets", *PAPER_DATASETS,
            "--seeds", str(seeds), "--fid-backbone", "domain", "--fid-samples", "10000",
            *([] if search else ["--no-search"]),
            "--out", str(run_dir), "--address", address, "--storage", str(storage),
            "--gpus-per-trial", *(f"{d}={share:g}" for d, share in gpus.items()), "--cpus-per-trial", str(cpus),
            *([] if checkpoint_every is None else ["--checkpoint-every", str(checkpoint_every)]),
            *(["--resume"] if resume else [])]


def bytes_under(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def finished_trials(run_dir: Path) -> dict:
    out = {}
    for path in run_dir.glob("trials/*/status.json"):
        try:
            status = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if status.get("status") == "finished":
            out[path.parent.name] = status["attempt_id"]
    return out


LINE = re.compile(r"^\[(\d\d):(\d\d):(\d\d)\] (started|finished) (\S+)")


def _clock(stamp: float) -> int:
    """Seconds since local midnight, as the driver log's [HH:MM:SS] stamps count."""
    t = time.localtime(stamp)
    return t.tm_hour * 3600 + t.tm_min * 60 + t.tm_sec


def log_events(log: Path) -> list:
    """(seconds since midnight, 'started' or 'finished', trial id) from the driver log, in order."""
    events = []
    for line in log.read_text().splitlines():
        m = LINE.match(line)
        if m and not m.group(5).startswith("("):
            h, mi, s, kind, trial = m.groups()
            events.append((int(h) * 3600 + int(mi) * 60 + int(s), kind, trial))
    return events


def utilisation(events: list, slots: int) -> dict:
    """Trials running / slots over time, from the driver's started and finished lines (1 s resolution)."""
    if not events:
        return {"series": [], "mean": 0.0}
    start, end = events[0][0], events[-1][0]
    running, series, i = 0, [], 0
    for t in range(start, end + 1):
        while i < len(events) and events[i][0] <= t:
            running += 1 if events[i][1] == "started" else -1
            i += 1
        series.append(running)
    return {"series": series, "mean": sum(series) / len(series) / slots,
            "peak": max(series) / slots, "seconds": len(series)}


def run_driver(command: list, env: dict, log: Path, until=None):
    """Run the driver to its end (or until `until()` holds, then SIGKILL it); (return code, seconds, output).
    Its output goes to `log`, not a pipe: a pipe nobody reads while `until` is polled fills (64 KB, a few
    hundred trials' progress lines) and blocks the driver at its next line."""
    started = time.time()
    with open(log, "w") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        while until is not None and proc.poll() is None and not until():
            time.sleep(0.5)
        if until is not None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
    return proc.returncode, time.time() - started, log.read_text(errors="replace")


def trials_per_node(storage: Path) -> dict:
    """node IP -> how many trials (and search candidates) reported from it, from Ray's results."""
    counts = {}
    for path in storage.glob("*/*/result.json"):
        ips = {json.loads(line).get("node_ip") for line in path.read_text().splitlines() if line.strip()}
        for ip in ips:
            counts[ip] = counts.get(ip, 0) + 1
    return counts


def measure(work: Path, seeds: int, gpus, seconds: float, checkpoint_bytes: int, kill_at_half: bool,
            nodes: int = NODES, gpus_per_node: int = GPUS_PER_NODE, cpus_per_node: float = CPUS_PER_NODE,
            search: bool = False, checkpoint_every=None) -> dict:
    from ray.cluster_utils import Cluster

    from bench.cost.projection import makespan
    from bench.resources import per_dataset

    work.mkdir(parents=True, exist_ok=True)
    run_dir, storage, driver_file = work / "run", work / "storage", work / "driver.json"
    gpus = per_dataset(gpus, PAPER_DATASETS)  # dataset -> GPUs per trial
    trials = len(PAPER_DATASETS) * 5 * seeds
    slots = makespan([(seconds, gpus[d]) for d in PAPER_DATASETS for _ in range(5 * seeds)], nodes * gpus_per_node)[1]
    cpus = cpus_per_node * min(gpus.values()) / gpus_per_node  # CPUs never the binding resource
    env = {**os.environ, "SIMULATE_TRIAL": f"{seconds:g}:{checkpoint_bytes}",
           "SIMULATE_DRIVER_FILE": str(driver_file), "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
           # the driver is on the head's loopback address: Ray would otherwise look for its node at the
           # machine's outward address, where no node of this cluster runs
           "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": cpus_per_node, "num_gpus": 0,
                                                            "node_ip_address": HEAD_IP})
    try:
        for i in range(nodes):
            cluster.add_node(num_cpus=cpus_per_node, num_gpus=gpus_per_node, node_ip_address=f"127.0.0.{2 + i}")
        command = driver_command(run_dir, storage, cluster.address, seeds, gpus, cpus, resume=False, search=search,
                                 checkpoint_every=checkpoint_every)
        figures = {"trials": trials, "checkpoint_bytes": checkpoint_bytes, "slots": slots, "gpus_per_trial": gpus,
                   "trial_seconds": seconds, "command": command[3:], "nodes": nodes, "gpus_per_node": gpus_per_node,
                   "checkpoint_every": checkpoint_every}
        launched = time.time()
        if kill_at_half:
            code, wall, output = run_driver(command, env, work / "driver-killed.log",
                                            until=lambda: len(finished_trials(run_dir)) >= trials // 2)
            before = finished_trials(run_dir)
            figures["killed_with_finished"] = len(before)
            launched = time.time()
            resume = driver_command(run_dir, storage, cluster.address, seeds, gpus, cpus, resume=True, search=search,
                                    checkpoint_every=checkpoint_every)
            code, wall, output = run_driver(resume, env, work / "driver-resumed.log")
            after = finished_trials(run_dir)
            figures["resume_wall_s"] = wall
            figures["rerun_after_resume"] = sum(after.get(t) != a for t, a in before.items())
        else:
            code, wall, output = run_driver(command, env, work / "driver.log")
        figures["wall_s"] = wall
        events = [e for e in log_events(run_dir / "logs" / "driver.log") if e[0] >= _clock(launched) - 1]
        starts = {trial: t for t, kind, trial in events if kind == "started"}
        ends = {trial: t for t, kind, trial in events if kind == "finished"}
        if starts and ends:
            figures["launch_to_first_start_s"] = min(starts.values()) - _clock(launched)
            span = max(ends.values()) - min(starts.values())
            ideal = math.ceil(len(ends) / slots) * seconds
            figures["first_start_to_last_end_s"], figures["ideal_s"] = span, ideal
            figures["overhead_per_trial_s"] = (span - ideal) / len(ends)
            matched = [ends[t] - starts[t] for t in ends if t in starts]  # a restored trial may log no start
            if matched:
                figures["trial_latency_over_stand_in_s"] = sum(matched) / len(matched) - seconds
        figures["returncode"] = code
        figures["output_tail"] = output[-1500:]
        figures["finished"] = len(finished_trials(run_dir))
        if driver_file.exists():
            figures.update({f"driver_{k}": v for k, v in json.loads(driver_file.read_text()).items()})
        figures["run_dir_bytes"] = bytes_under(run_dir)
        figures["storage_bytes"] = bytes_under(storage)
        figures["trials_per_node_ip"] = trials_per_node(storage)
        figures["bytes_per_trial"] = (figures["run_dir_bytes"] + figures["storage_bytes"]) / trials
        report = run_dir / "report.md"
        if ends and report.exists():
            figures["last_trial_to_reports_s"] = _clock(report.stat().st_mtime) - max(ends.values())
        use = utilisation(events, slots)
        figures["utilisation_mean"], figures["utilisation_peak"] = use.get("mean"), use.get("peak")
        figures["utilisation_series"] = use["series"]
        return figures
    finally:
        cluster.shutdown()


def write_results_cost(run_dir: Path, rounds: int = 3) -> dict:
    """Seconds per rewrite of results.csv with every trial finished: reading each trial's files anew
    (as every rewrite did before the driver kept the rows it had read), and from rows already read."""
    from bench.sweep import write_results
    from bench.trial import TrialSpec
    manifest = json.loads((run_dir / "manifest.json").read_text())
    grid = [TrialSpec(g["dataset"], g["model"], g["seed"]) for g in manifest["grid"]]
    known = {}
    write_results(run_dir, grid, known)
    out = {}
    for name, cache in (("reread", None), ("kept", known)):
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            write_results(run_dir, grid, cache)
            times.append(time.perf_counter() - started)
        out[name] = min(times)
    return out


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["driver"]:
        return driver(argv[1:])
    if argv[:1] == ["write-results"]:  # python -m bench.cost.simulate write-results RUN_DIR
        print(json.dumps(write_results_cost(Path(argv[1]))))
        return 0
    interrupts_raise()
    p = argparse.ArgumentParser(prog="python -m bench.cost.simulate", description=__doc__.splitlines()[0])
    p.add_argument("--work", required=True, help="folder for the run directory and the storage (made fresh)")
    p.add_argument("--seeds", type=int, default=5, help="seeds per cell: 5 is the paper grid's 75 trials")
    p.add_argument("--gpus-per-trial", nargs="+", default=["1"], metavar="[DATASET=]GPUS",
                   help="GPUs per trial: one number, or per dataset as mnist=0.25 celeba=1")
    p.add_argument("--gpus-per-node", type=int, default=GPUS_PER_NODE, help="logical GPUs per worker node")
    p.add_argument("--trial-seconds", type=float, default=20.0, help="the stand-in's duration")
    p.add_argument("--checkpoint-bytes", type=int, default=1_000_000,
                   help="the stand-in's checkpoint size (a paper CelebA SVAE's weights: 116 MB)")
    p.add_argument("--kill-at-half", action="store_true",
                   help="SIGKILL the driver once half the trials finished, then time --resume")
    p.add_argument("--search", action="store_true", help="run the baseline searches first (stand-in candidates)")
    p.add_argument("--checkpoint-every", type=float, default=None,
                   help="bench.run's --checkpoint-every (default: bench.run's; 0: after every stand-in step)")
    p.add_argument("--report", default=None, help="write the figures as JSON here")
    args = p.parse_args(argv)
    return run_command(lambda: simulate(args), "interrupted; the simulated cluster was stopped")


def check_args(args) -> dict:
    """Every number before a cluster starts: a wrong one is one line, not a traceback or a wait; the
    GPU share of each dataset."""
    if not 1 <= args.seeds <= 1000 or not 1 <= args.gpus_per_node <= 1024:
        raise HarnessError(f"--seeds must be from 1 to 1,000 and --gpus-per-node from 1 to 1,024 "
                           f"(got {args.seeds}, {args.gpus_per_node})")
    shares = gpu_shares(args.gpus_per_trial, PAPER_DATASETS)
    if not (0 < min(shares.values()) and max(shares.values()) <= args.gpus_per_node
            and 0 < args.trial_seconds < math.inf):
        raise HarnessError("--gpus-per-trial must be above 0 and at most --gpus-per-node, --trial-seconds a "
                           f"finite number above 0 (got {' '.join(args.gpus_per_trial)}, {args.trial_seconds})")
    if not 0 <= args.checkpoint_bytes <= 10**10:
        raise HarnessError(f"--checkpoint-bytes must be from 0 to 10,000,000,000 (got {args.checkpoint_bytes})")
    if args.checkpoint_every is not None and not 0 <= args.checkpoint_every < math.inf:
        raise HarnessError(f"--checkpoint-every must be 0 or more seconds (got {args.checkpoint_every})")
    writable_folder(args.work, "--work", "name a folder for the simulated run")
    if args.report:
        writable_file(args.report, "--report", "name a JSON file in a folder you can write")
    return shares


def simulate(args) -> int:
    shares = check_args(args)
    figures = measure(Path(args.work), args.seeds, shares, args.trial_seconds, args.checkpoint_bytes,
                      args.kill_at_half, gpus_per_node=args.gpus_per_node, search=args.search,
                      checkpoint_every=args.checkpoint_every)
    text = json.dumps(figures, indent=1)
    if args.report:
        Path(args.report).write_text(text)
    print(json.dumps({k: v for k, v in figures.items() if k not in ("utilisation_series", "output_tail")}, indent=1))
    return 0 if figures["returncode"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
