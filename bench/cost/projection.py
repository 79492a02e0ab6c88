"""python -m bench.cost.projection: what the paper grid costs on GPUs, in wall time and GPU hours.

A trial (or a search candidate) is a Job: its stages' epochs and training images, the images it passes
through the model to sample, and the images it scores. A GPU turns a Job into seconds in one of two ways:

- Measured (MeasuredGPU): images/s of every (dataset, model) at the preset's settings, measured on
  that GPU by `python -m bench.cost.projection --measure FILE` (the plan's own probe, bench/cost/plan.py, run
  long enough to pass the GPU's warm-up), and the throughput that packing several trials onto one
  GPU gains (bench/cost/throughput.py packed_images_per_second). A Job's seconds are its stages' epochs x
  images over their images/s, plus its sampling and scoring images over theirs. bench/cost/rates/ holds
  the measurements; the projection uses one where the plan's settings are those it was measured at.
- Counted (GPU): the Job's FLOPs (torch's FlopCounterMode on a batch of two: each stage's training
  step, the sampling pass, the scoring network) over the GPU's datasheet peak times an assumed
  utilisation. For settings or GPUs with no measurement; it says so.

The grid's trials are packed onto the GPUs at their dataset's GPU share (bench/resources.py: a
quarter GPU each for MNIST and CIFAR-10 and a whole one for CelebA packs four small trials to a GPU),
longest first, as a greedy scheduler would. The search (bench/search.py) comes first: one wave of
candidates (every model with a knob, every grid factor and seed: trained for the search's share of the
epochs on the training images less the validation split, sampled, and scored with the validation images). GPU hours are
counted two ways: busy (the trials' own work) and held (wall time x GPUs, what a reservation pays).
`--dry-run` prints the same for the planned run.

What it leaves out: the real-image statistics and fd_domain classifiers (once per dataset), the GMM
fits (CPU), and the workers' start (bench/cost/simulate.py measures the driver's overhead per trial).
"""
if __name__ == "__main__":  # first, so that Ctrl-C while the imports below load is one line
    from svae.interrupt import quiet_until_main
    quiet_until_main()

import argparse
import heapq
import itertools
import math
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from bench.cost.gpus import H200, RATES_DIR, Job, MeasuredGPU, Rates, settings_key
from bench.cost.plan import counted_plan, duration, make_plan, training_images
from bench.models import MODELS, build_model
from bench.presets import settings_for
from bench.resources import describe, gpu_shares, per_dataset
from bench.trial import TrialSpec
from svae.command import HelpFormatter, run_command
from svae.data import PAPER_DATASETS, SPECS
from svae.errors import HarnessError
from svae.interrupt import interrupts_raise

PROJECTED_GPUS = (8, 32, 128)
MAX_COUNT = 1_000_000  # seeds, batches, images: a larger count is a typo
MAX_GPUS_PER_TRIAL = 1024


def makespan(jobs: list, gpus: int) -> tuple:
    """(wall time, jobs running at the start) of jobs, (seconds, GPUs) each, on `gpus` GPUs as Ray places
    them: a share of one GPU or less on one GPU with that much free, n whole GPUs on n free ones. Whenever
    a job ends, every waiting job that now fits starts, longest first (as a greedy scheduler would)."""
    free = [1.0] * gpus
    waiting = sorted(jobs, key=lambda job: -job[0])
    running, order = [], itertools.count()  # (end, tie-breaker, [(gpu, share)])
    now, first_wave = 0.0, None
    while waiting:
        for job in list(waiting):
            placed = _place(free, job[1])
            if placed is not None:
                waiting.remove(job)
                heapq.heappush(running, (now + job[0], next(order), placed))
        first_wave = len(running) if first_wave is None else first_wave
        if waiting and not running:
            raise HarnessError(f"a job needs {waiting[0][1]:g} GPUs, more than the {gpus} projected")
        if waiting:  # wait for the next job to end
            now, _, placed = heapq.heappop(running)
            for gpu, share in placed:
                free[gpu] += share
    return max([now] + [end for end, _, _ in running]), first_wave


def _place(free: list, share: float):
    """Take `share` GPUs from `free` (in place); return [(gpu, share)] taken, or None where it does not fit."""
    if share > 1:
        whole = [i for i, f in enumerate(free) if f >= 1 - 1e-9][:int(share)]
        if len(whole) < share:
            return None
        taken = [(i, 1.0) for i in whole]
    else:
        fits = next((i for i, f in enumerate(free) if f >= share - 1e-9), None)
        if fits is None:
            return None
        taken = [(fits, share)]
    for i, s in taken:
        free[i] -= s
    return taken


@dataclass(frozen=True)
class Projection:
    gpus: int
    slots: int
    wall_seconds: float  # the searches, then the grid
    search_wall_seconds: float
    busy_gpu_hours: float
    held_gpu_hours: float


def project(trials: list, gpus: int, overhead_seconds: float = 0.0, searches: list = ()) -> Projection:
    """The sweep's wall time and GPU hours on `gpus` GPUs: `searches` (one list of candidates per search,
    run one search after another) and then the grid, each trial and candidate (seconds, GPUs) plus a
    per-trial overhead (the driver's, measured by bench/cost/simulate.py). `slots`: the grid's trials that
    run at once when it starts."""
    waves = [[(s + overhead_seconds, share) for s, share in candidates] for candidates in searches]
    trials = [(s + overhead_seconds, share) for s, share in trials]
    search_wall = sum(makespan(wave, gpus)[0] for wave in waves)
    grid_wall, slots = makespan(trials, gpus)
    busy = sum(s * share for s, share in trials + [job for wave in waves for job in wave])
    return Projection(gpus=gpus, slots=slots, wall_seconds=search_wall + grid_wall, search_wall_seconds=search_wall,
                      busy_gpu_hours=busy / 3600, held_gpu_hours=(search_wall + grid_wall) * gpus / 3600)


def plan_jobs(plan) -> dict:
    """(dataset, model) -> Job for every cell of a bench.cost.plan Plan."""
    return {(d, m): Job(d, m, plan.settings[d], tuple((st.epochs, st.images) for st in cell.stages),
                        cell.forward_total, cell.featurised_total)
            for (d, m), cell in plan.cells.items()}


def search_jobs(plan) -> list:
    """The candidates' Jobs of the search's first round, one wave before the grid (bench/search.py runs
    every dataset's and model's candidates at once): each model with a knob, when the preset searches.
    A search whose best factor sits at an edge adds a smaller wave per widening step; not counted."""
    from bench.search import FACTORS, SEEDS, budget, validation_size
    out = []
    for dataset, settings in plan.settings.items():
        if not settings.search:
            continue
        n_train = training_images(dataset, settings)
        n_val = validation_size(n_train, settings)
        short = replace(settings, epochs=budget(settings))
        for model in sorted({s.model for s in plan.grid if MODELS[s.model].knob}):
            stages = tuple((max(1, round(short.epochs * st.epoch_factor)), n_train - n_val)
                           for st in build_model(model, SPECS[dataset], settings.model).stages())
            encoded = min(settings.gmm.fit_n, n_train - n_val)  # the GMM's fitting images
            candidate = Job(dataset, model, short, stages, n_val + encoded, 2 * n_val)  # samples, validation
            out += [candidate] * (len(FACTORS) * len(SEEDS))
    return [out] if out else []


def measured_gpu(plan):
    """The first GPU of bench/cost/rates whose rates were measured at the plan's settings, else None."""
    for path in sorted(RATES_DIR.glob("*.json")):
        measured = MeasuredGPU.load(path)
        if measured.covers(plan):
            return measured
    return None


def default_gpu(plan):
    """The H200's measured rates where they hold for the plan's settings, else its counted FLOPs."""
    return measured_gpu(plan) or H200


def projection_lines(plan, gpu=None, gpu_counts=PROJECTED_GPUS, overhead_seconds: float = 0.0) -> list:
    gpu = gpu or default_gpu(plan)
    jobs = plan_jobs(plan)
    share = {d: s or 1.0 for d, s in plan.gpus_per_trial.items()}  # projected on GPUs: no share is one GPU
    seconds = {cell: gpu.seconds(job, share[cell[0]]) for cell, job in jobs.items()}
    searches = [[(gpu.seconds(c, share[c.dataset]), share[c.dataset]) for c in candidates]
                for candidates in search_jobs(plan)]
    trials = [(seconds[s.dataset, s.model], share[s.dataset]) for s in plan.grid]
    out = [f"projection on {gpu.name} GPUs, {describe(share)} per trial ({gpu.source}); "
           f"the search's first round ({sum(map(len, searches))} candidates, all at once) first, then the grid:"]
    out += [f"  {p.gpus:4d} GPUs ({p.slots} trials at once): ~{duration(p.wall_seconds)} wall time "
            f"(search ~{duration(p.search_wall_seconds)}), {p.busy_gpu_hours:.3g} GPU hours busy, "
            f"{p.held_gpu_hours:.3g} held"
            for p in (project(trials, g, overhead_seconds, searches) for g in gpu_counts)]
    longest = max(seconds, key=seconds.get)
    out.append(f"  the longest trial, {longest[0]} {longest[1]}: ~{duration(seconds[longest])} "
               f"(no GPU count goes below it)")
    return out


def paper_plan(datasets, seeds: int, gpus_per_trial, probe=None):
    """The paper grid's Plan: probed on this machine by `probe` (bench.cost.plan.make_plan's keywords), or,
    without one, its counts alone (rates 1 image/s: a projection needs only the counts)."""
    settings = {d: settings_for("paper", d) for d in datasets}
    grid = [TrialSpec(d, m, s) for d in datasets for m in MODELS for s in range(seeds)]
    if probe is not None:
        return make_plan(grid, "paper", settings, gpus_per_trial=gpus_per_trial, **probe)
    plan = counted_plan(grid, "paper", settings, 1, per_dataset(gpus_per_trial, datasets))
    return replace(plan, concurrency=1)


def measure(path: Path, device: str, batches: int, feature_images: int, packed: int, packed_seconds: float) -> None:
    """Measure this machine's GPU at the paper settings (every dataset and model) and write the rates."""
    import datetime
    import os
    from bench.cost.throughput import packed_images_per_second
    plan = paper_plan(PAPER_DATASETS, 1, 1.0 if device == "cuda" else 0.0,
                      probe=dict(cpus_per_trial=os.cpu_count(), probe_batches=batches, feature_images=feature_images))
    rates = {cell: Rates(tuple(st.images_per_s for st in c.stages), c.forward_per_s, c.features_per_s)
             for cell, c in plan.cells.items()}
    for cell, r in rates.items():
        print(f"{cell[0]:8s} {cell[1]:10s} train {', '.join(f'{x:.0f}' for x in r.train)} images/s; "
              f"sampling {r.forward:.0f}, scoring {r.features:.0f} images/s", flush=True)
    packing = {}
    for dataset in PAPER_DATASETS:  # the SVAE stands for every model of its dataset
        batch = plan.settings[dataset].batch_size
        images = max(4, round(rates[dataset, "svae"].train[0] * packed_seconds / batch)) * batch
        alone = packed_images_per_second(dataset, "svae", 1, images, device)
        together = packed_images_per_second(dataset, "svae", packed, images, device)
        packing[dataset] = {packed: together / alone}
        print(f"{dataset}: SVAE training alone {alone:.0f} images/s, {packed} packed {together:.0f} in all "
              f"(x{together / alone:.2f})", flush=True)
    name = torch.cuda.get_device_name() if device == "cuda" else "this machine's CPU"
    tf32 = "TF32 convolutions, PyTorch's default" if torch.backends.cudnn.allow_tf32 else "no TF32"
    source = (f"measured on one {name}, {datetime.date.today()}, torch {torch.__version__}, float32 ({tf32}): "
              f"python -m bench.cost.projection --measure ({batches} batches per stage)")
    MeasuredGPU(name, source, {d: settings_key(s) for d, s in plan.settings.items()}, rates, packing).save(path)
    print(f"wrote {path}")


def main(argv=None) -> int:
    """The paper grid's projection from its counts (no probe), or --measure this machine's GPU."""
    interrupts_raise()
    p = argparse.ArgumentParser(prog="python -m bench.cost.projection", description=__doc__.splitlines()[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--datasets", nargs="*", default=list(PAPER_DATASETS))
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--gpus-per-trial", nargs="+", default=["1"], metavar="[DATASET=]GPUS",
                   help="GPUs per trial: one number, or per dataset as mnist=0.25 celeba=1 (bench/resources.py)")
    p.add_argument("--overhead-seconds", type=float, default=0.0, help="the driver's overhead per trial")
    p.add_argument("--rates", type=Path, help="a file of measured rates (default: bench/cost/rates/ where they fit, "
                                              "else counted FLOPs)")
    p.add_argument("--counted", action="store_true", help="cost by counted FLOPs even where rates were measured")
    p.add_argument("--measure", type=Path, metavar="FILE", help="measure this machine's GPU and write its rates")
    p.add_argument("--device", default="cuda", help="--measure: the device (cpu only to try it out)")
    p.add_argument("--batches", type=int, default=50, help="--measure: timed batches per stage")
    p.add_argument("--feature-images", type=int, default=2000, help="--measure: images through the scoring network")
    p.add_argument("--packed", type=int, default=4, help="--measure: trials packed onto the device at once")
    p.add_argument("--packed-seconds", type=float, default=4.0, help="--measure: one packed trial's training time")
    args = p.parse_args(argv)
    return run_command(lambda: run_projection(args), "interrupted; nothing was written")


def run_projection(args) -> int:
    for flag, value in (("--seeds", args.seeds), ("--batches", args.batches),
                        ("--feature-images", args.feature_images), ("--packed", args.packed)):
        if not 1 <= value <= MAX_COUNT:  # 10^12 seeds: a grid that fills the memory, silently
            raise HarnessError(f"{flag} must be from 1 to {MAX_COUNT:,} (got {value})")
    shares = gpu_shares(args.gpus_per_trial, args.datasets)
    if not (0 < min(shares.values()) and max(shares.values()) <= MAX_GPUS_PER_TRIAL
            and 0 < args.packed_seconds < math.inf):
        raise HarnessError(f"--gpus-per-trial must be above 0 and at most {MAX_GPUS_PER_TRIAL}, --packed-seconds a "
                           f"finite number above 0")
    if not 0 <= args.overhead_seconds < math.inf:
        raise HarnessError(f"--overhead-seconds must be a finite number, 0 or more (got {args.overhead_seconds})")
    if args.measure:
        if args.device == "cuda" and not torch.cuda.is_available():
            raise HarnessError("--measure needs a CUDA GPU here (or --device cpu to try it out)")
        measure(args.measure, args.device, args.batches, args.feature_images, args.packed, args.packed_seconds)
        return 0
    plan = paper_plan(args.datasets, args.seeds, shares)
    gpu = H200 if args.counted else MeasuredGPU.load(args.rates) if args.rates else None
    if isinstance(gpu, MeasuredGPU) and not gpu.covers(plan):
        raise HarnessError(f"{args.rates} was measured at other settings than the paper preset's; measure "
                           f"again with --measure")
    print("\n".join(projection_lines(plan, gpu, overhead_seconds=args.overhead_seconds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
