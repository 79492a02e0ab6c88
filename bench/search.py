"""Baseline search: tune each searched baseline's free knob on a validation split, before the seeded runs.

A fixed knob is a straw man (beta = 4 with gamma fixed may over-regularise the beta-VAE several
times over), so each model whose registry entry names a `search` (bench/models.py) has its knob
chosen by evidence: one Ray Tune trial per
grid value trains the model for a short budget (EPOCH_FRACTION of the preset's epochs) on the
training images minus a validation split carved from their end (never the FID reference split),
samples it with its own sampler (GMM, fitted on the images it trained on), and scores x_hat against
the validation images with the sweep's own distance (FID or fd_domain). The lowest score wins; the
seeded runs of every seed use it.

Each finished search is kept in RUN_DIR/search/<dataset>-<model>.json (written atomically), so a
resumed sweep never repeats it; the table, the scores and the chosen values go into the manifest.
Adding a model's knob is its registry entry's `search`: (ModelConfig field, grid).
"""
import json
import math
import tempfile
from dataclasses import replace
from pathlib import Path

from bench.models import MODELS, build_model
from bench.presets import Settings
from bench.trial import Evaluation, TrialSpec, _train, load_data, make_scorer, settings_json
from svae.data import SPECS
from svae.errors import HarnessError, NonFiniteLossError
from svae.io import atomic_write_json
from svae.samplers import decode, sample_latents
from svae.trainer import seed_everything

EPOCH_FRACTION = 0.25  # of the preset's epochs (at least one)
VALIDATION_FRACTION = 1 / 6  # of the training images, capped at fid_samples: MNIST 10,000 of 60,000
SAMPLER = "gmm"
SEED = 1000  # the candidates' seed: apart from the seeded runs' 0, 1, ...


def validation_size(n_train: int, settings: Settings) -> int:
    return min(settings.fid_samples, int(n_train * VALIDATION_FRACTION))


def validation_split(train, settings: Settings) -> tuple:
    """(images to fit, validation images): the last part of the training images is held out."""
    n_val = validation_size(len(train), settings)
    return train[:-n_val], train[-n_val:]


def budget(settings: Settings) -> int:
    return max(1, round(settings.epochs * EPOCH_FRACTION))


def search_path(run_dir: Path, dataset: str, model: str) -> Path:
    return Path(run_dir) / "search" / f"{dataset}-{model}.json"


def validation_distance(scorer, dataset: str, generated, validation) -> float:
    """The sweep's distance between generated images and the validation images (not the reference split)."""
    from bench.metrics import reference_from_features
    return scorer.distance(generated, reference_from_features(scorer.features(validation, dataset), dataset))


def score_candidate(dataset: str, model: str, knob: str, value: float, settings: Settings,
                    evaluation: Evaluation) -> float:
    """Train one candidate for the short budget and return its validation distance (inf if it diverged)."""
    spec = TrialSpec(dataset, model, SEED)
    train, _ = load_data(spec, settings, evaluation)  # the images the seeded runs train on
    fit, validation = validation_split(train, settings)
    short = replace(settings, epochs=budget(settings), model=replace(settings.model, **{knob: value}))
    seed_everything(SEED)
    net = build_model(model, SPECS[dataset], short.model)
    with tempfile.TemporaryDirectory() as folder:
        try:
            _train(net, spec, short, fit, Path(folder), lambda *_: None, None)
        except NonFiniteLossError:
            return math.inf
    z = sample_latents(net, SAMPLER, len(validation), train_images=fit, test_images=validation,
                       gmm=replace(settings.gmm, fit_on="train"), seed=SEED)
    scorer = make_scorer(settings.fid_backbone, evaluation)
    return validation_distance(scorer, dataset, decode(net, z)["x_hat"], validation)


def _trainable(config: dict) -> None:
    import torch
    from ray import tune
    torch.set_num_threads(max(1, int(config["cpus"])))
    job = config["job"]
    score = score_candidate(job["dataset"], job["model"], job["knob"], config["value"], job["settings"],
                            job["evaluation"])
    tune.report({"score": score})


def tune_scores(job: dict, grid: tuple, storage: str, resources: dict, trainable=_trainable) -> dict:
    """value -> validation score, one Ray Tune trial per grid value (None where training diverged).
    (trainable: a candidate's Ray Tune function; bench/simulate.py passes a stand-in.)

    A candidate that fails otherwise (missing data, a crash) stops the sweep: a search that silently
    lost candidates would choose among the survivors, and the record would not say why."""
    from ray import tune
    tuner = tune.Tuner(
        tune.with_resources(trainable, resources),
        param_space={"value": tune.grid_search(list(grid)), "job": job, "cpus": resources.get("cpu", 1)},
        tune_config=tune.TuneConfig(metric="score", mode="min"),
        run_config=tune.RunConfig(name=f"search-{job['dataset']}-{job['model']}", storage_path=storage,
                                  verbose=0, log_to_file=True))
    scores, errors = {value: None for value in grid}, []
    for result in tuner.fit():
        score = (result.metrics or {}).get("score")  # a diverged candidate reports inf
        if result.error is not None or score is None:
            why = (str(result.error).strip().splitlines() or ["no message"])[-1] if result.error else "no score"
            errors.append(f"{job['knob']} = {result.config.get('value')}: {why}")
        elif math.isfinite(score):
            scores[result.config["value"]] = float(score)
    if errors:
        raise HarnessError(f"the {job['model']} search on {job['dataset']} failed for {len(errors)} of {len(grid)} "
                           f"candidates (first: {errors[0]}); fix that and run the same command again with --resume")
    return scores


def search(run_dir: Path, dataset: str, model: str, settings: Settings, evaluation: Evaluation, storage: str,
           resources: dict, scores_of=tune_scores) -> dict:
    """The search record for one (dataset, model): read from the run directory if done, else run and saved."""
    knob, grid = MODELS[model].search
    path = search_path(run_dir, dataset, model)
    if path.exists():
        record = json.loads(path.read_text())
        if record["knob"] == knob and record["grid"] == list(grid):
            return record
    job = {"dataset": dataset, "model": model, "knob": knob, "settings": settings, "evaluation": evaluation}
    scores = scores_of(job, grid, storage, resources)
    finite = {v: s for v, s in scores.items() if s is not None}
    chosen = min(finite, key=finite.get) if finite else getattr(settings.model, knob)
    record = {"dataset": dataset, "model": model, "knob": knob, "grid": list(grid),
              "scores": [{"value": v, "score": scores[v]} for v in grid], "chosen": chosen,
              "fallback": not finite,  # every candidate diverged: the preset's value is kept
              "epochs": budget(settings), "sampler": SAMPLER, "seed": SEED,
              "metric": "FID" if settings.fid_backbone == "inception" else "fd_domain",
              "validation": f"the last {VALIDATION_FRACTION:.3g} of the training images (at most fid_samples), "
                            "held out from the candidates' training; never the FID reference split"}
    atomic_write_json(path, record)
    return record


def with_choices(settings: Settings, records: list) -> Settings:
    """settings with each search record's chosen value in place of its knob."""
    for record in records:
        settings = replace(settings, model=replace(settings.model, **{record["knob"]: record["chosen"]}))
    return settings


def run_searches(run_dir: Path, settings_by_dataset: dict, models: list, evaluation: Evaluation, storage: str,
                 resources: dict, enabled: bool, scores_of=tune_scores) -> dict:
    """Search every searched model of the sweep (if enabled), record it in the manifest, and return the
    settings the seeded runs use: the preset's, with each chosen knob in place."""
    searched = [m for m in models if MODELS[m].search]
    records = []
    if enabled:
        for dataset, settings in settings_by_dataset.items():
            for model in searched:
                record = search(run_dir, dataset, model, settings, evaluation, storage, resources, scores_of)
                records.append(record)
                settings = with_choices(settings, [record])
            settings_by_dataset = {**settings_by_dataset, dataset: settings}
    manifest_path = Path(run_dir) / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["search"] = {"enabled": enabled,
                          "table": {m: {"knob": MODELS[m].search[0], "grid": list(MODELS[m].search[1])}
                                    for m in searched},
                          "epoch_fraction": EPOCH_FRACTION, "results": records}
    for dataset, settings in settings_by_dataset.items():
        manifest["config"]["settings"][dataset] = settings_json(settings)
    atomic_write_json(manifest_path, manifest)
    return settings_by_dataset
