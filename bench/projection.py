"""python -m bench.projection: what the paper grid costs on GPUs this project has not measured on.

A trial's work is counted in FLOPs at the preset's settings (torch's FlopCounterMode on a batch of
two: every stage's training step per image, times its epochs and training images; the sampling pass
per image through the model; the scoring network per scored image), and divided by a GPU's
effective FLOP/s: its datasheet peak times an assumed utilisation (GPU below, with its sources). The
grid's trials are then packed onto the slots (GPUs / GPUs per trial, longest first, as a greedy
scheduler would) for the wall time; GPU hours are counted two ways: busy (the trials' own work) and
held (wall time x GPUs, what a reservation pays). `--dry-run` prints the same for the planned run.

The baseline searches (bench/search.py) come first: one after another, each a wave of candidates
(one per grid value: trained for the search's share of the epochs on the training images less the
validation split, sampled, and scored with the validation images) packed onto the same slots.

What it leaves out: data loading and Python overhead per step (small networks on a fast GPU may be
bound by them rather than by FLOPs: the utilisation assumption stands for that), the real-image
statistics and fd_domain classifiers (once per dataset), and the GMM fits.
"""
import argparse
import heapq
import sys
from dataclasses import dataclass, replace

import torch

from bench.models import MODELS, build_model
from svae.data import SPECS
from svae.samplers import samplers_for
from svae.trainer import TrainConfig, Trainer, seed_everything


@dataclass(frozen=True)
class GPU:
    name: str
    peak_flops: float  # datasheet FLOP/s at the precision the trials train in (float32)
    utilisation: float  # the assumed fraction of the peak that these small networks achieve
    source: str

    @property
    def flops(self) -> float:
        return self.peak_flops * self.utilisation


# The H200 SXM shares the H100's GH100 die: FP32 (non-tensor) 66.9 TFLOP/s; 989 TFLOP/s dense BF16.
# Trials train in float32 by default (--amp is bf16 autocast), so the FP32 peak is the one that
# counts; 30% of it is an assumption, not a measurement (convolutions on 32x32 and 64x64 images at
# batch 100 rarely fill a Hopper GPU).
H200 = GPU("H200 SXM", 66.9e12, 0.30,
           "FP32 peak 66.9 TFLOP/s (H200 SXM specification, GH100 die as the H100); utilisation 30%: assumed")
PROJECTED_GPUS = (8, 32, 128)


@dataclass(frozen=True)
class TrialWork:
    """One (dataset, model) trial's work in FLOPs."""
    train_flops: float  # every stage: epochs x training images x FLOPs per image (forward and backward)
    sample_flops: float  # the sampling pass: images through the model without gradients
    score_flops: float  # scored images through the feature network

    @property
    def flops(self) -> float:
        return self.train_flops + self.sample_flops + self.score_flops

    def seconds(self, gpu: GPU, gpus_per_trial: float = 1.0) -> float:
        """On a fraction of a GPU a trial gets that fraction of its FLOP/s (packing adds no throughput)."""
        return self.flops / (gpu.flops * min(1.0, gpus_per_trial))


@dataclass(frozen=True)
class Projection:
    gpus: int
    slots: int
    wall_seconds: float  # the searches, then the grid
    search_wall_seconds: float
    busy_gpu_hours: float
    held_gpu_hours: float


def counted_flops(fn) -> float:
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def trial_work(dataset: str, model_name: str, settings, stages: list, forward_images: int, scored: int) -> TrialWork:
    """FLOPs of one trial; `stages` [(epochs, training images)] and the image counts come from the plan."""
    spec = SPECS[dataset]
    seed_everything(0)
    model = build_model(model_name, spec, settings.model)
    images = torch.randint(0, 256, (2, spec.channels, spec.size, spec.size), dtype=torch.uint8)
    train = 0.0
    for stage, (epochs, n) in zip(model.stages(), stages):
        trainer = Trainer(TrainConfig(epochs=1, batch_size=2, lr=settings.lr, progress=False))
        data = stage.make_data(images)
        train += epochs * n * counted_flops(lambda: trainer.fit(stage.module, data, stage.batch_transform)) / 2
    x = images.float() / 255
    with torch.no_grad():
        model.eval()
        forward = counted_flops(lambda: model.decode(model.encode(x)[0])) / 2
    return TrialWork(train, forward_images * forward, scored * feature_flops(settings.fid_backbone, spec))


def feature_flops(backbone: str, spec) -> float:
    """FLOPs per image of the network that scores samples (random weights: the count is the same)."""
    with torch.no_grad():
        if backbone == "inception":
            import torchvision
            net = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False).eval()
            return counted_flops(lambda: net(torch.rand(1, 3, 299, 299)))
        from bench.domain import DomainNet
        net = DomainNet(spec.channels, spec.size, 10).eval()
        return counted_flops(lambda: net.features(torch.rand(1, spec.channels, spec.size, spec.size)))


def makespan(seconds: list, slots: int) -> float:
    """Wall time of trials packed longest first onto `slots` slots, each started when a slot frees."""
    free = [0.0] * max(1, slots)
    for s in sorted(seconds, reverse=True):
        heapq.heapreplace(free, free[0] + s)
    return max(free)


def project(seconds: list, gpus: int, gpus_per_trial: float, overhead_seconds: float = 0.0,
            searches: list = ()) -> Projection:
    """The sweep's wall time and GPU hours on `gpus` GPUs: `searches` (one list of candidate seconds
    per search, run one search after another) and then the grid (`seconds` per trial), all at the
    trial's GPU share, each plus a per-trial overhead (the driver's, measured by bench/simulate.py)."""
    slots = max(1, int(gpus / gpus_per_trial))
    waves = [[s + overhead_seconds for s in candidates] for candidates in searches]
    trials = [s + overhead_seconds for s in seconds]
    search_wall = sum(makespan(wave, slots) for wave in waves)
    wall = search_wall + makespan(trials, slots)
    busy = sum(trials) + sum(map(sum, waves))
    return Projection(gpus=gpus, slots=slots, wall_seconds=wall, search_wall_seconds=search_wall,
                      busy_gpu_hours=busy * gpus_per_trial / 3600, held_gpu_hours=wall * gpus / 3600)


def plan_work(plan) -> dict:
    """(dataset, model) -> TrialWork for every cell of a bench.plan Plan."""
    return {(d, m): trial_work(d, m, plan.settings[d], [(st.epochs, st.images) for st in cell.stages],
                               cell.forward_images, cell.scored)
            for (d, m), cell in plan.cells.items()}


def search_work(plan) -> list:
    """A list of candidates' TrialWork for each search the sweep runs before the grid (bench/search.py):
    every searched model of the plan on every dataset, when the preset searches."""
    from bench.plan import training_images
    from bench.search import budget, validation_size
    out = []
    for dataset, settings in plan.settings.items():
        if not settings.search:
            continue
        n_train = training_images(dataset, settings)
        n_val = validation_size(n_train, settings)
        short = replace(settings, epochs=budget(settings))
        for model in sorted({s.model for s in plan.grid if MODELS[s.model].search}):
            stages = [(max(1, round(short.epochs * st.epoch_factor)), n_train - n_val)
                      for st in build_model(model, SPECS[dataset], settings.model).stages()]
            encoded = min(settings.gmm.fit_n, n_train - n_val)  # the GMM's fitting images
            candidate = trial_work(dataset, model, short, stages, n_val + encoded, 2 * n_val)  # samples, validation
            out.append([candidate] * len(MODELS[model].search[1]))
    return out


def projection_lines(plan, gpu: GPU = H200, gpu_counts=PROJECTED_GPUS, overhead_seconds: float = 0.0) -> list:
    from bench.plan import duration
    work = plan_work(plan)
    share = plan.gpus_per_trial or 1.0
    seconds = [work[s.dataset, s.model].seconds(gpu, share) for s in plan.grid]
    searches = [[c.seconds(gpu, share) for c in candidates] for candidates in search_work(plan)]
    out = [f"projection on {gpu.name} GPUs, {share:g} GPU per trial ({gpu.source}); "
           f"{len(searches)} searches ({sum(map(len, searches))} candidates) first, then the grid:"]
    out += [f"  {p.gpus:4d} GPUs ({p.slots} trials at once): ~{duration(p.wall_seconds)} wall time "
            f"(searches ~{duration(p.search_wall_seconds)}), {p.busy_gpu_hours:.3g} GPU hours busy, "
            f"{p.held_gpu_hours:.3g} held"
            for p in (project(seconds, g, share, overhead_seconds, searches) for g in gpu_counts)]
    longest = max(plan.grid, key=lambda s: work[s.dataset, s.model].flops)
    out.append(f"  the longest trial, {longest.dataset} {longest.model}: "
               f"~{duration(work[longest.dataset, longest.model].seconds(gpu, share))} (no GPU count goes below it)")
    return out


def main(argv=None) -> int:
    """The paper grid's projection without the CPU throughput probe: the plan's counts, FLOPs only."""
    from bench.plan import CellCost, Plan, StageCost, forward_images, training_images
    from bench.presets import settings_for
    from bench.trial import TrialSpec
    p = argparse.ArgumentParser(prog="python -m bench.projection", description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="*", default=["mnist", "cifar10", "celeba"])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--gpus-per-trial", type=float, default=1.0)
    p.add_argument("--overhead-seconds", type=float, default=0.0, help="the driver's overhead per trial")
    args = p.parse_args(argv)
    settings = {d: settings_for("paper", d) for d in args.datasets}
    grid = [TrialSpec(d, m, s) for d in args.datasets for m in MODELS for s in range(args.seeds)]
    cells = {}
    for d, s in settings.items():
        for m in MODELS:
            model, n_train, samplers = build_model(m, SPECS[d], s.model), training_images(d, s), samplers_for(m)
            stages = [StageCost(st.name, max(1, round(s.epochs * st.epoch_factor)), n_train, 1.0)
                      for st in model.stages()]
            cells[d, m] = CellCost(stages, samplers, list(MODELS[m].outputs), s.fid_samples,
                                   forward_images(s, samplers, n_train), 1.0, 1.0, 0)
    plan = Plan(grid, "paper", settings, cells, "none", 1, args.gpus_per_trial, 1)
    print("\n".join(projection_lines(plan, overhead_seconds=args.overhead_seconds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
