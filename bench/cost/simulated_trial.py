"""The simulation's stand-in for a trial (bench/cost/simulate.py): the sweep runs it in place of
bench.trial.run_trial (bench/seams.py Seams.trial), with its duration and checkpoint size bound by
functools.partial. No data, model, training or scoring: it sleeps `seconds` in SIMULATED_EPOCHS steps
and writes what a real trial writes: a checkpoint of the given size each step, metrics.csv, sample
grids of every output at the real shape (random pixels: incompressible, so an upper bound),
status.json and rows.json in the results format, with a made-up score under the metric "fd_simulated".
"""
import time
import uuid
from pathlib import Path

import numpy as np
import torch

from bench.models import MODELS
from bench.tracking import final_metrics
from bench.trial import finished_rows, npz_bytes, write_metrics
from svae.data import SPECS
from svae.io import atomic_torch_save, atomic_write_bytes, atomic_write_json
from svae.preview import preview_of, write_preview
from svae.samplers import samplers_for
from svae.trainer import load_checkpoint

SIMULATED_EPOCHS = 4  # reports a simulated trial makes (a real trial: one per epoch)


def simulated_trial(spec, settings, evaluation, folder: Path, report, fault=None, *, seconds: float,
                    checkpoint_bytes: int) -> list:
    """run_trial's stand-in, taking what it takes (evaluation and fault unused): a folder restored from
    its final checkpoint is done; one restored mid-way sleeps only its remaining steps."""
    rows = finished_rows(folder, report)
    if rows is not None:
        return rows
    started = time.time()
    checkpoint = folder / "checkpoint-simulated.pt"
    done = load_checkpoint(checkpoint)["epoch"] if checkpoint.exists() else 0
    history = []
    for epoch in range(1, SIMULATED_EPOCHS + 1):
        history.append({"stage": "simulated", "epoch": epoch, "loss": 1.0 / epoch, "recon_mse": 0.1 / epoch,
                        "kl": 10.0, "gamma": 1.0, "active_units": settings.model.latent_dim,
                        "seconds": seconds / SIMULATED_EPOCHS, "images_per_s": 1.0})
        if epoch <= done:  # restored from a checkpoint
            continue
        time.sleep(seconds / SIMULATED_EPOCHS)
        atomic_torch_save({"model": torch.zeros(checkpoint_bytes, dtype=torch.uint8), "epoch": epoch,
                           "history": history}, checkpoint)
        write_metrics(folder, history)
        report({**history[-1], "stage_epochs": SIMULATED_EPOCHS, "done": False}, folder)
    data, outputs = SPECS[spec.dataset], MODELS[spec.model].outputs
    names = [*outputs, "sigma"] if "x1" in outputs else outputs  # a split model's sigma is saved, not scored
    rng = np.random.default_rng(spec.seed)
    rows, grids = [], {}
    for sampler in samplers_for(spec.model):
        shape = (settings.grid_samples, data.channels, data.size, data.size)
        grid = grids[sampler] = {name: rng.integers(0, 256, shape, dtype=np.uint8) for name in names}
        if sampler == "recon":
            grid["original"] = rng.integers(0, 256, shape, dtype=np.uint8)
        atomic_write_bytes(folder / "samples" / f"{sampler}.npz", npz_bytes(grid))
        rows += [{"sampler": sampler, "output": name, "metric": "fd_simulated", "value": 50.0 + spec.seed,
                  "value_std": None, "higher_is_better": False, "settings": None, "n_samples": settings.fid_samples,
                  "reference_n": settings.fid_samples, "extractor": "simulated", "extractor_id": "simulated",
                  "weights_hash": None} for name in outputs]
    write_preview(folder, preview_of(grids))  # as a real trial's (no nearest training images: no data here)
    summary = {"trial_id": spec.trial_id, "dataset": spec.dataset, "model": spec.model, "seed": spec.seed,
               "epochs": SIMULATED_EPOCHS, "final_loss": history[-1]["loss"],
               "final_recon_mse": history[-1]["recon_mse"], "final_kl": history[-1]["kl"],
               "final_gamma": history[-1]["gamma"], "active_units": history[-1]["active_units"],
               "train_seconds": round(time.time() - started, 3)}
    rows = [{**row, **summary} for row in rows]
    status = {"status": "finished", "error": None, "dataset": spec.dataset, "model": spec.model, "seed": spec.seed,
              "train_seconds": time.time() - started, "eval_seconds": 0.0, "attempt_id": uuid.uuid4().hex}
    atomic_write_json(folder / "status.json", status)
    atomic_write_json(folder / "rows.json", rows)
    report({"done": True, "attempt_id": status["attempt_id"], **final_metrics(rows)}, folder)
    return rows
