"""One trial: (dataset, model, seed) -> train every stage -> sample -> score -> a folder of results.

The trial writes everything into its working folder and hands it to `report(metrics, folder)`
after every epoch and once at the end; the sweep turns that into Ray Tune checkpoints. Nothing
here knows about Ray, so a trial also runs in a plain process (tests, debugging).
"""
import csv
import io
import json
import os
import signal
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from bench.models import build_model
from bench.presets import Settings
from svae.data import SPECS, load_images
from svae.io import atomic_write_bytes, atomic_write_json, atomic_write_text
from svae.samplers import available_samplers, decode, sample_latents
from svae.trainer import TrainConfig, Trainer, seed_everything

SCORED_OUTPUTS = ("x_hat", "x1", "x2", "mix")  # sigma is saved for the figures, never scored
REFERENCE_SPLIT = "test"
# Fault injection, for the fault-tolerance tests only: "nan:<trial_id>" makes that trial's training
# data NaN; "kill:<trial_id>:<epoch>" SIGKILLs its worker process right after that epoch's checkpoint
# is reported, on its first attempt only.
FAULT_ENV = "SVAE_BENCH_FAULT"


@dataclass(frozen=True)
class TrialSpec:
    dataset: str
    model: str
    seed: int

    @property
    def trial_id(self) -> str:
        return f"{self.dataset}-{self.model}-s{self.seed}"


@dataclass(frozen=True)
class Evaluation:
    """How a trial is scored: the FID engine's settings, shared by every trial of a sweep."""
    fid_weights: Optional[str] = None
    fid_cache: Optional[str] = None
    data_root: Optional[str] = None
    download: bool = False
    system_copy: bool = False  # Debian's Fashion-MNIST may stand in: only when no --data-root was given


def run_trial(spec: TrialSpec, settings: Settings, evaluation: Evaluation, folder: Path,
              report: Callable[[dict, Path], None], fault: Optional[str] = None) -> list:
    """Train, sample and score one trial in `folder`, resuming from what a checkpoint left there."""
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / "status.json").exists():  # restored from the final checkpoint: the work is done
        status = json.loads((folder / "status.json").read_text())
        report({"done": True, "attempt_id": status["attempt_id"]}, folder)
        return json.loads((folder / "rows.json").read_text())
    started = time.time()
    train = load_images(spec.dataset, "train", evaluation.data_root, evaluation.download,
                        evaluation.system_copy).images
    train = train[:settings.train_subset] if settings.train_subset else train
    test = load_images(spec.dataset, REFERENCE_SPLIT, evaluation.data_root, evaluation.download,
                       evaluation.system_copy).images
    fault = (fault or "").split(":")
    if fault[:2] == ["nan", spec.trial_id]:
        train = torch.full(train.shape, float("nan"))
    first_attempt = not any(folder.glob("checkpoint-*"))
    kill_after = int(fault[2]) if fault[:2] == ["kill", spec.trial_id] and first_attempt else None

    seed_everything(spec.seed)
    model = build_model(spec.model, SPECS[spec.dataset], settings.model)
    history = _train(model, spec, settings, train, folder, report, kill_after)
    train_seconds = time.time() - started
    image_model = [m for m in history if m["stage"] == history[0]["stage"]][-1]  # two-stage: stage 1
    summary = {"trial_id": spec.trial_id, "dataset": spec.dataset, "model": spec.model, "seed": spec.seed,
               "epochs": image_model["epoch"], "final_loss": image_model["loss"],
               "final_recon_mse": image_model["recon_mse"], "final_kl": image_model["kl"],
               "final_gamma": image_model["gamma"], "active_units": image_model["active_units"],
               "train_seconds": round(train_seconds, 3)}
    rows = [{**row, **summary} for row in _evaluate(spec, settings, evaluation, model, train, test, folder)]
    status = {"status": "finished", "error": None, "dataset": spec.dataset, "model": spec.model, "seed": spec.seed,
              "train_seconds": train_seconds, "eval_seconds": time.time() - started - train_seconds,
              "attempt_id": uuid.uuid4().hex}
    atomic_write_json(folder / "status.json", status)
    atomic_write_json(folder / "rows.json", rows)
    report({"done": True, "attempt_id": status["attempt_id"]}, folder)
    return rows


def _train(model, spec, settings, train, folder, report, kill_after) -> list:
    """Every stage in turn, each resuming from its own checkpoint; the per-epoch history of all."""
    finished = []
    for stage in model.stages():
        def on_epoch_end(history, name=stage.name):
            _write_metrics(folder, finished + [{"stage": name, **m} for m in history])
            report({"stage": name, "epoch": history[-1]["epoch"], "loss": history[-1]["loss"], "done": False}, folder)
            if history[-1]["epoch"] == kill_after:
                os.kill(os.getpid(), signal.SIGKILL)

        config = TrainConfig(epochs=max(1, round(settings.epochs * stage.epoch_factor)), batch_size=settings.batch_size,
                             lr=settings.lr, seed=spec.seed, amp=settings.amp, progress=False)
        trainer = Trainer(config, checkpoint_path=folder / f"checkpoint-{stage.name}.pt", on_epoch_end=on_epoch_end)
        finished += [{"stage": stage.name, **m} for m in trainer.fit(stage.module, stage.make_data(train))]
    _write_metrics(folder, finished)
    return finished


def _write_metrics(folder: Path, history: list) -> None:
    fields = ["stage", "epoch", "loss", "recon_mse", "kl", "gamma", "active_units", "seconds", "images_per_s"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    atomic_write_text(folder / "metrics.csv", buffer.getvalue())


def _evaluate(spec, settings, evaluation, model, train, test, folder) -> list:
    from bench.fid import FIDEngine  # the Inception network is only needed once training is done

    engine = FIDEngine(backbone=settings.fid_backbone, weights_path=evaluation.fid_weights,
                       cache_dir=evaluation.fid_cache, data_root=evaluation.data_root,
                       download=evaluation.download, system_copy=evaluation.system_copy)
    n = settings.fid_samples
    real = engine.real_stats(spec.dataset, REFERENCE_SPLIT, n)
    rows = []
    for sampler in available_samplers(model):
        z = sample_latents(model, sampler, n, train_images=train, test_images=test, gmm=settings.gmm,
                           seed=spec.seed)
        outputs = decode(model, z)
        grid = {name: _to_uint8(images[:settings.grid_samples]) for name, images in outputs.items()}
        if sampler == "recon":
            grid["original"] = test[:settings.grid_samples].numpy()
        atomic_write_bytes(folder / "samples" / f"{sampler}.npz", _npz_bytes(grid))
        for name in SCORED_OUTPUTS:
            if name in outputs:
                rows.append({"sampler": sampler, "output": name, "fid": engine.distance(outputs[name], real),
                             "n_samples": len(outputs[name]), "fid_backbone": engine.backbone_id(spec.dataset),
                             "weights_hash": engine.weights_hash(spec.dataset)})
    return rows


def _to_uint8(images: torch.Tensor) -> np.ndarray:
    return (images.clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def _npz_bytes(arrays: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def settings_json(settings: Settings) -> dict:
    return json.loads(json.dumps(asdict(settings)))
