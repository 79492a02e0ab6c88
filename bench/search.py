"""The search: every model's regularisation knob tuned alike on a validation split, before the seeded runs.

A model tuned against rivals left at another paper's settings measures who was tuned, so every model
whose registry entry names a knob (bench/models.py: the ModelConfig fields of its regularisation,
scaled together) is searched the same way: the same grid of FACTORS times its preset (as published)
value, SEEDS per candidate, EPOCH_FRACTION of the preset's epochs, on the training images minus a
validation split carved from their end (never the FID reference split). Each candidate is sampled
with the GMM (fitted on the images it trained on) and scores x_hat against the validation images
with the sweep's own distance (FID or fd_domain); a factor's score is the mean over its seeds.

Where the best factor is at the edge of those tried, the grid widens by one factor of 2 on that side
and the new candidates run, up to MAX_WIDENING times; the record says why the search stopped. All
(dataset, model) searches of a round run in one Ray Tune experiment: they do not depend on each other.

Each finished search is kept in RUN_DIR/search/<dataset>-<model>.json (written atomically), so a
resumed sweep never repeats it; the records and the choices go into the manifest. Each candidate's
score is kept as it arrives, in RUN_DIR/search/candidates.json, so an interrupted search resumes
with the candidates it had not scored (on two CPU cores a round of 40 candidates takes hours). A choice applies
to its model only (Settings.tuned, bench/presets.py model_settings), so the SVAE and the VAE, which
share ModelConfig.beta, are tuned apart. The preset's value stays in every record as the "as
published" row, scored like every candidate.
"""
import json
import math
import statistics
import tempfile
import time
import uuid
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

FACTORS = tuple(2.0 ** k for k in range(-2, 3))  # times the as-published value: 1/4 .. 4, every model alike
SEEDS = (1000, 1001)  # each candidate's seeds: apart from the seeded runs' 0, 1, ...
EPOCH_FRACTION = 0.25  # of the preset's epochs (at least one)
MAX_WIDENING = 3  # factors of 2 added beyond an edge, per search, before it stops and says so
VALIDATION_FRACTION = 1 / 6  # of the training images, capped at fid_samples: MNIST 10,000 of 60,000
SAMPLER = "gmm"


def searched(models: list) -> list:
    return [m for m in models if MODELS[m].knob]


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


def knob_values(model: str, settings: Settings, factor: float) -> dict:
    """The model's knob fields at `factor` times the settings' (as published) values."""
    return {name: getattr(settings.model, name) * factor for name in MODELS[model].knob}


def validation_distance(scorer, dataset: str, generated, validation) -> float:
    """The sweep's distance between generated images and the validation images (not the reference split)."""
    from bench.metrics import reference_from_features
    return scorer.distance(generated, reference_from_features(scorer.features(validation, dataset), dataset))


def score_candidate(dataset: str, model: str, factor: float, seed: int, settings: Settings,
                    evaluation: Evaluation) -> float:
    """Train one candidate for the short budget and return its validation distance (inf if it diverged)."""
    spec = TrialSpec(dataset, model, seed)
    train, _ = load_data(spec, settings, evaluation)  # the images the seeded runs train on
    fit, validation = validation_split(train, settings)
    short = replace(settings, epochs=budget(settings),
                    model=replace(settings.model, **knob_values(model, settings, factor)))
    seed_everything(seed)
    net = build_model(model, SPECS[dataset], short.model)
    with tempfile.TemporaryDirectory() as folder:
        try:
            _train(net, spec, short, fit, Path(folder), lambda *_: None, None)
        except NonFiniteLossError:
            return math.inf
    z = sample_latents(net, SAMPLER, len(validation), train_images=fit, test_images=validation,
                       gmm=replace(settings.gmm, fit_on="train"), seed=seed)
    scorer = make_scorer(settings.fid_backbone, evaluation)
    return validation_distance(scorer, dataset, decode(net, z)["x_hat"], validation)


def _trainable(config: dict) -> None:
    import torch
    from ray import tune
    torch.set_num_threads(max(1, int(config["cpus"])))
    c = config["candidate"]
    settings, evaluation = config["jobs"][c["dataset"]]
    tune.report({"score": score_candidate(c["dataset"], c["model"], c["factor"], c["seed"], settings, evaluation)})


def candidate_key(c: dict) -> tuple:
    return c["dataset"], c["model"], c["factor"], c["seed"]


def finite_or_none(score: float):
    return float(score) if math.isfinite(score) else None  # a diverged candidate reports inf


def tune_scores(candidates: list, jobs: dict, storage: str, resources: dict, keep=None, trainable=_trainable) -> dict:
    """(dataset, model, factor, seed) -> validation score (None where training diverged), one Ray Tune
    trial per candidate ({dataset, model, factor, seed}); jobs: dataset -> (Settings, Evaluation);
    keep(candidate, score) is called as each score arrives. (trainable: a candidate's Ray Tune function;
    bench/cost/simulate.py passes a stand-in.)

    A candidate that fails otherwise (missing data, a crash) stops the sweep: a search that silently
    lost candidates would choose among the survivors, and the record would not say why."""
    from ray import tune

    class Keep(tune.Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):
            if keep is not None and "score" in result:
                keep(trial.config["candidate"], finite_or_none(result["score"]))

    tuner = tune.Tuner(
        tune.with_resources(trainable, resources),
        param_space={"candidate": tune.grid_search(candidates), "jobs": jobs, "cpus": resources.get("cpu", 1)},
        # reuse_actors: as the sweep's (bench/sweep.py), a worker's start and imports serve candidate after candidate
        tune_config=tune.TuneConfig(metric="score", mode="min", reuse_actors=True),
        run_config=tune.RunConfig(name=f"search-{uuid.uuid4().hex[:8]}", storage_path=storage, verbose=0,
                                  log_to_file=True, callbacks=[Keep()]))
    return collect_scores(tuner.fit(), len(candidates))


def collect_scores(results, candidates: int) -> dict:
    """tune_scores' answer from Ray Tune's results of its `candidates`: a failed candidate, or one with
    no score (stopped, or never started: an interrupted search), is a one-line HarnessError."""
    scores, errors, unscored = {}, [], 0
    for result in results:
        if result.config is None:  # never started: the search was interrupted before its turn
            unscored += 1
            continue
        c = result.config["candidate"]
        score = (result.metrics or {}).get("score")
        if result.error is not None:
            why = (str(result.error).strip().splitlines() or ["no message"])[-1]
            errors.append(f"{c['dataset']} {c['model']} x{c['factor']:g} seed {c['seed']}: {why}")
        elif score is None:  # stopped before it reported: a Ctrl-C, or its worker lost with the driver
            unscored += 1
        else:
            scores[candidate_key(c)] = finite_or_none(score)
    if errors:
        raise HarnessError(f"the search failed for {len(errors)} of {candidates} candidates (first: "
                           f"{errors[0]}); fix that and run the same command again with --resume")
    if unscored:
        raise HarnessError(f"the search did not finish: {unscored} of {candidates} candidates have no score "
                           "(interrupted); the scored ones are kept: run the same command again with --resume")
    return scores


def kept_scores(run_dir: Path) -> dict:
    """candidate_key -> score of every candidate this sweep has scored (RUN_DIR/search/candidates.json)."""
    path = Path(run_dir) / "search" / "candidates.json"
    try:
        return {candidate_key(e): e["score"] for e in json.loads(path.read_text())} if path.exists() else {}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise HarnessError(f"cannot read {path} ({type(e).__name__}); delete it to score the search's candidates "
                           "again") from None


def keeper(run_dir: Path, kept: dict):
    """keep(candidate, score) for tune_scores: kept, and search/candidates.json rewritten whole (atomic)."""
    def keep(candidate: dict, score) -> None:
        kept[candidate_key(candidate)] = score
        atomic_write_json(Path(run_dir) / "search" / "candidates.json",
                          [{"dataset": d, "model": m, "factor": f, "seed": s, "score": v}
                           for (d, m, f, s), v in sorted(kept.items())])
    return keep


def factor_score(seed_scores: list):
    """A factor's score: the mean over its seeds; None if any seed diverged."""
    return None if any(s is None for s in seed_scores) else statistics.fmean(seed_scores)


def next_factor(tried: dict):
    """The factor to add beyond the edge the best finite score sits at, or None (interior, or none finite).
    tried: factor -> score or None."""
    finite = {f: s for f, s in tried.items() if s is not None}
    if not finite:
        return None
    best = min(finite, key=finite.get)
    return best / 2 if best == min(tried) else best * 2 if best == max(tried) else None


def make_record(dataset: str, model: str, settings: Settings, scores: dict, widened: int) -> dict:
    """The search's record for one (dataset, model) from its scores {factor: [score per seed]}."""
    tried = {f: factor_score(s) for f, s in sorted(scores.items())}
    finite = {f: s for f, s in tried.items() if s is not None}
    chosen = min(finite, key=finite.get) if finite else 1.0
    if not finite:
        stopped = "every candidate diverged: the as-published value is kept"
    elif next_factor(tried) is None:
        stopped = "the best factor lies inside the grid"
    else:
        stopped = (f"the best factor is still at the grid's edge after {widened} widening step(s), the bound "
                   f"(MAX_WIDENING): the best value may lie beyond it")
    return {"dataset": dataset, "model": model, "knob": list(MODELS[model].knob),
            "published": knob_values(model, settings, 1.0), "factors": list(FACTORS), "seeds": list(SEEDS),
            "scores": [{"factor": f, "values": knob_values(model, settings, f), "seed_scores": scores[f],
                        "score": tried[f]} for f in tried],
            "chosen_factor": chosen, "chosen": knob_values(model, settings, chosen), "widened": widened,
            "stopped": stopped, "epochs": budget(settings), "epoch_fraction": EPOCH_FRACTION, "sampler": SAMPLER,
            "metric": "FID" if settings.fid_backbone == "inception" else "fd_domain",
            "validation": f"the last {VALIDATION_FRACTION:.3g} of the training images (at most fid_samples), "
                          "held out from the candidates' training; never the FID reference split"}


def stored(run_dir: Path, dataset: str, model: str):
    """A finished search's record from the run directory, if it was made by this protocol."""
    path = search_path(run_dir, dataset, model)
    if not path.exists():
        return None
    record = json.loads(path.read_text())
    same = (record.get("knob"), record.get("factors"), record.get("seeds")) == \
        (list(MODELS[model].knob), list(FACTORS), list(SEEDS))
    return record if same else None


def search_all(run_dir: Path, settings_by_dataset: dict, models: list, evaluation: Evaluation, storage: str,
               resources: dict, scores_of=tune_scores) -> list:
    """Every (dataset, searched model)'s record: stored ones read back, the others searched together."""
    records = {(d, m): stored(run_dir, d, m) for d in settings_by_dataset for m in searched(models)}
    open_keys = [key for key, record in records.items() if record is None]
    scores = {key: {} for key in open_keys}  # key -> factor -> [score per seed]
    factors = {key: list(FACTORS) for key in open_keys}
    widened = dict.fromkeys(open_keys, 0)
    jobs = {d: (settings_by_dataset[d], evaluation) for d, _ in open_keys}
    kept = kept_scores(run_dir)  # what an interrupted session scored
    while open_keys:
        todo = [{"dataset": d, "model": m, "factor": f, "seed": seed}
                for d, m in open_keys for f in factors[d, m] if f not in scores[d, m] for seed in SEEDS]
        unscored = [c for c in todo if candidate_key(c) not in kept]
        if unscored:
            kept.update(scores_of(unscored, jobs, storage, resources, keeper(run_dir, kept)))
        for c in todo:
            scores[c["dataset"], c["model"]].setdefault(c["factor"], []).append(kept[candidate_key(c)])
        still_open = []
        for key in open_keys:
            beyond = next_factor({f: factor_score(s) for f, s in scores[key].items()})
            if beyond is not None and widened[key] < MAX_WIDENING:
                factors[key].append(beyond)
                widened[key] += 1
                still_open.append(key)
            else:
                records[key] = make_record(*key, settings_by_dataset[key[0]], scores[key], widened[key])
                atomic_write_json(search_path(run_dir, *key), records[key])
        open_keys = still_open
    return list(records.values())


def with_choices(settings: Settings, records: list) -> Settings:
    """settings with each record's chosen values for its model (bench/presets.py model_settings). A record
    of a run before per-model choices ({"knob": field, "chosen": value}) set the field for every model."""
    for r in records:
        if not isinstance(r["chosen"], dict):
            settings = replace(settings, model=replace(settings.model, **{r["knob"]: r["chosen"]}))
    tuned = tuple((r["model"], name, value) for r in records if isinstance(r["chosen"], dict)
                  for name, value in r["chosen"].items())
    return replace(settings, tuned=settings.tuned + tuned)


def add_search_time(run_dir: Path, seconds: float) -> float:
    """The search's wall time over every session, this one's `seconds` added (RUN_DIR/search/time.json; a
    run from before that file starts from its manifest's record, which missed interrupted sessions)."""
    path = Path(run_dir) / "search" / "time.json"
    try:
        before = json.loads(path.read_text())["wall_s"] if path.exists() else \
            (json.loads((Path(run_dir) / "manifest.json").read_text()).get("search") or {}).get("wall_s", 0.0)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise HarnessError(f"cannot read {path} ({type(e).__name__}); delete it (the search's recorded time then "
                           "starts again from the manifest's)") from None
    total = round(before + seconds, 1)
    atomic_write_json(path, {"wall_s": total})
    return total


def run_searches(run_dir: Path, settings_by_dataset: dict, models: list, evaluation: Evaluation, storage: str,
                 resources: dict, enabled: bool, scores_of=tune_scores) -> dict:
    """Search every model of the sweep that has a knob (if enabled), record it in the manifest, and return
    the settings the seeded runs use: the preset's, with each model's chosen values for that model."""
    started = time.monotonic()
    try:
        records = search_all(run_dir, settings_by_dataset, models, evaluation, storage, resources, scores_of) \
            if enabled else []
    finally:  # an interrupted session's search time counts too
        wall_s = add_search_time(run_dir, time.monotonic() - started) if enabled else 0.0
    settings_by_dataset = {d: with_choices(s, [r for r in records if r["dataset"] == d])
                           for d, s in settings_by_dataset.items()}
    manifest_path = Path(run_dir) / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["search"] = {"enabled": enabled, "wall_s": wall_s,
                          "table": {m: {"knob": list(MODELS[m].knob), "factors": list(FACTORS)}
                                    for m in searched(models)},
                          "not_searched": {m: MODELS[m].no_knob for m in models if not MODELS[m].knob},
                          "seeds": list(SEEDS), "epoch_fraction": EPOCH_FRACTION, "max_widening": MAX_WIDENING,
                          "results": records}
    for dataset, settings in settings_by_dataset.items():
        manifest["config"]["settings"][dataset] = settings_json(settings)
    atomic_write_json(manifest_path, manifest)
    return settings_by_dataset
