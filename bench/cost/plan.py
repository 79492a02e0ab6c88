"""What a sweep will do and cost, printed before anything runs; `--dry-run` prints it and stops
(without reading the data or the FID weights).

The plan lists the trials, every stage's epochs, the samples each trial scores, and the resources.
The cost comes from a probe on this machine: every model's every stage trains a few batches at the
preset's settings (images/s), the model encodes and decodes a batch without gradients (the sampling
pass), and the feature network that scores samples runs a few batches. The probe writes nothing and
starts no Ray. Not included, because they are paid once per dataset or are small: the real-image
statistics, the fd_domain classifier's training, and the GMM fits.
"""
import io
import math
import os
import sys
import time
from dataclasses import dataclass, field, replace

import torch

from bench.models import MODELS, build_model
from svae.contract import frechet_name, metric_label
from bench.resources import describe, per_dataset
from bench.trial import scored_epoch
from svae.data import SPECS
from svae.errors import HarnessError
from svae.samplers import decode, latent_means, samplers_for
from svae.trainer import TrainConfig, Trainer, seed_everything

DAYS_ON_CPUS_S = 24 * 3600  # a plan for CPUs only that is estimated to take longer asks to be confirmed
RAY_CHECKPOINTS_KEPT = 1  # bench/sweep.py's CheckpointConfig(num_to_keep=1): copies per trial in the storage
PROBE_BATCHES = 2  # timed batches per stage, after one warm-up batch
NETWORK_WORDS = {"inception": "FID's Inception", "domain": "the fd_domain classifier"}
PROBE_FEATURE_IMAGES = 8  # images through the scoring network (Inception: about 1 s on a CPU core)


def training_images(dataset: str, s) -> int:
    """Training images per epoch: the split, or the preset's subset of it."""
    total = SPECS[dataset].train_images
    return min(s.train_subset or total, total)


def forward_images(s, samplers: list, n_train: int) -> int:
    """Images a trial passes through the model without gradients: it decodes every sampler's
    samples, encodes the GMM's fitting images, and encodes and decodes the recon inputs."""
    return len(samplers) * s.fid_samples + min(s.gmm.fit_n, n_train) + s.fid_samples


def curve_images(s, model_name: str, last_stage_epochs: int) -> dict:
    """CellCost's curve fields: the images that a trial's quality against epochs (bench/trial.py
    CurveScores) passes through the model (decoded, and encoded for the GMM) and the scoring network."""
    if not s.curve_every:
        return {}
    points = sum(scored_epoch(e, last_stage_epochs, s.curve_every) for e in range(1, last_stage_epochs + 1))
    encoded = min(s.gmm.fit_n, s.curve_n) if MODELS[model_name].compared_at == "gmm" else 0
    passes = len([o for o in MODELS[model_name].outputs if o != "mix"])
    return {"curve_forward": points * (s.curve_n + encoded), "curve_featurised": points * passes * s.curve_n}


@dataclass
class StageCost:
    name: str
    epochs: int
    images: int  # training examples per epoch
    images_per_s: float

    @property
    def seconds(self) -> float:
        return self.epochs * self.images / self.images_per_s


@dataclass
class CellCost:
    """One (dataset, model): what a trial of it does and what it costs here."""
    stages: list
    samplers: list
    outputs: list  # scored outputs per sampler
    samples: int  # generated images per output
    forward_images: int  # images through the model to sample: encoded (GMM fit, recon) and decoded
    forward_per_s: float
    features_per_s: float
    trial_bytes: int  # the trial folder: every stage's checkpoint (weights and Adam's moments) and grids
    # (network, images through it, its images/s) of each beside backbone: the compared sampler's outputs only
    beside: tuple = ()
    curve_forward: int = 0  # quality against epochs (curve_images)
    curve_featurised: int = 0

    @property
    def scored(self) -> int:
        return len(self.samplers) * len(self.outputs) * self.samples

    @property
    def featurised(self) -> int:
        """Images through the scoring network: mix is scored from x1's and x2's features, no pass of its own
        (bench/trial.py output_features)."""
        return len(self.samplers) * len([o for o in self.outputs if o != "mix"]) * self.samples

    @property
    def forward_total(self) -> int:
        """Images through the model without gradients: sampling, and scoring during training."""
        return self.forward_images + self.curve_forward

    @property
    def featurised_total(self) -> int:
        """Images through the scoring network: the final scores, and those during training."""
        return self.featurised + self.curve_featurised

    @property
    def seconds(self) -> float:
        return (sum(s.seconds for s in self.stages) + self.forward_total / self.forward_per_s
                + self.featurised_total / self.features_per_s + sum(n / rate for _, n, rate in self.beside))


@dataclass
class Plan:
    grid: list  # TrialSpec
    preset: str
    settings: dict  # dataset -> Settings
    cells: dict  # (dataset, model) -> CellCost
    device: str
    cpus_per_trial: float
    gpus_per_trial: dict  # dataset -> GPUs per trial (bench/resources.py)
    concurrency: int
    notes: list = field(default_factory=list)

    def trial_seconds(self) -> dict:
        """trial_id -> estimated seconds."""
        return {s.trial_id: self.cells[s.dataset, s.model].seconds for s in self.grid}

    @property
    def seconds(self) -> float:
        times = self.trial_seconds().values()
        return max(sum(times) / self.concurrency, max(times))

    @property
    def disk_bytes(self) -> int:
        # the run directory keeps one copy of each trial folder, the storage the last checkpoints
        return sum(self.cells[s.dataset, s.model].trial_bytes for s in self.grid) * (1 + RAY_CHECKPOINTS_KEPT)

    @property
    def days_on_cpus(self) -> bool:
        return self.device == "cpu" and self.seconds > DAYS_ON_CPUS_S

    def lines(self) -> list:
        datasets = list(self.settings)
        models = list(dict.fromkeys(s.model for s in self.grid))
        seeds = sorted({s.seed for s in self.grid})
        out = [f"plan: {len(self.grid)} trials = {len(datasets)} dataset(s) x {len(models)} model(s) x "
               f"{len(seeds)} seed(s) (seeds {seeds[0]}..{seeds[-1]}), preset {self.preset}"]
        for dataset in datasets:
            s = self.settings[dataset]
            out.append(f"  {dataset}: {self.cells[dataset, models[0]].stages[0].images} training images, "
                       f"batch {s.batch_size}, lr {s.lr:g}; {s.fid_samples} samples per output, "
                       f"scored with {scoring_words(s)}")
            out += curve_lines(s)
            for model in models:
                cell = self.cells[dataset, model]
                stages = ", ".join(f"{st.name} {st.epochs} epochs at {st.images_per_s:.0f} images/s"
                                   for st in cell.stages)
                out.append(f"    {model:10s} {stages}; {cell.scored} samples scored "
                           f"({len(cell.samplers)} samplers x {len(cell.outputs)} outputs){beside_words(cell)}; "
                           f"~{duration(cell.seconds)} per trial")
        out.append(f"  resources: {self.cpus_per_trial:g} CPU and {describe(self.gpus_per_trial)} per trial, "
                   f"{self.concurrency} "
                   f"trial(s) at once; probe device {self.device}")
        total = sum(self.trial_seconds().values())
        out.append(f"  estimate: ~{duration(self.seconds)} wall time (trials {duration(total)} in all, "
                   f"{self.concurrency} at once), ~{size(self.disk_bytes)} on disk (run directory and Ray storage)")
        from bench.cost.search_cost import search_lines  # it imports this module's duration
        out += search_lines(self)
        out += [f"  note: {n}" for n in self.notes]
        if self.days_on_cpus:
            out.append(f"  this plan would take days on CPUs only (more than {DAYS_ON_CPUS_S // 3600} h): run it "
                       f"on GPUs, or shrink it (--preset smoke, --set epochs=N, fewer --datasets/--seeds)")
        return out


def scoring_words(s) -> str:
    """The networks that score, as the plan names them: fd_domain, and FID on the claims' outputs."""
    beside = [metric_label(frechet_name(b)) for b in s.backbones()[1:]]
    return metric_label(frechet_name(s.fid_backbone)) + (
        f", and {' and '.join(beside)} on the outputs the claims compare (each model at its own sampler)"
        if beside else "")


def curve_lines(s) -> list:
    """How often a trial scores its quality against epochs (bench/trial.py CurveScores), if it does."""
    return [f"    quality against epochs: every {s.curve_every} epoch(s) of the last stage, "
            f"{s.curve_n} samples of each model's own sampler"] if s.curve_every else []


def beside_words(cell: CellCost, timed: bool = True) -> str:
    """The images a trial passes through each beside network, and (timed) their time at the probed rate."""
    return "".join(f", {n} images through {NETWORK_WORDS[name]}" + (f" (~{duration(n / rate)})" if timed else "")
                   for name, n, rate in cell.beside)


def beside_images(model_name: str, s) -> int:
    """Images through each beside network: the compared sampler's outputs, mix from x1's and x2's features."""
    return len([o for o in MODELS[model_name].outputs if o != "mix"]) * s.fid_samples


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def concurrency(trials: int, cpus_per_trial: float, gpus_per_trial: float, max_concurrent=None) -> int:
    """Trials at once on this machine, as Ray packs them: CPUs (and GPUs) divided by a trial's share
    (with shares per dataset, the largest: a lower bound)."""
    slots = math.floor(os.cpu_count() / cpus_per_trial)
    if gpus_per_trial:
        slots = min(slots, math.floor(torch.cuda.device_count() / gpus_per_trial))
    if max_concurrent:
        slots = min(slots, max_concurrent)
    return max(1, min(slots, trials))


def make_plan(grid: list, preset: str, settings: dict, cpus_per_trial: float, gpus_per_trial,
              max_concurrent=None, remote: bool = False, probe_batches: int = PROBE_BATCHES,
              feature_images: int = PROBE_FEATURE_IMAGES, progress=lambda line: None) -> Plan:
    """Probe every (dataset, model) of the grid on this machine and return the plan with its costs.
    A longer probe (more batches and feature images) measures a GPU's throughput past its warm-up;
    progress(line) hears of each cell as its probe starts."""
    if gpus_per_trial is None:  # as bench.run decides once Ray is up: a GPU per trial when there are GPUs
        gpus_per_trial = 1.0 if torch.cuda.device_count() > 0 else 0.0
    gpus_per_trial = per_dataset(gpus_per_trial, settings)
    device = "cuda" if any(gpus_per_trial.values()) and torch.cuda.is_available() else "cpu"
    threads = torch.get_num_threads()
    # as a trial runs, but never more threads than this machine has cores (--cpus-per-trial 4096 is
    # refused once Ray knows its nodes; the probe must not spawn 4096 threads first)
    probe_threads = max(1, min(int(cpus_per_trial), os.cpu_count() or 1))
    torch.set_num_threads(probe_threads)
    try:
        cells = {}
        models = list(dict.fromkeys(spec.model for spec in grid))
        for dataset, s in settings.items():
            rates = {}
            for backbone in s.backbones():
                progress(f"probing {dataset}'s scoring network ({frechet_name(backbone)})")
                rates[backbone] = features_per_second(backbone, SPECS[dataset], device, feature_images)
            for model in models:
                progress(f"probing {dataset} {model} ({len(cells) + 1} of {len(settings) * len(models)})")
                cell = cell_cost(dataset, model, s, device, rates[s.fid_backbone], probe_batches)
                cells[dataset, model] = replace(cell, beside=tuple((b, beside_images(model, s), rates[b])
                                                                   for b in s.backbones()[1:]))
    finally:
        torch.set_num_threads(threads)
    notes = [f"probe: this machine, {probe_batches} batches per stage, {probe_threads} torch "
             f"thread(s); not included: real-image statistics, the fd_domain classifier and GMM fits"]
    if remote:
        notes.append("the cluster's nodes and free resources are known only once Ray starts: the estimate "
                     "assumes nodes like this machine" + ("" if max_concurrent else " and this machine's CPUs"))
    return Plan(grid=grid, preset=preset, settings=settings, cells=cells, device=device,
                cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial,
                concurrency=concurrency(len(grid), cpus_per_trial, max(gpus_per_trial.values()), max_concurrent),
                notes=notes)


def counted_plan(grid: list, preset: str, settings: dict, cpus_per_trial: float, gpus_per_trial,
                 max_concurrent=None) -> Plan:
    """The plan's counts (stages, epochs, images, samples) without a probe: every rate is 1 image/s,
    so its times mean nothing until a measured rate (bench/cost/rates, or make_plan's probe) costs them."""
    cells = {}
    for dataset, s in settings.items():
        n_train = training_images(dataset, s)
        for model_name in dict.fromkeys(spec.model for spec in grid):
            with torch.device("meta"):  # only the stages' names and epochs are read: no weights allocated
                model = build_model(model_name, SPECS[dataset], s.model)
            samplers = samplers_for(model_name)
            stages = [StageCost(st.name, max(1, round(s.epochs * st.epoch_factor)), n_train, 1.0)
                      for st in model.stages()]
            cells[dataset, model_name] = CellCost(stages, samplers, list(MODELS[model_name].outputs), s.fid_samples,
                                                  forward_images(s, samplers, n_train), 1.0, 1.0, 0,
                                                  tuple((b, beside_images(model_name, s), 1.0)
                                                        for b in s.backbones()[1:]),
                                                  **curve_images(s, model_name, stages[-1].epochs))
    gpus = per_dataset(gpus_per_trial, settings)
    return Plan(grid, preset, settings, cells, "none", cpus_per_trial, gpus,
                concurrency(len(grid), cpus_per_trial, max(gpus.values()), max_concurrent))


def cell_cost(dataset: str, model_name: str, s, device: str, features_per_s: float,
              probe_batches: int = PROBE_BATCHES) -> CellCost:
    spec = SPECS[dataset]
    seed_everything(0)
    model = build_model(model_name, spec, s.model)
    n_train = training_images(dataset, s)
    images = torch.randint(0, 256, (s.batch_size * (1 + probe_batches), spec.channels, spec.size, spec.size),
                           dtype=torch.uint8)
    stages, trial_bytes = [], 0
    for stage in model.stages():
        data = stage.make_data(images)
        rate = train_images_per_second(stage, data, s, device)
        stages.append(StageCost(stage.name, max(1, round(s.epochs * stage.epoch_factor)), n_train, rate))
        trial_bytes += 3 * state_bytes(stage.module)  # weights, and Adam's two moments of the same size
    outputs = decode(model.cpu(), torch.zeros(2, s.model.latent_dim))
    scored = list(MODELS[model_name].outputs)
    samplers = samplers_for(model_name)
    trial_bytes += len(samplers) * s.grid_samples * len(outputs) * spec.channels * spec.size ** 2  # npz grids
    return CellCost(stages=stages, samplers=samplers, outputs=scored, samples=s.fid_samples,
                    forward_images=forward_images(s, samplers, n_train),
                    forward_per_s=forward_images_per_second(model, images, device),
                    features_per_s=features_per_s, trial_bytes=trial_bytes,
                    **curve_images(s, model_name, stages[-1].epochs))


def train_images_per_second(stage, data: torch.Tensor, s, device: str) -> float:
    """Images/s of the shared Trainer on a stage's data less its first batch, a warm-up."""
    trainer = Trainer(TrainConfig(epochs=1, batch_size=s.batch_size, lr=s.lr, amp=s.amp, device=device,
                                  progress=False, channels_last=s.channels_last))
    trainer.fit(stage.module, data[:s.batch_size], stage.batch_transform)
    started = time.perf_counter()
    trainer.fit(stage.module, data[s.batch_size:], stage.batch_transform)
    _synchronize(device)
    return (len(data) - s.batch_size) / (time.perf_counter() - started)


def forward_images_per_second(model, images: torch.Tensor, device: str) -> float:
    """Images/s through the encoder and decoder without gradients, batched as a trial samples
    (svae/samplers.py), after a warm-up batch of 8."""
    model.to(device)
    decode(model, latent_means(model, images[:8]))
    _synchronize(device)
    started = time.perf_counter()
    decode(model, latent_means(model, images))
    return len(images) / (time.perf_counter() - started)  # both return CPU tensors: nothing left queued


def features_per_second(backbone: str, spec, device: str, n: int = PROBE_FEATURE_IMAGES) -> float:
    """Images/s through the network that scores samples, as a trial scores (batches of 100, the
    extractor's preprocessing), with random weights, after a warm-up batch of 2."""
    from bench.metrics.extractors import FIDInception, features, fid_inception_v3
    if backbone == "inception":
        forward = FIDInception(fid_inception_v3().state_dict()).to(device)
        if torch.device(device).type == "cpu":  # as inception_extractor: ONNX Runtime's, exported in memory (~10 s)
            from bench.metrics.onnx_engine import on_onnxruntime
            forward = on_onnxruntime(forward, None)
    else:
        from bench.domain import DomainNet
        forward = DomainNet(spec.channels, spec.size, 10).to(device).eval()
    images = torch.randint(0, 256, (n, spec.channels, spec.size, spec.size), dtype=torch.uint8)
    features(forward, images[:2], device=device)
    started = time.perf_counter()
    features(forward, images, device=device)
    return n / (time.perf_counter() - started)  # features() returns CPU arrays: nothing left queued


def _synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def state_bytes(module) -> int:
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    return buffer.tell()


def confirm(question: str, assume_yes: bool) -> None:
    """Go on if assume_yes or the user answers yes at a terminal; otherwise a HarnessError naming --yes."""
    if assume_yes:
        return
    if sys.stdin.isatty():
        if input(f"{question} [y/N] ").strip().lower() in ("y", "yes"):
            return
        raise HarnessError(f"not confirmed: {question}; nothing was started")
    raise HarnessError(f"{question} Not started: pass --yes to run it anyway")
