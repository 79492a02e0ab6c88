"""GPUs as the projection (bench/cost/projection.py) costs them: a Job's counts turned into seconds,
either from a GPU's measured images/s (MeasuredGPU, a file of bench/cost/rates/) or from the Job's
counted FLOPs over a datasheet peak times an assumed utilisation (GPU)."""
import json
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path

import torch

from bench.models import build_model
from svae.data import SPECS
from svae.errors import HarnessError
from svae.trainer import TrainConfig, Trainer, seed_everything

RATES_DIR = Path(__file__).parent / "rates"


@dataclass(frozen=True)
class Job:
    """What one trial or search candidate does: the counts its cost follows from."""
    dataset: str
    model: str
    settings: object  # bench.presets.Settings
    stages: tuple  # (epochs, training images) per stage of the model
    forward_images: int  # through the model without gradients: encoded and decoded to sample
    featurised: int  # through the scoring network


@dataclass(frozen=True)
class TrialWork:
    """One Job's work in FLOPs."""
    train_flops: float  # every stage: epochs x training images x FLOPs per image (forward and backward)
    sample_flops: float  # the sampling pass: images through the model without gradients
    score_flops: float  # scored images through the feature network

    @property
    def flops(self) -> float:
        return self.train_flops + self.sample_flops + self.score_flops

    def seconds(self, gpu: "GPU", gpus_per_trial: float = 1.0) -> float:
        """On a fraction of a GPU a trial gets that fraction of its FLOP/s (packing adds no throughput)."""
        return self.flops / (gpu.flops * min(1.0, gpus_per_trial))


@dataclass(frozen=True)
class GPU:
    """A GPU costed by counted FLOPs: its datasheet peak times an assumed utilisation."""
    name: str
    peak_flops: float  # datasheet FLOP/s at the precision the trials train in (float32)
    utilisation: float  # the assumed fraction of the peak that these small networks achieve
    source: str

    @property
    def flops(self) -> float:
        return self.peak_flops * self.utilisation

    def seconds(self, job: Job, gpus_per_trial: float = 1.0) -> float:
        return job_work(job).seconds(self, gpus_per_trial)


# The H200 SXM shares the H100's GH100 die: FP32 (non-tensor) 66.9 TFLOP/s; 989 TFLOP/s dense BF16.
# Trials train in float32 by default (--amp is bf16 autocast), so the FP32 peak is the one that
# counts; 30% of it is an assumption (docs/scaling.md compares it with what the H200 measured).
H200 = GPU("H200 SXM", 66.9e12, 0.30,
           "counted FLOPs; FP32 peak 66.9 TFLOP/s (H200 SXM specification), utilisation 30%: assumed")


@dataclass(frozen=True)
class Rates:
    """One (dataset, model)'s throughput on a GPU, images/s."""
    train: tuple  # per stage, through the Trainer
    forward: float  # the sampling pass
    features: float  # the scoring network


@dataclass(frozen=True)
class MeasuredGPU:
    """A GPU costed by its measured throughput (a file of bench/cost/rates, written by --measure)."""
    name: str
    source: str
    settings: dict  # dataset -> settings_key of the settings the rates were measured at
    rates: dict  # (dataset, model) -> Rates, one trial alone on the GPU
    packing: dict  # dataset -> {trials per GPU: their training images/s together / one trial's alone}

    def covers(self, plan) -> bool:
        return all(self.settings.get(d) == settings_key(s) for d, s in plan.settings.items()) and \
            all(cell in self.rates for cell in plan.cells)

    def seconds(self, job: Job, gpus_per_trial: float = 1.0) -> float:
        """One GPU's seconds for the Job; on 1/k of a GPU, k times that over packing k trials' gain
        (measured, else none: packing adds no throughput). That assumes every GPU holds k trials: an
        upper bound where there are fewer trials than slots."""
        r = self.rates[job.dataset, job.model]
        alone = (sum(epochs * n / rate for (epochs, n), rate in zip(job.stages, r.train))
                 + job.forward_images / r.forward + job.featurised / r.features)
        share = min(1.0, gpus_per_trial)
        per_gpu = int(1 / share + 1e-9)  # trials Ray fits on one GPU at this share
        return alone / share / self.packing.get(job.dataset, {}).get(per_gpu, 1.0)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({
            "name": self.name, "source": self.source, "settings": self.settings,
            "rates": {f"{d}/{m}": {"train": list(r.train), "forward": r.forward, "features": r.features}
                      for (d, m), r in self.rates.items()},
            "packing": self.packing}, indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> "MeasuredGPU":
        try:
            raw = json.loads(Path(path).read_text())
            rates = {tuple(key.split("/")): Rates(tuple(r["train"]), r["forward"], r["features"])
                     for key, r in raw["rates"].items()}
            packing = {d: {int(k): gain for k, gain in gains.items()} for d, gains in raw["packing"].items()}
            return cls(raw["name"], raw["source"], raw["settings"], rates, packing)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise HarnessError(f"cannot read GPU rates {path} ({type(e).__name__}: {e}); measure them again with "
                               f"python -m bench.cost.projection --measure {path}") from None


def settings_key(settings) -> str:
    """What a measured rate depends on: the networks' shapes, batch size, precision and memory format,
    and the scoring network (not the loss weights, which the searches and --set change freely)."""
    m = settings.model
    return repr((m.latent_dim, m.backbone, m.stage2_width, m.stage2_depth, settings.batch_size, settings.amp,
                 settings.channels_last, settings.fid_backbone))


def counted_flops(fn) -> float:
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


@cache
def job_work(job: Job) -> TrialWork:
    """The Job's FLOPs, counted on the CPU."""
    spec, settings = SPECS[job.dataset], job.settings
    seed_everything(0)
    model = build_model(job.model, spec, settings.model)
    images = torch.randint(0, 256, (2, spec.channels, spec.size, spec.size), dtype=torch.uint8)
    train = 0.0
    for stage, (epochs, n) in zip(model.stages(), job.stages):
        trainer = Trainer(TrainConfig(epochs=1, batch_size=2, lr=settings.lr, progress=False))
        data = stage.make_data(images)
        fit = partial(trainer.fit, stage.module, data, stage.batch_transform)
        train += epochs * n * counted_flops(fit) / 2
    x = images.float() / 255
    with torch.no_grad():
        model.eval()
        forward = counted_flops(lambda: model.decode(model.encode(x)[0])) / 2
    return TrialWork(train, job.forward_images * forward, job.featurised * feature_flops(settings.fid_backbone, spec))


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
