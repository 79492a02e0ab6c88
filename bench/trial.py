"""One trial: (dataset, model, seed) -> train every stage -> sample -> score -> a folder of results.

The trial writes everything into its working folder and hands it to `report(metrics, folder)`
after every epoch and once at the end; the sweep reports the metrics to Ray Tune and, from time to
time, the folder as a checkpoint (bench/sweep.py). Nothing
here knows about Ray, so a trial also runs in a plain process (tests, debugging).
"""
import csv
import io
import json
import time
import uuid
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from collections.abc import Callable

import numpy as np
import torch

from bench.faults import injected, kill_worker
from bench.gamma import gamma_check
from bench.memorisation import EXTRACTOR_ID as MEMORISATION_EXTRACTOR_ID
from bench.memorisation import METRIC as MEMORISATION_METRIC
from bench.memorisation import memorisation, nearest_training
from bench.models import MODELS, build_model
from bench.presets import Settings
from bench.tracking import final_metrics
from svae.data import SPECS, load_images
from svae.io import atomic_torch_save, atomic_write_bytes, atomic_write_json, atomic_write_text, read_status
from svae.preview import PREVIEW_IMAGES, preview_of, write_preview
from svae.samplers import (decode, interpolation_latents, mix_halves, orient_components, oriented, sample_latents,
                           samplers_for)
from svae.trainer import TrainConfig, Trainer, load_checkpoint, seed_everything

REFERENCE_SPLIT = "test"


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
    fid_weights: str | None = None
    fid_cache: str | None = None
    data_root: str | None = None
    download: bool = False
    reference_split: str = REFERENCE_SPLIT  # FID's real images, and the recon sampler's inputs
    system_copy: bool = False  # Debian's Fashion-MNIST may stand in: only when no --data-root was given
    fid_threads: int | None = None  # FID's Inception threads on CPUs (ONNX Runtime); None: torch's, the trial's


def run_trial(spec: TrialSpec, settings: Settings, evaluation: Evaluation, folder: Path,
              report: Callable[[dict, Path], None], fault: str | None = None, load=None) -> list:
    """Train, sample and score one trial in `folder`, resuming from what a checkpoint left there.
    `fault`: bench/faults.py; `load`: what reads its images (load_data; the benchmarks time it)."""
    rows = finished_rows(folder, report)
    if rows is not None:
        return rows
    started = time.time()
    train, test = (load or load_data)(spec, settings, evaluation)
    train, kill_after = injected(fault, spec.trial_id, train, first_attempt=not any(folder.glob("checkpoint-*")))

    seed_everything(spec.seed)
    model = build_model(spec.model, SPECS[spec.dataset], settings.model)
    curve = CurveScores(spec, settings, evaluation, model, train, test) if settings.curve_every else None
    history = _train(model, spec, settings, train, folder, report, kill_after, curve)
    trained = time.time()
    train_seconds = trained - started - (curve.seconds if curve else 0.0)  # scoring during training is not training
    image_model = [m for m in history if m["stage"] == history[0]["stage"]][-1]  # two-stage: stage 1
    summary = {"trial_id": spec.trial_id, "dataset": spec.dataset, "model": spec.model, "seed": spec.seed,
               "epochs": image_model["epoch"], "final_loss": image_model["loss"],
               "final_recon_mse": image_model.get("recon_mse"), "final_kl": image_model.get("kl"),
               "final_gamma": image_model.get("gamma"), "active_units": image_model["active_units"],
               "gamma_check": gamma_check(image_model) if MODELS[spec.model].learns_gamma else None,
               "train_seconds": round(train_seconds, 3)}
    rows = [{**row, **summary} for row in _evaluate(spec, settings, evaluation, model, train, test, folder)]
    status = {"status": "finished", "error": None, "dataset": spec.dataset, "model": spec.model, "seed": spec.seed,
              "train_seconds": train_seconds, "eval_seconds": time.time() - trained,
              "curve_seconds": curve.seconds if curve else None,
              "attempt_id": uuid.uuid4().hex}
    atomic_write_json(folder / "status.json", status)
    atomic_write_json(folder / "rows.json", rows)
    _keep_final_weights(folder)  # after status.json: a folder without it still holds resumable checkpoints
    report({"done": True, "attempt_id": status["attempt_id"], **final_metrics(rows)}, folder)
    return rows


def finished_rows(folder: Path, report: Callable[[dict, Path], None]) -> list | None:
    """A trial's rows if its folder was restored from its final checkpoint (the work is done; reported
    so), else None; the folder exists afterwards."""
    folder.mkdir(parents=True, exist_ok=True)
    status = read_status(folder)
    if status is None:
        return None
    report({"done": True, "attempt_id": status["attempt_id"]}, folder)
    return json.loads((folder / "rows.json").read_text())


def final_checkpoint_name(name: str) -> str:
    """A trial's checkpoint file as the run directory keeps it once the trial has finished."""
    return name.replace("checkpoint-", "checkpoint-final-", 1)


def restore_model(spec: TrialSpec, settings: Settings, folder: Path):
    """A finished trial's trained model from its final checkpoints (checkpoint-final-<stage>.pt in
    `folder`): sampling draws from seeded generators only, so nothing else of the trial is needed."""
    model = build_model(spec.model, SPECS[spec.dataset], settings.model)
    for stage in model.stages():
        final = folder / final_checkpoint_name(f"checkpoint-{stage.name}.pt")
        stage.module.load_state_dict(load_checkpoint(final)["model"])
    return model


def _train(model, spec, settings, train, folder, report, kill_after, curve=None) -> list:
    """Every stage in turn, each resuming from its own checkpoint; the per-epoch history of all.
    curve (CurveScores): scores the last stage's epochs, its figures kept in their metrics."""
    finished = []
    stages = model.stages()
    for stage in stages:
        def on_epoch_end(history, name=stage.name):  # called within this stage's fit: the loop variables are current
            write_metrics(folder, finished + [{"stage": name, **m} for m in history])  # noqa: B023
            report({**history[-1], "stage": name, "stage_epochs": config.epochs, "done": False}, folder)  # noqa: B023
            if history[-1]["epoch"] == kill_after:
                kill_worker()

        config = train_config(settings, stage, spec.seed)
        scores = partial(curve, epochs=config.epochs) if curve and stage is stages[-1] else None
        trainer = Trainer(config, checkpoint_path=folder / f"checkpoint-{stage.name}.pt", on_epoch_end=on_epoch_end,
                          epoch_scores=scores)
        history = trainer.fit(stage.module, stage.make_data(train), stage.batch_transform)
        finished += [{"stage": stage.name, **m} for m in history]
    write_metrics(folder, finished)
    return finished


def score_now(model, spec: TrialSpec, settings: Settings, scorer, train, held_out, reference, scored=None) -> list:
    """Rows of the model's own sampler at its present weights against `reference` (`scored`: score_outputs'),
    leaving its mode and every RNG as they were (training goes on as if it had not been scored). x1 and
    x2 are the decoder's raw components: a trial's orientation is known only once it has trained."""
    was_training = model.training
    sampler = MODELS[spec.model].compared_at
    with torch.random.fork_rng():
        z = sample_latents(model, sampler, settings.fid_samples, train_images=train, test_images=held_out,
                           gmm=settings.gmm, seed=spec.seed)
        rows = score_outputs(scorer, spec, sampler, decode(model, z), settings, None, reference, scored)
    model.train(was_training)
    return rows


CURVE_OUTPUTS = ("x_hat_", "x1_", "x2_", "mix_")  # metrics.csv's <output>_<metric> columns (mix: before 2026-12-07)


def scored_epoch(epoch: int, epochs: int, every: int) -> bool:
    """Whether quality against epochs is scored after `epoch` of `epochs`: every `every`-th, and the last."""
    return epoch % every == 0 or epoch == epochs


class CurveScores:
    """A trial's quality against epochs (Settings.curve_every): called after each epoch of the model's last
    stage, it returns {"<output>_<metric>": value, "curve_seconds": s} after the epochs scored_epoch
    names, else {}. Each output of the model's own sampler but mix (x1 and x2 raw: reports/rundir.py
    names them by the trial's orientation, which a mix of halves cannot follow), Settings.curve_n of
    them (the GMM fitted on as many training latents) against as many reference images, scored with
    fid_backbone's Frechet distance only; the scoring network is made at the first score."""

    def __init__(self, spec: TrialSpec, settings: Settings, evaluation: Evaluation, model, train, test):
        n = settings.curve_n
        self.settings = replace(settings, fid_samples=n, metrics=("fid",),
                                gmm=replace(settings.gmm, fit_n=min(settings.gmm.fit_n, n)))
        self.spec, self.evaluation, self.model, self.train, self.held_out = spec, evaluation, model, train, test[:n]
        self.scored = [o for o in MODELS[spec.model].outputs if o != "mix"]
        self.scorer = self.reference = None
        self.seconds = 0.0  # spent scoring in this process

    def __call__(self, epoch: int, epochs: int) -> dict:
        if not scored_epoch(epoch, epochs, self.settings.curve_every):
            return {}
        started = time.perf_counter()
        if self.scorer is None:
            with torch.random.fork_rng():  # a network made here draws its first weights from torch's generator
                self.scorer = make_scorer(self.settings.fid_backbone, self.evaluation)
                self.reference = self.scorer.reference(self.spec.dataset, self.evaluation.reference_split,
                                                       self.settings.fid_samples,
                                                       SPECS[self.spec.dataset].preprocessing)
        rows = score_now(self.model, self.spec, self.settings, self.scorer, self.train, self.held_out, self.reference,
                         self.scored)
        seconds = time.perf_counter() - started
        self.seconds += seconds
        return {**{f"{r['output']}_{r['metric']}": r["value"] for r in rows}, "curve_seconds": seconds}


def train_config(settings: Settings, stage, seed: int) -> TrainConfig:
    """The Trainer's settings for one of a model's stages (svae/interface.py Stage)."""
    return TrainConfig(epochs=max(1, round(settings.epochs * stage.epoch_factor)), batch_size=settings.batch_size,
                       lr=settings.lr, seed=seed, amp=settings.amp, progress=False, lr_halving=settings.lr_halving,
                       channels_last=settings.channels_last)


# bench.run --checkpoint-every: a trial's folder goes to the storage at most this often (bench/sweep.py),
# so a failure costs at most 5 minutes of its work
CHECKPOINT_EVERY_S = 300.0
def _keep_final_weights(folder: Path) -> None:
    """Drop the optimizer and RNG states from a trained trial's checkpoints: only an unfinished trial
    resumes, so its final checkpoint (copied to the run directory and kept by Ray) needs only the weights."""
    for path in folder.glob("checkpoint-*.pt"):
        state = load_checkpoint(path)
        atomic_torch_save({key: state[key] for key in ("model", "epoch", "history")}, path)


def write_metrics(folder: Path, history: list) -> None:
    fields = ["stage", "epoch", "loss", "recon_mse", "kl", "gamma", "active_units", "seconds", "images_per_s", "lr"]
    # then a model's own terms, then the scores taken during training (CurveScores), each in name order
    fields += sorted({name for metrics in history for name in metrics} - set(fields),
                     key=lambda name: (name == "curve_seconds" or name.startswith(CURVE_OUTPUTS), name))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    atomic_write_text(folder / "metrics.csv", buffer.getvalue())


def load_data(spec: TrialSpec, settings: Settings, evaluation: Evaluation) -> tuple:
    """(training images, reference-split images) of a trial, as it trains and samples on them."""
    train = load_images(spec.dataset, "train", evaluation.data_root, evaluation.download,
                        evaluation.system_copy).images
    train = train[:settings.train_subset] if settings.train_subset else train
    test = load_images(spec.dataset, evaluation.reference_split, evaluation.data_root, evaluation.download,
                       evaluation.system_copy).images
    return train, test


def make_scorer(backbone: str, evaluation: Evaluation, weights=None):
    from bench.metrics import Scorer  # the Inception network is only needed once training is done
    return Scorer(backbone=backbone, weights_path=weights or evaluation.fid_weights, cache_dir=evaluation.fid_cache,
                  data_root=evaluation.data_root, download=evaluation.download, system_copy=evaluation.system_copy,
                  inception_threads=evaluation.fid_threads)


def _evaluate(spec, settings, evaluation, model, train, test, folder) -> list:
    scorers = {backbone: make_scorer(backbone, evaluation) for backbone in settings.backbones()}
    orientation = orient_components(model, train, spec.seed)  # which component is x1 (svae/samplers.py)
    atomic_write_json(folder / "orientation.json", orientation)
    rows, facts, grids, nearest = [], {}, {}, None
    for sampler, outputs in generate(spec, settings, model, train, test, orientation, facts):
        grid = grids[sampler] = {name: _to_uint8(images[:settings.grid_samples]) for name, images in outputs.items()}
        if sampler == "recon":
            grid["original"] = test[:settings.grid_samples].numpy()
        atomic_write_bytes(folder / "samples" / f"{sampler}.npz", npz_bytes(grid))
        if sampler == MODELS[spec.model].compared_at:  # the images the nearest-training-image figure shows
            nearest = nearest_training(sampler, grid["x_hat"][:PREVIEW_IMAGES], train)
        rows += score_sampler(scorers, spec, sampler, outputs, settings, evaluation.reference_split)
        rows += memorisation_rows(sampler, outputs["x_hat"], train, test, evaluation.reference_split)
    write_preview(folder, preview_of(grids, nearest, interpolation(model, test[:2], orientation)))  # what reports show
    atomic_write_json(folder / "sampler_facts.json", facts)
    return [{**row, "gmm_components": facts.get("gmm_components")} for row in rows]


def generate(spec: TrialSpec, settings: Settings, model, train, test, orientation, facts=None):
    """(sampler, {output: images}) for every sampler of the model, x1 and x2 named by the trial's
    orientation: the same images for the same seed. facts receives what the samplers chose."""
    for sampler in samplers_for(spec.model):
        z = sample_latents(model, sampler, settings.fid_samples, train_images=train, test_images=test,
                           gmm=settings.gmm, seed=spec.seed, facts=facts)
        yield sampler, oriented(decode(model, z), orientation)


def interpolation(model, ends, orientation) -> dict:
    """Two reference images and the x_hat decoded along the line between their posterior means (the
    preview's interpolation figure)."""
    steps = oriented(decode(model, interpolation_latents(model, ends, PREVIEW_IMAGES)), orientation)
    return {"ends": np.asarray(ends), "x_hat": _to_uint8(steps["x_hat"])}


def memorisation_rows(sampler: str, images, train, reference, reference_split: str) -> list:
    """The results.csv row of a sampler's x_hat memorisation figure (bench/memorisation.py): pixels, not
    an extractor's features; its settings carry the share expected without copying (chance). None where
    the reference split is the training split: no held-out images to compare with."""
    if reference_split == "train":
        return []
    m = memorisation(images, train, reference)
    return [{"sampler": sampler, "output": "x_hat", "metric": MEMORISATION_METRIC, "value": m.share,
             "value_std": None, "higher_is_better": False,
             "settings": f"pixel-l2,held_out_n={m.held_out_n},chance={m.chance:.6f}",
             "n_samples": m.n, "reference_n": m.train_n, "extractor": "pixels",
             "extractor_id": MEMORISATION_EXTRACTOR_ID, "weights_hash": None}]


def output_features(extractor, outputs: dict, scored) -> dict:
    """Features of every scored output, one network pass per image set: mix is assembled from the
    features of x1 and x2 (features are per image), so an SVAE sampler costs three passes, not four."""
    feats = {name: extractor.features(outputs[name]) for name in scored if name != "mix"}
    if "mix" in scored:
        feats["mix"] = mix_halves(feats["x1"], feats["x2"]).numpy()
    return {name: feats[name] for name in scored}


def score_sampler(scorers: dict, spec: TrialSpec, sampler: str, outputs: dict, settings: Settings, split: str) -> list:
    """results.csv rows of a sampler's outputs on every network that scores them (Settings.backbones_at);
    scorers: backbone -> Scorer."""
    compared = sampler == MODELS[spec.model].compared_at
    return [row for backbone in settings.backbones_at(compared)
            for row in score_outputs(scorers[backbone], spec, sampler, outputs, settings, split)]


def score_outputs(scorer, spec: TrialSpec, sampler: str, outputs: dict, settings: Settings, split: str,
                  reference=None, scored=None) -> list:
    """results.csv rows (without the trial's columns): one per scored output (`scored`, by default the
    model's outputs) and metric figure, against `reference` (bench.metrics Reference), by default the
    scorer's statistics of the dataset's split."""
    reference = reference or scorer.reference(spec.dataset, split, settings.fid_samples,
                                              SPECS[spec.dataset].preprocessing)
    extractor = scorer.extractor(spec.dataset)
    rows = []
    for output, feats in output_features(extractor, outputs, scored or MODELS[spec.model].outputs).items():
        for figure in scorer.score(feats, reference, settings.metrics):
            rows.append({"sampler": sampler, "output": output, "metric": figure.metric, "value": figure.value,
                         "value_std": figure.std, "higher_is_better": figure.higher_is_better,
                         "settings": figure.settings, "n_samples": len(feats), "reference_n": reference.n,
                         "extractor": extractor.name, "extractor_id": extractor.id,
                         "weights_hash": extractor.weights_hash})
    return rows


def _to_uint8(images: torch.Tensor) -> np.ndarray:
    return (images.clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def npz_bytes(arrays: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def settings_json(settings: Settings) -> dict:
    return json.loads(json.dumps(asdict(settings)))
