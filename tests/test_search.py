"""The search (bench/search.py): every model with a knob searched alike on a validation split, widened at
an edge, recorded, never repeated; each choice applies to its own model."""
import json
import math
import time
from types import SimpleNamespace

import pytest
import torch

import bench.search
from bench.models import MODELS
from bench.presets import model_settings, settings_for
from bench.search import FACTORS, MAX_WIDENING, SEEDS, collect_scores, run_searches, search_path, validation_split
from bench.trial import Evaluation
from svae.errors import HarnessError
from svae.data import load_images

ALL = list(MODELS)


def write_manifest(run_dir):
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "manifest.json").write_text(json.dumps({"config": {"settings": {}}, "grid": [], "protocol": {}}))


def landscape(best_factor_of, calls=None):
    """A stand-in for the Ray Tune candidates: score |log2(factor / best)| (+ a seed's 0.01), so each
    model's minimum is at its own factor; every call's candidates are kept in `calls`."""
    def scores(candidates, jobs, storage, resources, keep=None):
        if calls is not None:
            calls.append(candidates)
        return {(c["dataset"], c["model"], c["factor"], c["seed"]):
                abs(math.log2(c["factor"] / best_factor_of[c["model"]])) + 0.01 * (c["seed"] - SEEDS[0])
                for c in candidates}
    return scores


def test_every_model_with_a_knob_is_searched_alike_and_its_choice_is_its_own(tmp_path):
    write_manifest(tmp_path)
    settings = {"synthetic": settings_for("smoke", "synthetic")}
    calls = []
    best = {"svae": 0.5, "vae": 2.0, "beta-vae": 0.5, "rae": 2.0}  # all inside the grid
    chosen = run_searches(tmp_path, settings, ALL, Evaluation(), "unused", {}, True, landscape(best, calls))
    [candidates] = calls  # one round: no best factor at an edge; every dataset and model in one experiment
    tried = {}
    for c in candidates:
        tried.setdefault(c["model"], []).append((c["factor"], c["seed"]))
    assert set(tried) == {m for m in MODELS if MODELS[m].knob} == {"svae", "vae", "beta-vae", "rae"}
    grid = sorted((f, s) for f in FACTORS for s in SEEDS)
    assert all(sorted(pairs) == grid for pairs in tried.values())  # the same factors and seeds for each
    assert len(FACTORS) >= 3 and len(SEEDS) >= 2
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    records = {r["model"]: r for r in manifest["search"]["results"]}
    assert {(r["epochs"], r["epoch_fraction"], tuple(r["seeds"]), tuple(r["factors"])) for r in records.values()} \
        == {(1, bench.search.EPOCH_FRACTION, SEEDS, FACTORS)}  # smoke: 3 epochs, a quarter rounds to 1
    assert "two-stage" in manifest["search"]["not_searched"] and "two-stage" not in records
    preset = settings["synthetic"].model
    # the SVAE and the VAE share ModelConfig.beta: each trains with its own choice
    assert model_settings(chosen["synthetic"], "svae").model.beta == preset.beta * 0.5
    assert model_settings(chosen["synthetic"], "vae").model.beta == preset.beta * 2.0
    assert model_settings(chosen["synthetic"], "beta-vae").model.beta_vae_beta == preset.beta_vae_beta * 0.5
    assert model_settings(chosen["synthetic"], "rae").model.rae_penalty_scale == 2.0
    assert model_settings(chosen["synthetic"], "two-stage").model == preset
    assert records["svae"]["published"] == {"beta": preset.beta}  # the as-published row stays recorded
    assert {"factor": 1.0, "values": {"beta": preset.beta}, "seed_scores": [1.0, 1.01], "score": 1.005} \
        in records["svae"]["scores"]
    assert records["svae"]["stopped"] == "the best factor lies inside the grid"
    assert manifest["config"]["settings"]["synthetic"]["tuned"]  # the choices are in the manifest's settings

    again = run_searches(tmp_path, settings, ALL, Evaluation(), "unused", {}, True, landscape(best, calls))
    assert len(calls) == 1 and again == chosen  # resumed: read back, not searched again


def test_a_best_value_at_the_edge_widens_the_grid_until_it_is_inside(tmp_path):
    write_manifest(tmp_path)
    settings = {"synthetic": settings_for("smoke", "synthetic")}
    calls = []
    run_searches(tmp_path, settings, ["vae"], Evaluation(), "unused", {}, True, landscape({"vae": 1 / 16}, calls))
    assert [sorted({c["factor"] for c in call}) for call in calls] == [list(FACTORS), [1 / 8], [1 / 16], [1 / 32]]
    [record] = json.loads((tmp_path / "manifest.json").read_text())["search"]["results"]
    assert record["chosen_factor"] == 1 / 16 and record["widened"] == 3
    assert record["stopped"] == "the best factor lies inside the grid"


def test_a_search_still_at_the_edge_at_its_bound_stops_and_says_why(tmp_path):
    write_manifest(tmp_path)
    settings = {"synthetic": settings_for("smoke", "synthetic")}
    run_searches(tmp_path, settings, ["vae"], Evaluation(), "unused", {}, True, landscape({"vae": 1024.0}))
    [record] = json.loads((tmp_path / "manifest.json").read_text())["search"]["results"]
    assert record["widened"] == MAX_WIDENING and record["chosen_factor"] == max(FACTORS) * 2 ** MAX_WIDENING
    assert "still at the grid's edge" in record["stopped"]
    from reports.report import _search_section
    section = "\n".join(_search_section(json.loads((tmp_path / "manifest.json").read_text())["search"]))
    assert "still at the grid's edge" in section and "Factor 1 is the as-published row" in section


def test_an_interrupted_search_keeps_each_scored_candidate_and_the_resume_scores_only_the_rest(tmp_path):
    settings = {"synthetic": settings_for("smoke", "synthetic")}
    best = {"svae": 0.5, "rae": 2.0}  # inside the grid: one round
    whole, run_dir = tmp_path / "whole", tmp_path / "run"
    write_manifest(whole)
    run_searches(whole, settings, list(best), Evaluation(), "unused", {}, True, landscape(best))
    write_manifest(run_dir)
    calls = []
    scorer = landscape(best, calls)

    def interrupted(candidates, jobs, storage, resources, keep):  # half scored as Ray Tune reports them, then a stop
        for (dataset, model, factor, seed), score in scorer(candidates[:len(candidates) // 2], jobs, storage,
                                                              resources).items():
            keep({"dataset": dataset, "model": model, "factor": factor, "seed": seed}, score)
        raise HarnessError("the search did not finish")

    with pytest.raises(HarnessError, match="did not finish"):
        run_searches(run_dir, settings, list(best), Evaluation(), "unused", {}, True, interrupted)
    [half] = calls
    kept = json.loads((run_dir / "search" / "candidates.json").read_text())
    assert len(kept) == len(half) == 2 * len(FACTORS) * len(SEEDS) // 2  # 20 candidates, 10 scored
    assert not list((run_dir / "search").glob("synthetic-*.json"))  # no search finished: none recorded
    run_searches(run_dir, settings, list(best), Evaluation(), "unused", {}, True, landscape(best, calls))
    asked, everything = calls[1], [{"dataset": "synthetic", "model": m, "factor": f, "seed": seed}
                                   for m in best for f in FACTORS for seed in SEEDS]
    assert asked == [c for c in everything if c not in half]  # only the unscored ones trained again
    records = json.loads((run_dir / "manifest.json").read_text())["search"]["results"]
    assert records == json.loads((whole / "manifest.json").read_text())["search"]["results"]


def test_an_interrupted_sessions_search_time_counts_in_the_recorded_wall_time(tmp_path):
    settings, best = {"synthetic": settings_for("smoke", "synthetic")}, {"vae": 0.5}
    write_manifest(tmp_path)
    spent = 0.5  # seconds of the first, interrupted session's search

    def interrupted(candidates, jobs, storage, resources, keep):
        time.sleep(spent)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_searches(tmp_path, settings, ["vae"], Evaluation(), "unused", {}, True, interrupted)
    assert json.loads((tmp_path / "search" / "time.json").read_text())["wall_s"] >= spent
    run_searches(tmp_path, settings, ["vae"], Evaluation(), "unused", {}, True, landscape(best))
    assert json.loads((tmp_path / "manifest.json").read_text())["search"]["wall_s"] >= spent


def test_a_diverged_seed_makes_its_factor_diverged_and_all_diverged_keeps_the_preset(tmp_path):
    write_manifest(tmp_path)
    settings = {"synthetic": settings_for("smoke", "synthetic")}

    def diverges(candidates, jobs, storage, resources, keep=None):
        return {(c["dataset"], c["model"], c["factor"], c["seed"]): None for c in candidates}

    kept = run_searches(tmp_path, settings, ["svae"], Evaluation(), "unused", {}, True, diverges)
    [record] = json.loads((tmp_path / "manifest.json").read_text())["search"]["results"]
    assert record["chosen_factor"] == 1.0 and "every candidate diverged" in record["stopped"]
    assert model_settings(kept["synthetic"], "svae").model.beta == settings["synthetic"].model.beta
    assert bench.search.factor_score([3.0, None]) is None and bench.search.factor_score([3.0, 5.0]) == 4.0


def test_search_off_keeps_the_preset_value_and_says_so(tmp_path):
    write_manifest(tmp_path)
    settings = {"synthetic": settings_for("smoke", "synthetic")}
    kept = run_searches(tmp_path, settings, ["beta-vae"], Evaluation(), "unused", {}, False,
                        lambda *a: pytest.fail("searched although disabled"))
    assert kept == settings
    assert json.loads((tmp_path / "manifest.json").read_text())["search"]["enabled"] is False


def test_a_run_from_before_per_model_choices_still_applies_its_choice():
    settings = settings_for("smoke", "synthetic")
    old = {"dataset": "synthetic", "model": "beta-vae", "knob": "beta_vae_beta", "chosen": 0.03125}
    assert bench.search.with_choices(settings, [old]).model.beta_vae_beta == 0.03125


def test_validation_split_is_carved_from_the_training_images():
    settings = settings_for("smoke", "synthetic")
    train = load_images("synthetic", "train").images
    fit, validation = validation_split(train, settings)
    assert len(fit) + len(validation) == len(train) and len(validation) == len(train) // 6
    assert torch.equal(torch.cat([fit, validation]), train)  # disjoint, and never the test split


def test_the_plan_states_the_searchs_share_of_the_studys_time():
    from bench.cost.plan import make_plan
    from bench.trial import TrialSpec
    settings = {"synthetic": settings_for("smoke", "synthetic", search=True)}
    grid = [TrialSpec("synthetic", m, s) for m in ("vae", "two-stage") for s in range(2)]
    lines = make_plan(grid, "smoke", settings, 1, 0, probe_batches=1, feature_images=2).lines()
    [line] = [x for x in lines if x.startswith("  search:")]
    assert "1 model(s) with a knob (vae) x 5 factors of the as-published value x 2 seeds" in line
    assert "% of the study's (up to " in line and "not searched: two-stage (" in line
    [companion] = [x for x in lines if x.startswith("  as published:")]  # the --no-search companion's cost
    trials = [x for x in lines if x.startswith("  estimate:")][0].split("(trials ")[1].split(" in all")[0]
    assert f"costs the trials again, ~{trials} of trial time" in companion


@pytest.mark.slow
def test_a_tiny_real_search_trains_each_candidate_once_and_picks_its_argmin(tmp_path, monkeypatch):
    write_manifest(tmp_path)
    settings = {"synthetic": settings_for("smoke", "synthetic", fid_samples=100)}
    trainings = []
    real_train = bench.search._train
    monkeypatch.setattr(bench.search, "_train", lambda *a: trainings.append(1) or real_train(*a))
    monkeypatch.setattr(bench.search, "FACTORS", (0.25, 4.0))
    monkeypatch.setattr(bench.search, "MAX_WIDENING", 0)

    def in_process(candidates, jobs, storage, resources, keep=None):
        return {(c["dataset"], c["model"], c["factor"], c["seed"]):
                bench.search.score_candidate(c["dataset"], c["model"], c["factor"], c["seed"], *jobs[c["dataset"]])
                for c in candidates}

    evaluation = Evaluation(fid_cache=str(tmp_path / "cache"))
    chosen = run_searches(tmp_path, settings, ["beta-vae"], evaluation, "unused", {}, True, in_process)
    [record] = json.loads((tmp_path / "manifest.json").read_text())["search"]["results"]
    scores = {s["factor"]: s["score"] for s in record["scores"]}
    assert len(trainings) == 4 and all(math.isfinite(s) for s in scores.values())  # 2 factors x 2 seeds
    assert model_settings(chosen["synthetic"], "beta-vae").model.beta_vae_beta == \
        settings["synthetic"].model.beta_vae_beta * min(scores, key=scores.get)
    run_searches(tmp_path, settings, ["beta-vae"], evaluation, "unused", {}, True, in_process)
    assert len(trainings) == 4


@pytest.mark.slow
def test_a_candidate_that_errors_stops_the_sweep_and_records_no_choice(tmp_path):
    """Missing data is an error, not a divergence: the search must not choose among the survivors."""
    import ray
    from svae.errors import HarnessError
    run_dir = tmp_path / "run"
    write_manifest(run_dir)
    settings = {"fashion-mnist": settings_for("smoke", "fashion-mnist")}
    evaluation = Evaluation(data_root=str(tmp_path / "no-data"), system_copy=False)
    try:
        with pytest.raises(HarnessError, match=r"search failed for 10 of 10 candidates "
                                               r"\(first: fashion-mnist beta-vae x.*missing train-images"):
            run_searches(run_dir, settings, ["beta-vae"], evaluation, str(tmp_path / "ray"), {"cpu": 1}, True)
    finally:
        ray.shutdown()
    assert not search_path(run_dir, "fashion-mnist", "beta-vae").exists()  # a resume searches again


@pytest.mark.slow  # a Ray cluster and 10 stand-in candidates: ~40 s
def test_ray_tune_reports_each_candidates_score_into_the_kept_record(tmp_path):
    import functools

    import ray
    from bench.cost.simulate import simulated_scores
    run_dir = tmp_path / "run"
    write_manifest(run_dir)
    settings = {"synthetic": settings_for("smoke", "synthetic")}
    try:
        run_searches(run_dir, settings, ["vae"], Evaluation(), str(tmp_path / "ray"), {"cpu": 1}, True,
                     functools.partial(simulated_scores, 0.1))  # the real Tuner; each candidate scores |log2 factor|
    finally:
        ray.shutdown()
    kept = json.loads((run_dir / "search" / "candidates.json").read_text())
    assert sorted((k["factor"], k["seed"], k["score"]) for k in kept) == sorted(
        (f, seed, abs(math.log2(f))) for f in FACTORS for seed in SEEDS)


def test_an_interrupted_search_with_candidates_that_never_started_is_one_line():
    """Ray Tune returns a result with no config for a candidate that a Ctrl-C kept from starting."""
    scored = SimpleNamespace(config={"candidate": {"dataset": "mnist", "model": "vae", "factor": 1.0, "seed": 1000}},
                             metrics={"score": 5.0}, error=None)
    never_started = SimpleNamespace(config=None, metrics=None, error=None)
    assert collect_scores([scored], 1) == {("mnist", "vae", 1.0, 1000): 5.0}
    with pytest.raises(HarnessError, match="did not finish: 2 of 3 candidates have no score"):
        collect_scores([scored, never_started, never_started], 3)
